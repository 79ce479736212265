"""Preprocessing of acute DWI: b0/trace, brain mask, normalisation, model grid, lesion.

Pure numeric functions on numpy arrays and 4 × 4 affines (mm); no file I/O. They return
new arrays and never modify their inputs; unusable data raise
:class:`bids_stroke.errors.BadInputError`, whose message describes the data (callers add
the file name).
"""

from .brainmask import as_mask, brain_mask, voxel_sizes
from .dwi import ADC_MAX, b0_and_trace, check_not_empty, compute_adc, sanitize, split_shells
from .grid import MODEL_GRID, crop_box, model_grid_affine, resample_mask
from .lesion import (
    BILATERAL_FRACTION,
    lesion_side,
    lesion_side_from_points,
    lesion_volume_ml,
    voxel_centres_mm,
)
from .normalize import normalize_intensity

__all__ = [
    "voxel_sizes",
    "ADC_MAX",
    "BILATERAL_FRACTION",
    "MODEL_GRID",
    "as_mask",
    "b0_and_trace",
    "brain_mask",
    "check_not_empty",
    "compute_adc",
    "crop_box",
    "lesion_side",
    "lesion_side_from_points",
    "lesion_volume_ml",
    "model_grid_affine",
    "normalize_intensity",
    "resample_mask",
    "sanitize",
    "split_shells",
    "voxel_centres_mm",
]
