"""Group attention and lesion-probability maps in template space.

Following Moulton et al. (JCBFM 2022, "Interpretation"), every participant's
out-of-center attention maps (a1, a2, a3; already the mean over the ensemble's variants
and warped into template space) and template-space lesion mask are averaged voxel-wise
over groups of participants:

- per lesion hemisphere (``hemi-L``: left lesions, ``hemi-R``: right lesions; bilateral
  lesions and participants without a lesion enter no hemisphere map);
- per hemisphere and classification group at the ensemble's decision threshold
  (``TP``, ``FP``, ``FN``, ``TN``; predicted poor when ``probability >= threshold``).

Lesion probability maps are the voxel-wise means of the binary lesion masks of the same
groups. Each map is summarised by the fraction of its attention mass inside the group's
lesion-probability > 0 region and by the Pearson correlation of attention with lesion
probability over the voxels of the template.

The numeric functions (:func:`mean_map`, :func:`classification_groups`,
:func:`hemisphere_of`, :func:`map_groups`, :func:`attention_summary`) do no I/O;
:func:`write_group_maps` reads the participants' images and writes the maps, their JSON
sidecars (with the number of participants in each map) and a summary table.

File names
----------
In ``OUTPUT_DIR/group/`` (all from :func:`bids_stroke.bids.naming.derivative_path`):

- ``space-<TPL>_res-2_hemi-<L|R>_desc-<a1|a2|a3>_attention.nii.gz``: every participant of
  the hemisphere;
- ``space-<TPL>_res-2_hemi-<L|R>_desc-<scale><TP|FP|FN|TN>_attention.nii.gz``: one
  classification group of the hemisphere;
- ``space-<TPL>_res-2_hemi-<L|R>_label-lesion_desc-<all|TP|FP|FN|TN>_probseg.nii.gz``;
- ``space-<TPL>_res-2_desc-attention_stats.tsv`` (+ ``.json`` data dictionary): the
  quantitative summary, one row per attention map.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from bids_stroke.bids.naming import derivative_path

from bids_stroke.bids.writers import write_json, write_nifti, write_tsv
from bids_stroke.model.spec import SCALES
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

__all__ = [
    "ALL_GROUP",
    "CLASSIFICATION_GROUPS",
    "HEMISPHERES",
    "MapGroup",
    "attention_summary",
    "attention_columns",
    "classification_groups",
    "group_map_path",
    "hemisphere_of",
    "map_groups",
    "mean_map",
    "summary_dictionary",
    "write_group_maps",
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


# ---------------------------------------------------------------------------------------
# Numeric functions
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------
def group_map_path(output_dir: str | os.PathLike, *, space: str, hemi: str, group: str = ALL_GROUP,
                   scale: str | None = None, extension: str = ".nii.gz") -> Path:
    """Path of a group map (or of its figure, with ``extension=".png"``).

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    space : str
        Template space entity, e.g. ``MNI152NLin2009cAsym``.
    hemi : {"L", "R"}
        Lesion hemisphere.
    group : str, default="all"
        :data:`ALL_GROUP` or one of :data:`CLASSIFICATION_GROUPS`.
    scale : {"a1", "a2", "a3"} or None, default=None
        Attention scale; None names the lesion probability map.
    extension : str, default=".nii.gz"
        ``.nii.gz``, ``.json``, ``.png`` or ``.svg``.
    """
    if scale is None:
        return derivative_path(output_dir, None, datatype="group", space=space, res=DEFAULT_RESOLUTION, hemi=hemi,
                               label="lesion", desc=group, suffix="probseg", extension=extension)
    desc = scale if group == ALL_GROUP else f"{scale}{group}"
    return derivative_path(output_dir, None, datatype="group", space=space, res=DEFAULT_RESOLUTION, hemi=hemi,
                           desc=desc, suffix="attention", extension=extension)


def summary_path(output_dir: str | os.PathLike, *, space: str, extension: str = ".tsv") -> Path:
    """Path of the quantitative summary table of the group attention maps."""
    return derivative_path(output_dir, None, datatype="group", space=space, res=DEFAULT_RESOLUTION,
                           desc="attention", suffix="stats", extension=extension)


def summary_dictionary() -> dict[str, dict[str, Any]]:
    """Data dictionary of the summary table (column order = table order)."""
    return {
        "scale": {"Description": "Attention scale", "Levels": {
            "a1": "convolutional block 3", "a2": "convolutional block 4", "a3": "convolutional block 5"}},
        "hemi": {"Description": "Lesion hemisphere of the participants",
                 "Levels": {"L": "left lesions", "R": "right lesions"}},
        "group": {"Description": "Classification group at the ensemble's decision threshold", "Levels": {
            ALL_GROUP: "every participant of the hemisphere",
            "TP": "poor outcome, predicted poor", "FP": "good outcome, predicted poor",
            "FN": "poor outcome, predicted good", "TN": "good outcome, predicted good"}},
        "n": {"Description": "Participants averaged into the attention map", "Units": "participants"},
        "fraction_in_lesion": {"Description": "Attention mass inside the voxels where the group's lesion "
                                              "probability is > 0, over the total attention mass",
                               "Units": "fraction (0-1)"},
        "correlation": {"Description": "Pearson correlation of attention with lesion probability over the "
                                       "template's brain mask (every voxel when no mask is available)"},
        "attention_map": {"Description": "File name of the attention map (n/a when the group is empty)"},
        "lesion_map": {"Description": "File name of the lesion probability map (n/a when the group is empty)"},
    }


def attention_columns(participants: pd.DataFrame) -> dict[str, str]:
    """Column of each scale's attention map: ``attention_<scale>`` or ``<scale>``."""
    out = {}
    for scale in SCALES:
        for column in (f"attention_{scale}", scale):
            if column in participants.columns:
                out[scale] = column
                break
    return out


def _load(value: Any, affine: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(value, nib.spatialimages.SpatialImage):
        return np.asarray(value.dataobj, dtype=np.float32), value.affine
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False), affine
    img = nib.load(os.fspath(value))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (np.ndarray, nib.spatialimages.SpatialImage)):
        return True
    if isinstance(value, float) and np.isnan(value):
        return False
    return str(value) not in ("", "n/a", "nan")


def write_group_maps(
    output_dir: str | os.PathLike,
    participants: pd.DataFrame,
    *,
    space: str,
    mask: Any = None,
    affine: np.ndarray | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Average the participants' template-space maps into group maps and write them.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR; files go to ``OUTPUT_DIR/group/`` (module docstring).
    participants : pandas.DataFrame
        One row per participant with the columns ``participant_id``; ``outcome`` (1 poor,
        0 good); ``probability`` (the ensemble's out-of-center probability of a poor
        outcome); ``threshold`` (the decision threshold, a column or one value for all);
        ``side`` (lesion side: left, right, bilateral, none); ``attention_a1``,
        ``attention_a2``, ``attention_a3`` (or ``a1``, ``a2``, ``a3``: the out-of-center
        attention maps in template space); ``lesion`` (template-space lesion mask). Map
        cells hold a path, a nibabel image or an ndarray of shape (X, Y, Z); a missing
        cell leaves that participant out of that scale's maps.
    space : str
        Template space entity of the maps, e.g. ``MNI152NLin2009cAsym``.
    mask : path-like, nibabel image or ndarray of bool, default=None
        Brain mask on the maps' grid for the correlations; None uses every voxel.
    affine : ndarray of shape (4, 4), default=None
        Affine of the maps when every cell is an ndarray.
    metadata : mapping, default=None
        Extra keys for every sidecar (e.g. ``SpatialReference``, ``Variants``).

    Returns
    -------
    list of pathlib.Path
        The NIfTI maps written (sidecars beside them), then the summary table and its data
        dictionary. Empty groups get no map; their summary row says ``n = 0``.

    Raises
    ------
    ValueError
        A column is missing, or the maps do not share one grid.
    """
    required = ("participant_id", "outcome", "probability", "threshold", "side", "lesion")
    missing = [c for c in required if c not in participants.columns]
    columns = attention_columns(participants)
    if missing or not columns:
        raise ValueError(f"'participants' must have the columns {list(required)} and attention_a1..a3. "
                         f"Got {list(participants.columns)} instead.")
    table = participants.reset_index(drop=True)
    ids = table["participant_id"].astype(str).tolist()
    groups = classification_groups(table["outcome"], table["probability"], table["threshold"])
    sets = map_groups(table["side"].tolist(), list(groups))
    extra = dict(metadata or {})

    brain = None
    if mask is not None:
        brain = _load(mask, affine)[0] > 0

    def mean_of(column: str, members: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
        used = [i for i in members if _present(table.at[i, column])]
        if not used:
            return None, None, []
        ref_affine = affine
        arrays = []
        for i in used:
            data, aff = _load(table.at[i, column], affine)
            if ref_affine is None:
                ref_affine = aff
            elif aff is not None and not np.allclose(aff, ref_affine, atol=1e-3):
                raise ValueError(f"Every map must share one grid. Got another affine for {ids[i]} ({column}).")
            arrays.append(data)
        if ref_affine is None:
            raise ValueError("'affine' must be given when the maps are arrays. Got None instead.")
        return mean_map(arrays), ref_affine, [ids[i] for i in used]

    written: list[Path] = []
    rows: list[dict[str, Any]] = []
    for mg in sets:
        description = "every participant" if mg.group == ALL_GROUP else f"the {mg.group} participants"
        side = HEMISPHERES[mg.hemi]
        lesion, lesion_affine, lesion_ids = mean_of("lesion", mg.members)
        lesion_file = None
        if lesion is not None:
            lesion_file = group_map_path(output_dir, space=space, hemi=mg.hemi, group=mg.group)
            meta = {
                "Description": f"Lesion probability map: voxel-wise mean of the template-space lesion masks of "
                               f"{description} with a {side} lesion",
                "Units": "probability (0-1)", "Hemisphere": mg.hemi, "LesionSide": side,
                "ClassificationGroup": mg.group, "NumberOfParticipants": len(lesion_ids),
                "Participants": lesion_ids, **extra,
            }
            written.append(write_nifti(lesion_file, _image(lesion, lesion_affine), meta))
        for scale, column in columns.items():
            att, att_affine, att_ids = mean_of(column, mg.members)
            row: dict[str, Any] = {"scale": scale, "hemi": mg.hemi, "group": mg.group, "n": len(att_ids),
                                   "fraction_in_lesion": np.nan, "correlation": np.nan,
                                   "attention_map": None, "lesion_map": lesion_file.name if lesion_file else None}
            if att is not None:
                path = group_map_path(output_dir, space=space, hemi=mg.hemi, group=mg.group, scale=scale)
                meta = {
                    "Description": f"Mean out-of-center attention map {scale} of {description} with a {side} "
                                   "lesion (each participant's map is the mean over the ensemble's variants)",
                    "Units": "attention weight (softmax over the voxels of the scale), resampled",
                    "Scale": scale, "Hemisphere": mg.hemi, "LesionSide": side, "ClassificationGroup": mg.group,
                    "NumberOfParticipants": len(att_ids), "Participants": att_ids, **extra,
                }
                written.append(write_nifti(path, _image(att, att_affine), meta))
                row["attention_map"] = path.name
                if lesion is not None and lesion.shape == att.shape:
                    row.update(attention_summary(att, lesion, brain if brain is not None
                                                 and brain.shape == att.shape else None))
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(summary_dictionary()))
    written.append(write_tsv(summary_path(output_dir, space=space), frame))
    written.append(write_json(summary_path(output_dir, space=space, extension=".json"), summary_dictionary(),
                              sort_keys=False))
    return written


def _image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=4)
    img.set_sform(affine, code=4)
    return img
