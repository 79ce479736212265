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

The numeric functions are in :mod:`bids_stroke.maps.groups`;
:func:`write_group_maps` reads the participants' images and writes the maps, their JSON
sidecars (with the number of participants in each map) and a summary table.

File names
----------
In ``OUTPUT_DIR/group/`` (all from :func:`bids_stroke.bids.naming.derivative_path`):

- ``hemi-<L|R>_space-<TPL>_res-2_desc-<a1|a2|a3>_attention.nii.gz``: every participant of
  the hemisphere;
- ``hemi-<L|R>_space-<TPL>_res-2_desc-<scale><TP|FP|FN|TN>_attention.nii.gz``: one
  classification group of the hemisphere;
- ``hemi-<L|R>_space-<TPL>_res-2_label-lesion_desc-<all|TP|FP|FN|TN>_probseg.nii.gz``;
- ``space-<TPL>_res-2_desc-attention_stats.tsv`` (+ ``.json`` data dictionary): the
  quantitative summary, one row per attention map.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from bids_stroke.bids.naming import bids_uri, derivative_path
from bids_stroke.bids.writers import write_json, write_nifti, write_tsv
from bids_stroke.model.spec import SCALES
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

from .groups import (
    ALL_GROUP,
    HEMISPHERES,
    attention_summary,
    classification_groups,
    map_groups,
    mean_map,
)

__all__ = [
    "attention_columns",
    "group_map_path",
    "summary_dictionary",
    "summary_path",
    "write_group_maps",
]

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

    def mean_of(column: str, members: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray | None, list[str],
                                                              dict[str, list[str]]]:
        used = [i for i in members if _present(table.at[i, column])]
        if not used:
            return None, None, [], {}
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
        return mean_map(arrays), ref_affine, [ids[i] for i in used], _sources(table[column][used], output_dir)

    written: list[Path] = []
    rows: list[dict[str, Any]] = []
    for mg in sets:
        description = "every participant" if mg.group == ALL_GROUP else f"the {mg.group} participants"
        side = HEMISPHERES[mg.hemi]
        lesion, lesion_affine, lesion_ids, lesion_sources = mean_of("lesion", mg.members)
        lesion_file = None
        if lesion is not None:
            lesion_file = group_map_path(output_dir, space=space, hemi=mg.hemi, group=mg.group)
            meta = {
                "Description": f"Lesion probability map: voxel-wise mean of the template-space lesion masks of "
                               f"{description} with a {side} lesion",
                "Units": "probability (0-1)", "Hemisphere": mg.hemi, "LesionSide": side,
                "ClassificationGroup": mg.group, "NumberOfParticipants": len(lesion_ids),
                "Participants": lesion_ids, **lesion_sources, **extra,
            }
            written.append(write_nifti(lesion_file, _image(lesion, lesion_affine), meta))
        for scale, column in columns.items():
            att, att_affine, att_ids, att_sources = mean_of(column, mg.members)
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
                    "NumberOfParticipants": len(att_ids), "Participants": att_ids, **att_sources, **extra,
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


def _sources(cells: Sequence[Any], output_dir: str | os.PathLike) -> dict[str, list[str]]:
    """``{"Sources": [...]}``: the BIDS URIs of the files averaged into a map (``bids::`` for
    OUTPUT_DIR's own files); ``{}`` when the maps were given as arrays or images."""
    files = [cell for cell in cells if isinstance(cell, (str, os.PathLike))]
    return {"Sources": [bids_uri(path, output_dir, {}) for path in files]} if files else {}


def _image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=4)
    img.set_sform(affine, code=4)
    return img
