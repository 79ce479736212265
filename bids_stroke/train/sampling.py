"""Random oversampling of a training set to balance outcome × lesion side.

The training participants fall into cells of outcome (good 0, poor 1) × lesion side
(:data:`SIDES`). Balancing means that every non-empty cell reaches the size of the
largest one: each cell keeps all its participants once and draws the missing ones from
itself at random with replacement (empty cells stay empty: nothing can be drawn from
them). The result is a list of positions into the training set, so only training
participants are ever repeated.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIDES", "balance_cells", "normalise_sides", "oversample"]

#: Lesion sides: those of :func:`bids_stroke.preprocess.lesion.lesion_side`
#: (``none`` = no lesion voxel) and ``unknown`` for a missing value.
SIDES = ("left", "right", "bilateral", "none", "unknown")

_MISSING = ("", "n/a", "nan")


def normalise_sides(sides, n: int | None = None) -> np.ndarray:
    """Lesion sides as lower-case labels of :data:`SIDES`.

    Parameters
    ----------
    sides : array-like of str, shape (n,), or None
        ``None`` entries, NaN, ``""`` and ``"n/a"`` become ``"unknown"``; ``sides=None``
        means all unknown (needs ``n``).
    n : int, default=None
        Expected length.

    Returns
    -------
    ndarray of str (object), shape (n,)
    """
    if sides is None:
        if n is None:
            raise ValueError("'n' must be given when 'sides' is None.")
        return np.full(n, "unknown", dtype=object)
    values = np.asarray(sides, dtype=object)
    if values.ndim != 1 or (n is not None and values.size != n):
        raise ValueError(f"'sides' must have shape ({n if n is not None else 'n'},). "
                         f"Got shape {values.shape} instead.")
    out = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append("unknown")
            continue
        text = str(value).strip().lower()
        out.append("unknown" if text in _MISSING else text)
    bad = sorted(set(out) - set(SIDES))
    if bad:
        raise ValueError(f"'sides' must hold {', '.join(SIDES)} or a missing value. Got {bad} instead.")
    return np.array(out, dtype=object)


def balance_cells(outcomes, sides) -> dict[tuple[int, str], int]:
    """Participants per (outcome, side) cell, non-empty cells only."""
    y = np.asarray(outcomes).astype(np.int64)
    labels = normalise_sides(sides, y.size)
    cells: dict[tuple[int, str], int] = {}
    for key in zip(y.tolist(), labels.tolist()):
        cells[key] = cells.get(key, 0) + 1
    return dict(sorted(cells.items()))


def oversample(outcomes, sides=None, *, seed) -> np.ndarray:
    """Positions of a randomly oversampled training set, balanced by outcome × side.

    Parameters
    ----------
    outcomes : array-like of {0, 1}, shape (n,)
        Outcome of each training participant (1 = poor).
    sides : array-like of str, shape (n,), default=None
        Lesion side of each training participant (:data:`SIDES`); None balances the
        outcome only.
    seed : int or sequence of int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray of int, shape (n_cells * largest_cell,)
        Positions in ``range(n)`` in a random order: every participant at least once,
        every non-empty outcome × side cell exactly ``largest_cell`` times.

    Examples
    --------
    >>> index = oversample([0, 0, 0, 1], ["left", "left", "right", "left"], seed=0)
    >>> sorted(np.bincount(index, minlength=4).tolist())
    [1, 1, 2, 2]
    """
    y = np.asarray(outcomes)
    if y.ndim != 1 or (y.size and not np.isin(y, (0, 1)).all()):
        raise ValueError(f"'outcomes' must be a 1-D array of 0 and 1. Got {y!r} instead.")
    y = y.astype(np.int64)
    labels = normalise_sides(sides, y.size)
    rng = np.random.default_rng(seed)
    if y.size == 0:
        return np.array([], dtype=np.int64)
    keys = sorted(set(zip(y.tolist(), labels.tolist())))
    members = [np.flatnonzero((y == value) & (labels == side)) for value, side in keys]
    largest = max(m.size for m in members)
    parts = [np.concatenate([m, rng.choice(m, largest - m.size, replace=True)]) for m in members]
    return rng.permutation(np.concatenate(parts)).astype(np.int64)
