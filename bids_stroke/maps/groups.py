"""Who enters which group map, and the numbers that summarise a map (no I/O).

Participants are grouped by lesion hemisphere (bilateral lesions and participants without
a lesion enter no hemisphere map) and, within a hemisphere, by classification group at
the ensemble's decision threshold (``TP``, ``FP``, ``FN``, ``TN``; predicted poor when
``probability >= threshold``). :func:`mean_map` averages a group's images voxel-wise;
:func:`attention_summary` gives a map's attention mass inside the group's lesions and its
correlation with lesion probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ALL_GROUP",
    "CLASSIFICATION_GROUPS",
    "HEMISPHERES",
    "MapGroup",
    "attention_summary",
    "classification_groups",
    "hemisphere_of",
    "map_groups",
    "mean_map",
]

#: Classification groups at the decision threshold (poor outcome is the positive class).
CLASSIFICATION_GROUPS = ("TP", "FP", "FN", "TN")

#: ``desc`` label of the maps over every participant of a hemisphere.
ALL_GROUP = "all"

#: Hemisphere entity -> lesion side (``LesionSide`` of the lesion measures).
HEMISPHERES = {"L": "left", "R": "right"}


@dataclass(frozen=True)
class MapGroup:
    """A set of participants averaged into one map.

    Attributes
    ----------
    hemi : str
        ``"L"`` or ``"R"``: the lesion hemisphere.
    group : str
        :data:`ALL_GROUP` or one of :data:`CLASSIFICATION_GROUPS`.
    members : tuple of int
        Row positions of the participants in the table the group was built from.
    """

    hemi: str
    group: str
    members: tuple[int, ...]

    @property
    def n(self) -> int:
        """Number of participants in the group."""
        return len(self.members)


def mean_map(arrays: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Voxel-wise mean of a set of images on one grid.

    Parameters
    ----------
    arrays : sequence of ndarray of shape (X, Y, Z), or ndarray of shape (n, X, Y, Z)
        The participants' maps, all on the same grid. Non-finite voxels count as 0.

    Returns
    -------
    ndarray of shape (X, Y, Z), float32
        The mean, accumulated in float64.

    Raises
    ------
    ValueError
        No array is given, or the shapes differ.

    Examples
    --------
    >>> mean_map([np.zeros((2, 2, 2)), np.ones((2, 2, 2))])[0, 0, 0]
    np.float32(0.5)
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("'arrays' must hold at least one image. Got none instead.")
    shape = np.shape(arrays[0])
    total = np.zeros(shape, dtype=np.float64)
    for i, arr in enumerate(arrays):
        arr = np.asarray(arr, dtype=np.float64)
        if arr.shape != shape:
            raise ValueError(f"Every map must have the shape {shape}. Got {arr.shape} for map {i} instead.")
        total += np.where(np.isfinite(arr), arr, 0.0)
    return (total / len(arrays)).astype(np.float32)


def classification_groups(outcome, probability, threshold) -> np.ndarray:
    """Classification group of each participant: TP, FP, FN or TN.

    Parameters
    ----------
    outcome : array-like of shape (n,)
        1 for a poor outcome (mRS >= 3), 0 for a good outcome.
    probability : array-like of shape (n,)
        The ensemble's probability of a poor outcome.
    threshold : float or array-like of shape (n,)
        Decision threshold: predicted poor when ``probability >= threshold``.

    Returns
    -------
    ndarray of shape (n,), dtype object
        ``"TP"`` (poor, predicted poor), ``"FP"`` (good, predicted poor), ``"FN"`` (poor,
        predicted good) or ``"TN"`` (good, predicted good): a partition of the
        participants.

    Raises
    ------
    ValueError
        ``outcome`` holds values other than 0/1, or a probability or threshold is missing.

    Examples
    --------
    >>> classification_groups([1, 0, 1, 0], [0.9, 0.7, 0.2, 0.1], 0.5).tolist()
    ['TP', 'FP', 'FN', 'TN']
    """
    y = np.asarray(outcome, dtype=float).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    t = np.broadcast_to(np.asarray(threshold, dtype=float), p.shape)
    if y.shape != p.shape:
        raise ValueError(f"'outcome' and 'probability' must have the same length. Got {y.size} and {p.size} instead.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"'outcome' must be 0 (good) or 1 (poor). Got {sorted(set(y[~np.isin(y, (0, 1))]))} instead.")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("'probability' and 'threshold' must be finite for every participant. "
                         "Got missing values instead.")
    predicted = p >= t
    poor = y == 1
    out = np.empty(y.shape, dtype=object)
    out[poor & predicted] = "TP"
    out[~poor & predicted] = "FP"
    out[poor & ~predicted] = "FN"
    out[~poor & ~predicted] = "TN"
    return out


def hemisphere_of(side: Any) -> str | None:
    """Hemisphere entity (``"L"``/``"R"``) of a lesion side, or None.

    Parameters
    ----------
    side : str or None
        ``LesionSide`` of the lesion measures: ``left``, ``right``, ``bilateral``, ``none``
        (or ``L``/``R``). Case-insensitive.

    Returns
    -------
    str or None
        ``"L"``, ``"R"``, or None for bilateral, absent or unknown sides.
    """
    if not isinstance(side, str):
        return None
    key = side.strip().lower()
    return {"left": "L", "l": "L", "right": "R", "r": "R"}.get(key)


def map_groups(sides: Sequence[Any], groups: Sequence[str] | None = None) -> list[MapGroup]:
    """The groups of participants averaged into maps, in a fixed order.

    Parameters
    ----------
    sides : sequence of str of length n
        Lesion side of each participant (see :func:`hemisphere_of`).
    groups : sequence of str of length n, default=None
        Classification group of each participant (:func:`classification_groups`); None
        gives only the per-hemisphere groups.

    Returns
    -------
    list of MapGroup
        For each hemisphere ``L``, ``R``: :data:`ALL_GROUP`, then ``TP``, ``FP``, ``FN``,
        ``TN`` when ``groups`` is given. Groups may be empty.
    """
    hemis = [hemisphere_of(s) for s in sides]
    if groups is not None and len(groups) != len(hemis):
        raise ValueError(f"'groups' must have one entry per participant ({len(hemis)}). Got {len(groups)} instead.")
    out: list[MapGroup] = []
    for hemi in HEMISPHERES:
        in_hemi = [i for i, h in enumerate(hemis) if h == hemi]
        out.append(MapGroup(hemi, ALL_GROUP, tuple(in_hemi)))
        if groups is not None:
            for label in CLASSIFICATION_GROUPS:
                out.append(MapGroup(hemi, label, tuple(i for i in in_hemi if groups[i] == label)))
    return out


def attention_summary(attention: np.ndarray, lesion_probability: np.ndarray,
                      mask: np.ndarray | None = None) -> dict[str, float]:
    """Attention mass inside the lesion region and its correlation with lesion probability.

    Parameters
    ----------
    attention : ndarray of shape (X, Y, Z)
        A (group) attention map, non-negative.
    lesion_probability : ndarray of shape (X, Y, Z)
        The lesion probability map of the same participants, in [0, 1].
    mask : ndarray of bool of shape (X, Y, Z), default=None
        Voxels over which the correlation is computed (e.g. the template's brain mask);
        None means every voxel. The attention mass is always that of the whole map.

    Returns
    -------
    dict
        ``fraction_in_lesion``: sum of attention over voxels with lesion probability > 0
        divided by the total attention (NaN when the map sums to 0);
        ``correlation``: Pearson correlation of attention with lesion probability over the
        mask (NaN when either is constant there).

    Examples
    --------
    >>> att = np.array([[[0.0, 1.0], [3.0, 0.0]]])
    >>> attention_summary(att, np.array([[[0.0, 0.5], [0.5, 0.0]]]))["fraction_in_lesion"]
    1.0
    """
    att = np.nan_to_num(np.asarray(attention, dtype=np.float64))
    prob = np.nan_to_num(np.asarray(lesion_probability, dtype=np.float64))
    if att.shape != prob.shape:
        raise ValueError(f"'attention' and 'lesion_probability' must have the same shape. "
                         f"Got {att.shape} and {prob.shape} instead.")
    total = att.sum()
    fraction = float(att[prob > 0].sum() / total) if total > 0 else float("nan")
    if mask is None:
        a, b = att.ravel(), prob.ravel()
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != att.shape:
            raise ValueError(f"'mask' must have the shape {att.shape}. Got {mask.shape} instead.")
        a, b = att[mask], prob[mask]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        correlation = float("nan")
    else:
        correlation = float(np.corrcoef(a, b)[0, 1])
    return {"fraction_in_lesion": fraction, "correlation": correlation}
