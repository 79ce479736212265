"""Training core of the group level: LOCO folds, split, oversampling, augmentation, loop.

Arrays in, arrays out: the group-level workflow reads the participant-level derivatives,
calls :func:`loco_folds` once and :func:`train_fold_variant` once per fold × variant.
"""

from .augment import AugmentationParameters, augment_batch, draw_parameters, rotate_z
from .folds import (
    MERGED_SITE,
    Fold,
    check_fold_outcomes,
    check_no_leakage,
    loco_folds,
    site_groups,
    train_validation_split,
)
from .batches import TrainingBatches
from .job import derive_seed, train_fold_variant
from .loop import BestEpochTracker, TrainResult, predict_probabilities, train_variant
from .precision import TRAIN_PRECISIONS, resolve_precision
from .sampling import SIDES, oversample

__all__ = [
    "MERGED_SITE",
    "SIDES",
    "TRAIN_PRECISIONS",
    "AugmentationParameters",
    "BestEpochTracker",
    "Fold",
    "TrainResult",
    "TrainingBatches",
    "augment_batch",
    "check_fold_outcomes",
    "check_no_leakage",
    "derive_seed",
    "draw_parameters",
    "loco_folds",
    "oversample",
    "predict_probabilities",
    "resolve_precision",
    "rotate_z",
    "site_groups",
    "train_fold_variant",
    "train_validation_split",
    "train_variant",
]
