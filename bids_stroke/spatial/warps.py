"""Resampling of images through the transforms of :mod:`bids_stroke.spatial.registration`.

Images go in and come out as nibabel images. Each is converted to ANTs on exactly its own
grid (:func:`~bids_stroke.spatial.registration.to_ants`), resampled with
``ants.apply_transforms`` onto the grid of a reference image, and returned with the
reference's affine, unchanged. A transform is an ITK composite transform (``.h5``): a
path to one, or its content as bytes (``RegistrationResult.forward``/``.inverse``).

The forward transform takes native images (b = 0, attention maps, lesion masks) onto the
template grid (:func:`apply_to_template`); the inverse takes template images onto the
native grid (:func:`apply_to_native`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.errors import BadInputError, MissingInputError, UsageError
from bids_stroke.spatial.registration import itk_threads, load_image, to_ants

#: Interpolations of :func:`apply_transform`, as ``ants.apply_transforms`` names them.
INTERPOLATIONS = ("linear", "nearestNeighbor", "genericLabel", "bSpline")

_LABEL_INTERPOLATIONS = ("nearestNeighbor", "genericLabel")


@contextmanager
def _transform_file(transform) -> Iterator[str]:
    if isinstance(transform, (bytes, bytearray, memoryview)):
        with tempfile.TemporaryDirectory(prefix="bids-stroke-xfm-") as tmp:
            path = Path(tmp) / "transform.h5"
            path.write_bytes(bytes(transform))
            yield str(path)
        return
    if not isinstance(transform, (str, os.PathLike)):
        raise UsageError("'transform' must be a path to an .h5 transform or its bytes. "
                         f"Got {type(transform).__name__} instead.")
    path = Path(transform)
    if not path.is_file():
        raise MissingInputError(f"The transform {path} does not exist.")
    if path.suffix not in (".h5", ".mat", ".txt"):
        raise UsageError(f"'transform' must be an ITK transform file (.h5). Got "
                         f"{str(path)!r} instead.")
    yield str(path)


def apply_transform(image, transform, reference, *, interpolation: str = "linear",
                    default_value: float = 0.0, threads: int = 1) -> nib.Nifti1Image:
    """Resample an image onto the grid of ``reference`` through a transform.

    Parameters
    ----------
    image : nibabel.Nifti1Image or path-like
        3D image, or 4D image whose volumes are resampled one by one.
    transform : path-like or bytes
        ITK composite transform (``.h5``) that maps ``image``'s space onto
        ``reference``'s, as written by :func:`~.registration.save_transforms`.
    reference : nibabel.Nifti1Image, TemplateFile or path-like
        Image that defines the output grid (shape and affine).
    interpolation : {"linear", "nearestNeighbor", "genericLabel", "bSpline"}, \
default="linear"
        ``genericLabel`` (labels interpolated with a Gaussian kernel) or
        ``nearestNeighbor`` for label images.
    default_value : float, default=0.0
        Value of output voxels that map outside ``image``.
    threads : int, default=1
        Number of ITK threads.

    Returns
    -------
    nibabel.Nifti1Image
        On ``reference``'s grid, with its affine. float32 for ``linear``/``bSpline``;
        the input's data type for the label interpolations.

    Raises
    ------
    UsageError
        When ``interpolation`` or ``transform`` is not allowed.
    BadInputError
        When ``image`` is neither 3D nor 4D.
    """
    if interpolation not in INTERPOLATIONS:
        raise UsageError(f"'interpolation' must be one of {INTERPOLATIONS}. Got "
                         f"{interpolation!r} instead.")
    import ants

    img, ref = load_image(image), load_image(reference)
    if img.ndim not in (3, 4):
        raise BadInputError(f"The image must be 3D or 4D. Got shape {img.shape} instead.")
    data = np.asarray(img.dataobj)
    volumes = [data] if img.ndim == 3 else [data[..., t] for t in range(data.shape[3])]
    out_dtype = (data.dtype if interpolation in _LABEL_INTERPOLATIONS
                 and np.issubdtype(data.dtype, np.number) else np.float32)
    with itk_threads(threads), _transform_file(transform) as path:
        fixed = to_ants(nib.Nifti1Image(np.zeros(ref.shape[:3], np.float32), ref.affine))
        out = []
        for volume in volumes:
            moving = to_ants(nib.Nifti1Image(np.asarray(volume, np.float32), img.affine))
            warped = ants.apply_transforms(fixed, moving, [path],
                                           interpolator=interpolation,
                                           defaultvalue=float(default_value))
            out.append(warped.numpy())
    result = np.stack(out, axis=-1) if img.ndim == 4 else out[0]
    if np.issubdtype(out_dtype, np.integer):
        result = np.rint(result)
    return _like(result.astype(out_dtype), ref)


def _like(data: np.ndarray, ref) -> nib.Nifti1Image:
    out = nib.Nifti1Image(data, ref.affine)
    out.header.set_xyzt_units("mm", "sec")
    codes = (1, 1)
    if isinstance(ref, nib.Nifti1Image):
        codes = (int(ref.header["sform_code"]) or 1, int(ref.header["qform_code"]) or 1)
    out.set_sform(ref.affine, code=codes[0])
    out.set_qform(ref.affine, code=codes[1])
    return out


def apply_to_template(image, transform_h5, template, *, interpolation: str = "linear",
                      default_value: float = 0.0, threads: int = 1) -> nib.Nifti1Image:
    """Take a native-space image onto the template grid.

    Parameters
    ----------
    image : nibabel.Nifti1Image or path-like
        3D or 4D image on a subject's native (DWI) grid.
    transform_h5 : path-like or bytes
        The forward (native → template) composite transform.
    template : TemplateFile, nibabel.Nifti1Image or path-like
        The template image that defines the output grid (e.g. 2 mm).
    interpolation : {"linear", "nearestNeighbor", "genericLabel", "bSpline"}, \
default="linear"
        See :func:`apply_transform`.
    default_value : float, default=0.0
        Value outside the native field of view.
    threads : int, default=1
        Number of ITK threads.

    Returns
    -------
    nibabel.Nifti1Image
        The image on the template grid.
    """
    return apply_transform(image, transform_h5, template, interpolation=interpolation,
                           default_value=default_value, threads=threads)


def apply_to_native(image, transform_h5, reference, *, interpolation: str = "linear",
                    default_value: float = 0.0, threads: int = 1) -> nib.Nifti1Image:
    """Take a template-space image onto a subject's native grid.

    Parameters
    ----------
    image : nibabel.Nifti1Image, TemplateFile or path-like
        3D or 4D image on the template grid.
    transform_h5 : path-like or bytes
        The inverse (template → native) composite transform.
    reference : nibabel.Nifti1Image or path-like
        An image on the native grid (e.g. the b = 0 image).
    interpolation : {"linear", "nearestNeighbor", "genericLabel", "bSpline"}, \
default="linear"
        See :func:`apply_transform`.
    default_value : float, default=0.0
        Value outside the template's field of view.
    threads : int, default=1
        Number of ITK threads.

    Returns
    -------
    nibabel.Nifti1Image
        The image on the native grid.
    """
    return apply_transform(image, transform_h5, reference, interpolation=interpolation,
                           default_value=default_value, threads=threads)


def warp_mask(mask, transform_h5, reference, *, threshold: float = 0.5,
              threads: int = 1) -> nib.Nifti1Image:
    """Resample a binary mask: linear interpolation of 0/1, then a threshold.

    Parameters
    ----------
    mask : nibabel.Nifti1Image or path-like
        3D mask; non-zero voxels are inside.
    transform_h5 : path-like or bytes
        Composite transform from the mask's space to the reference's.
    reference : nibabel.Nifti1Image, TemplateFile or path-like
        Image that defines the output grid.
    threshold : float, default=0.5
        Output voxels whose interpolated value is at least this are inside; in (0, 1].
        0.5 keeps the volume (mL) of a mask much larger than a voxel.
    threads : int, default=1
        Number of ITK threads.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask (0/1) on the reference grid.

    Raises
    ------
    UsageError
        When ``threshold`` is not in (0, 1].
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise UsageError(f"'threshold' must be in (0, 1]. Got {threshold!r} instead.")
    img = load_image(mask)
    binary = nib.Nifti1Image((np.asarray(img.dataobj) != 0).astype(np.float32), img.affine)
    warped = apply_transform(binary, transform_h5, reference, interpolation="linear",
                             threads=threads)
    return _like((np.asarray(warped.dataobj) >= float(threshold) - 1e-6).astype(np.uint8),
                 load_image(reference))


__all__ = ["INTERPOLATIONS", "apply_to_native", "apply_to_template", "apply_transform",
           "warp_mask"]
