"""Deterministic, atomic writers of the simulated dataset.

Every file is written with the writers of :mod:`bids_stroke.bids.writers` (temporary file
in the destination folder, then a rename), so that an interrupted run leaves no
half-written file, and the same seed gives byte-identical files. File names come from
:mod:`bids_stroke.bids.naming`.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from bids_stroke.bids import writers as bids_writers
from bids_stroke.bids.writers import write_bytes, write_text

__all__ = ["nifti_image", "write_bytes", "write_json", "write_nifti", "write_text", "write_tsv"]


def write_json(path, obj) -> None:
    """Write a JSON document (indented, keys in given order) atomically."""
    bids_writers.write_json(path, obj, sort_keys=False)


def write_tsv(path, header, rows) -> None:
    """Write a TSV table; None and NaN become ``n/a``."""

    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "n/a"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    lines = ["\t".join(header)] + ["\t".join(fmt(v) for v in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def nifti_image(data: np.ndarray, affine: np.ndarray, *, code: int = 1,
                intent: str | None = None) -> nib.Nifti1Image:
    """A NIfTI-1 image with the simulator's header: qform = sform, mm and s units.

    Parameters
    ----------
    data : ndarray
        Stored as its own dtype.
    affine : ndarray of shape (4, 4)
        Written to both qform and sform.
    code : int, default=1
        qform/sform code (1 scanner, 4 MNI152).
    intent : str or None
        NIfTI intent name (e.g. ``"vector"``).
    """
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    img.set_qform(affine, code=code)
    img.set_sform(affine, code=code)
    img.header.set_xyzt_units("mm", "sec")
    if intent:
        img.header.set_intent(intent)
    return img


def write_nifti(path, data, affine, **kwargs) -> None:
    """Write a NIfTI image atomically and reproducibly (see :func:`nifti_image`)."""
    bids_writers.write_nifti(path, nifti_image(np.asarray(data), np.asarray(affine, float), **kwargs))
