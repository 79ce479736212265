"""Real lesion masks and clinical rows the cohort is built from (SOOP by default).

The shipped subset (``bids_stroke/data/soop``, see its ``ATTRIBUTION.md``) holds 40 real
SOOP lesion masks in MNI space with each patient's sex, age, NIHSS and modified Rankin
Scale at discharge (``gs_rankin_6isdeath``), used as the outcome proxy.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.errors import BadInputError, MissingInputError
from bids_stroke.spatial.resample import resample

#: Columns the participants table must have.
REQUIRED_COLUMNS = ("participant_id", "gs_rankin_6isdeath")
#: Columns copied when present (``n/a`` otherwise).
OPTIONAL_COLUMNS = ("age", "nihss", "sex")


@dataclass(frozen=True)
class Source:
    """One real patient: lesion mask file and clinical values.

    Attributes
    ----------
    soop_id : str
        ``participant_id`` in the source table (e.g. ``"sub-1003"``).
    mask_path : pathlib.Path
        Binary lesion mask in an MNI space (any grid).
    mrs : int
        Modified Rankin Scale at discharge (0–6).
    age, nihss : float or None
        Years; NIH Stroke Scale.
    sex : str or None
    """

    soop_id: str
    mask_path: Path
    mrs: int
    age: float | None
    nihss: float | None
    sex: str | None


def shipped_dir() -> Path:
    """Folder of the shipped SOOP subset (``lesions/`` and ``participants.tsv``)."""
    return Path(str(resources.files("bids_stroke") / "data" / "soop"))


def _number(value: str, column: str, path: Path):
    if value in ("", "n/a", "NaN", "nan"):
        return None
    try:
        x = float(value.rstrip("+"))  # censored values such as "89+" count as 89
    except ValueError:
        raise BadInputError(
            f"Column '{column}' of {path} must hold numbers or n/a. Got {value!r} instead."
        ) from None
    return None if math.isnan(x) else x


def read_sources(lesions_dir, participants_tsv) -> list[Source]:
    """Pair lesion masks with participants that have an outcome.

    Parameters
    ----------
    lesions_dir : path-like
        Folder of ``sub-<id>_*.nii[.gz]`` masks (one per participant).
    participants_tsv : path-like
        Table with :data:`REQUIRED_COLUMNS` (and optionally :data:`OPTIONAL_COLUMNS`).

    Returns
    -------
    list of Source
        Participants with both a mask and an mRS, sorted by ``participant_id``.

    Raises
    ------
    MissingInputError
        The folder or the table does not exist.
    BadInputError
        The table lacks a column, holds a bad value, or nothing pairs up.
    """
    lesions_dir, participants_tsv = Path(lesions_dir), Path(participants_tsv)
    if not lesions_dir.is_dir():
        raise MissingInputError(
            f"Lesion folder {lesions_dir} does not exist. Give --lesions a folder of "
            "sub-<id>_*_mask.nii.gz files."
        )
    if not participants_tsv.is_file():
        raise MissingInputError(f"Participants table {participants_tsv} does not exist.")
    masks = {}
    for path in sorted(lesions_dir.glob("sub-*.nii*")):
        pid = path.name.split("_")[0].split(".")[0]
        if pid in masks:
            raise BadInputError(
                f"Lesion folder {lesions_dir} holds two masks of {pid}: "
                f"{masks[pid].name} and {path.name}. Keep one per participant."
            )
        masks[pid] = path
    with open(participants_tsv, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise BadInputError(
                f"Participants table {participants_tsv} must have the columns "
                f"{', '.join(REQUIRED_COLUMNS)}. Missing: {', '.join(missing)}."
            )
        rows = list(reader)
    sources = []
    for row in rows:
        pid = row["participant_id"]
        mrs = _number(row["gs_rankin_6isdeath"], "gs_rankin_6isdeath", participants_tsv)
        if pid not in masks or mrs is None:
            continue
        if not (0 <= mrs <= 6 and float(mrs).is_integer()):
            raise BadInputError(
                f"Column 'gs_rankin_6isdeath' of {participants_tsv} must hold integers "
                f"0-6. Got {mrs} for {pid} instead."
            )
        sex = row.get("sex") or None
        sources.append(Source(
            soop_id=pid,
            mask_path=masks[pid],
            mrs=int(mrs),
            age=_number(row.get("age", "n/a"), "age", participants_tsv),
            nihss=_number(row.get("nihss", "n/a"), "nihss", participants_tsv),
            sex=None if sex in (None, "n/a") else sex,
        ))
    if not sources:
        raise BadInputError(
            f"No participant of {participants_tsv} has both an mRS and a mask in "
            f"{lesions_dir}."
        )
    return sorted(sources, key=lambda s: s.soop_id)


def check_mask_header(path: Path) -> None:
    """Raise BadInputError unless ``path`` is a readable 3D NIfTI image."""
    try:
        img = nib.load(str(path))
    except Exception as exc:
        raise BadInputError(f"Lesion mask {path} is not a readable NIfTI file: {exc}") from None
    if len(img.shape) != 3:
        raise BadInputError(f"Lesion mask {path} must be 3D. Got shape {img.shape} instead.")


def lesion_on_template(mask: np.ndarray, mask_affine, brain: np.ndarray,
                       template_affine) -> np.ndarray:
    """Resample a binary lesion mask onto the template grid by affine, within the brain.

    Parameters
    ----------
    mask : ndarray of shape (A, B, C)
        Lesion mask (non-zero = lesion) in any MNI-space grid.
    mask_affine : ndarray of shape (4, 4)
        Its voxel-to-world (mm) matrix.
    brain : ndarray of shape (X, Y, Z), bool
        Template brain mask.
    template_affine : ndarray of shape (4, 4)

    Returns
    -------
    ndarray of shape (X, Y, Z), uint8
        1 where the (nearest-neighbour resampled) lesion lies inside the brain.
    """
    src = (np.asarray(mask) > 0).astype(np.uint8)
    out = resample(src, mask_affine, template_affine, brain.shape, order=0, mode="constant", cval=0)
    return (out.astype(bool) & brain).astype(np.uint8)
