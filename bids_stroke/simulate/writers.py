"""File names and deterministic, atomic writers of the simulated dataset.

Every file is written atomically with the writers of :mod:`bids_stroke.bids.writers`
(temporary file in the destination folder, then ``os.replace``), so that an interrupted
run leaves no half-written file.
NIfTI files are gzipped with a zero timestamp and no embedded name, so that the same seed
gives byte-identical files.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.bids import writers as bids_writers
from bids_stroke.bids.writers import write_bytes, write_text

__all__ = ["bids_stem", "nifti_bytes", "subject_dir", "write_bytes", "write_json", "write_nifti",
           "write_text", "write_tsv"]


def bids_stem(subject: str, session: str | None, **entities) -> str:
    """File-name stem ``sub-<L>[_ses-<S>][_<key>-<value>...]`` (entities in given order).

    Parameters
    ----------
    subject : str
        Label without ``sub-``.
    session : str or None
        Label without ``ses-``.
    **entities : str or None
        Further entities in order (e.g. ``space="X", res="1", label="lesion"``); None skips.
    """
    parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
    parts += [f"{k}-{v}" for k, v in entities.items() if v is not None]
    return "_".join(parts)


def subject_dir(root: Path, subject: str, session: str | None, datatype: str | None = "dwi"):
    """Folder ``root/sub-<L>[/ses-<S>][/<datatype>]``."""
    path = Path(root) / f"sub-{subject}"
    if session:
        path = path / f"ses-{session}"
    return path / datatype if datatype else path


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


def nifti_bytes(data: np.ndarray, affine: np.ndarray, *, code: int = 1,
                intent: str | None = None) -> bytes:
    """Gzipped NIfTI-1 bytes with a zero gzip timestamp.

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
    raw = img.to_bytes()
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw)
    return out.getvalue()


def write_nifti(path, data, affine, **kwargs) -> None:
    """Write a gzipped NIfTI atomically and deterministically (see :func:`nifti_bytes`)."""
    write_bytes(path, nifti_bytes(np.asarray(data), np.asarray(affine, float), **kwargs))
