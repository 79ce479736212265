"""The template cache: template files derived at another resolution or masked, written once.

Derived files live in :func:`~bids_stroke.spatial.templates.cache_dir`, named after the
original's identity, with the licence notice of the original beside them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_stroke.bids.writers import write_nifti, write_text
from bids_stroke.errors import MissingInputError, OutputError

__all__ = ["derived_path", "resample_file", "template_filename", "write_template_nifti"]


def template_filename(space: str, resolution: int | str, suffix: str, desc: str | None) -> str:
    """TemplateFlow's file name ``tpl-<space>_res-<res>[_desc-<desc>]_<suffix>.nii.gz``.

    An integer ``resolution`` is written with two digits (``res-02``), a string as given.
    """
    res = f"{resolution:02d}" if isinstance(resolution, int) else resolution
    desc_part = f"_desc-{desc}" if desc else ""
    return f"tpl-{space}_res-{res}{desc_part}_{suffix}.nii.gz"


def derived_path(cache: Path, original: Path, space: str, resolution: int, suffix: str,
                  desc: str | None, tag: str | None = None) -> Path:
    if tag is None:
        stat = original.stat()
        key = f"{original.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        tag = "templateflow-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache / tag / template_filename(space, int(resolution), suffix, desc)


def resample_file(original: Path, out: Path, resolution: int, licence: str, *,
                   is_mask: bool) -> str:
    """Write ``original`` decimated to ``resolution`` mm into ``out`` unless cached.

    Returns the description of the derivation.
    """
    img = nib.load(original)
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    step = resolution / zooms
    if not np.allclose(step, np.round(step)) or np.any(np.round(step) < 1):
        raise MissingInputError(
            f"Cannot make a {resolution} mm grid from {original} (voxel size "
            f"{tuple(zooms)} mm); use a resolution that is a multiple of it.")
    step = np.round(step).astype(int)
    fwhm = np.sqrt(np.maximum(step.astype(float) ** 2 - 1.0, 0.0))
    derivation = ("" if np.all(step == 1) else
                  f"resampled from {tuple(float(z) for z in zooms)} mm by a Gaussian "
                  f"pre-filter (FWHM {tuple(round(float(f), 3) for f in fwhm)} voxels) "
                  f"and decimation by {tuple(int(s) for s in step)}, first voxel kept"
                  + ("; thresholded at 0.5" if is_mask else ""))
    if out.is_file():
        return derivation
    data = np.asarray(img.dataobj, np.float32)
    if is_mask:
        data = (data > 0.5).astype(np.float32)
    if np.any(step > 1):
        data = ndimage.gaussian_filter(data, fwhm / np.sqrt(8 * np.log(2)), mode="nearest")
    data = data[::step[0], ::step[1], ::step[2]]
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] * step[np.newaxis, :]
    data = (data > 0.5).astype(np.uint8) if is_mask else data
    write_template_nifti(out, data, affine, licence)
    return derivation


def write_template_nifti(out: Path, data: np.ndarray, affine: np.ndarray, licence: str) -> None:
    """Write a NIfTI file atomically, with the licence notice in the same folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        notice = out.parent / "NOTICE"
        if not notice.is_file():
            write_text(notice, (
                "Files in this folder are derived from the ICBM 2009c templates "
                "(McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill "
                f"University). Licence notice of the original:\n\n{licence}\n"))
        img = nib.Nifti1Image(data, affine)
        img.header.set_xyzt_units("mm", "sec")
        img.set_sform(affine, code=4)
        img.set_qform(affine, code=4)
        write_nifti(out, img)
    except OSError as exc:
        raise OutputError(f"Cannot write the template cache file {out}: {exc}. Set "
                          "XDG_CACHE_HOME to a writable folder.") from exc
