"""One job of the group level: one variant trained on one LOCO fold, and its seed.

:func:`train_fold_variant` splits the fold's training sites 75:25, checks that nothing of
the held-out site is used, trains (:func:`~bids_stroke.train.loop.train_variant`),
predicts the held-out participants and saves the model; :func:`derive_seed` gives each
fold × variant its own reproducible seed from the run's ``--random-seed``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np

from bids_stroke.model.bundle import save_keras

from .folds import Fold, check_fold_outcomes, check_no_leakage, train_validation_split
from .loop import check_volumes, predict_probabilities, train_variant
from .sampling import normalise_sides

__all__ = ["derive_seed", "save_model", "train_fold_variant"]


def derive_seed(random_seed: int, *keys) -> int:
    """A seed in [0, 2**31) that depends on ``random_seed`` and ``keys`` only.

    Stable across processes and Python versions (SHA-256 of the text of the values), so
    every job of the group level gets its own reproducible seed.

    Examples
    --------
    >>> derive_seed(0, "site-A", "f8-g1.5") == derive_seed(0, "site-A", "f8-g1.5")
    True
    """
    text = "\x1f".join([str(int(random_seed)), *(str(key) for key in keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def save_model(model: keras.Model, path) -> Path:
    """Save a model atomically and byte-reproducibly; return ``path``.

    :func:`~bids_stroke.model.bundle.save_keras`: the same trained model always gives the
    same bytes, so a resumed group run writes the files of an uninterrupted one.

    Raises
    ------
    ValueError
        When ``path`` does not end in ``.keras``.
    """
    return save_keras(model, path)


def train_fold_variant(volumes, outcomes, sites, sides, fold: Fold, variant: str, *, epochs: int,
                       patience: int, seed: int, batch_size: int = 16,
                       learning_rate: float = 1e-4, model_path=None, verbose: int = 0,
                       callbacks=None, precision: str = "float32", size_branch: str = "none") -> dict:
    """Train one variant on one LOCO fold and predict its held-out participants.

    Splits ``fold.trainval_index`` 75:25 by site × outcome (:func:`train_validation_split`
    with ``seed``), checks that nothing of the held-out site is used
    (:func:`~bids_stroke.train.folds.check_no_leakage`), trains with
    :func:`train_variant` (``seed``) and predicts ``fold.test_index``.

    Parameters
    ----------
    volumes : array-like, shape (n, X, Y, Z) or (n, X, Y, Z, 1)
        Every participant's normalised volume on the model grid.
    outcomes : array-like of {0, 1}, shape (n,)
        Poor (1) or good (0) outcome.
    sites : array-like of str, shape (n,)
        Acquisition sites (the original labels).
    sides : array-like of str, shape (n,), or None
        Lesion sides (:data:`~bids_stroke.train.sampling.SIDES`).
    fold : Fold
        From :func:`~bids_stroke.train.folds.loco_folds` on the same ``sites``.
    variant : str
    epochs, patience : int
    seed : int
        Seed of the split and the training (e.g. :func:`derive_seed` of the run's seed,
        the fold name and the variant).
    batch_size : int, default=16
    learning_rate : float, default=1e-4
    model_path : path-like, default=None
        If given (``.keras``), the trained model is saved there atomically.
    verbose : int, default=0
    callbacks : list of keras.callbacks.Callback, default=None
        Passed to :func:`train_variant` (e.g. a progress line per epoch).
    precision : {"float32", "bfloat16"}, default="float32"
        Passed to :func:`train_variant`.
    size_branch : {"none", "mean"}, default="none"
        Passed to :func:`train_variant`.

    Returns
    -------
    dict
        ``fold``, ``variant``, ``seed``, ``precision``; ``test_index`` (ndarray of int) and
        ``probabilities`` (ndarray of float, shape (n_test,)) of the held-out participants;
        ``train_index`` and ``validation_index``; ``validation_probabilities`` (the trained
        model's predictions of its validation participants, which it never trained on:
        the inner held-out predictions of :mod:`bids_stroke.stats.fusion`); ``best_epoch`` (from 1),
        ``best_val_loss``, ``epochs_run``, ``stopped_early``, ``seconds``, ``history``
        (see :class:`TrainResult`); ``model`` (the trained keras Model) and ``model_path``
        (a :class:`pathlib.Path` or None).

    Raises
    ------
    BadInputError
        The fold has fewer than two participants of either outcome to train on.
    """
    x = check_volumes(volumes, "volumes")
    y = np.asarray(outcomes).reshape(-1)
    n = x.shape[0]
    if y.size != n:
        raise ValueError(f"'outcomes' must have {n} entries (one per volume). Got {y.size} instead.")
    sides = normalise_sides(sides, n)
    check_fold_outcomes(fold, y)
    train_index, validation_index = train_validation_split(fold.trainval_index, sites, y, seed=seed)
    check_no_leakage(fold, sites, train_index, validation_index)
    result = train_variant(variant, x[train_index], y[train_index], x[validation_index],
                           y[validation_index], sides=sides[train_index], epochs=epochs,
                           patience=patience, batch_size=batch_size, learning_rate=learning_rate,
                           seed=seed, verbose=verbose, callbacks=callbacks, precision=precision,
                           size_branch=size_branch)
    probabilities = predict_probabilities(result.model, x[fold.test_index], batch_size=batch_size)
    validation_probabilities = predict_probabilities(result.model, x[validation_index], batch_size=batch_size)
    saved = save_model(result.model, model_path) if model_path is not None else None
    return {
        "fold": fold.name, "variant": variant, "seed": int(seed), "precision": precision,
        "test_index": np.asarray(fold.test_index, dtype=np.int64), "probabilities": probabilities,
        "train_index": train_index, "validation_index": validation_index,
        "validation_probabilities": validation_probabilities,
        "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
        "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        "seconds": result.seconds, "history": result.history,
        "model": result.model, "model_path": saved,
    }
