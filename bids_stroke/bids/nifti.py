"""Loading NIfTI inputs with one clear error per broken file, and grid comparisons."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nb
import numpy as np

from ..errors import BadInputError, MissingInputError

__all__ = ["check_nifti", "check_same_grid", "grids_match"]

_GZIP_MAGIC = b"\x1f\x8b"


def check_nifti(path, *, load_data=True, ndim=None) -> nb.Nifti1Image:
    """Load a NIfTI file, or fail with one line naming the file and the reason.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` or ``.nii.gz`` file.
    load_data : bool, default=True
        Also read (and decompress) every voxel, which detects truncated or corrupt
        files; the returned image then holds its data in memory. ``False`` reads the
        header only.
    ndim : int or tuple of int or None, default=None
        Allowed numbers of dimensions (e.g. ``3`` or ``(3, 4)``); ``None``: any.

    Returns
    -------
    nibabel.Nifti1Image
        The image (a :class:`nibabel.Nifti2Image`, a subclass, for NIfTI-2 files).

    Raises
    ------
    MissingInputError
        The file does not exist.
    BadInputError
        Named ``.gz`` but not gzip-compressed, a truncated or corrupt file, not a NIfTI
        image, or the wrong number of dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path} does not exist.")
    with open(path, "rb") as fobj:
        magic = fobj.read(2)
    if path.name.endswith(".gz") and magic != _GZIP_MAGIC:
        raise BadInputError(
            f"{path}: not gzip-compressed although named .gz (rename it to .nii, or "
            "compress it with gzip)."
        )
    try:
        img = nb.load(path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise BadInputError(f"{path}: truncated or corrupt file ({err}).") from err
    except (nb.filebasedimages.ImageFileError, nb.spatialimages.HeaderDataError,
            ValueError, OSError) as err:
        if magic == _GZIP_MAGIC and not _gzip_complete(path):
            raise BadInputError(
                f"{path}: truncated or corrupt file (its gzip stream is incomplete or damaged)."
            ) from err
        raise BadInputError(f"{path}: not a readable NIfTI image ({err}).") from err
    if not isinstance(img, nb.Nifti1Image):
        raise BadInputError(
            f"{path}: must be a NIfTI image. Got {type(img).__name__} instead."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if img.ndim not in allowed:
            raise BadInputError(
                f"{path}: must be a {' or '.join(f'{n}D' for n in allowed)} image. "
                f"Got shape {img.shape} instead."
            )
    if load_data:
        try:
            data = np.asanyarray(img.dataobj)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as err:
            raise BadInputError(f"{path}: truncated or corrupt file ({err}).") from err
        img = img.__class__(data, img.affine, img.header)
        img.set_filename(str(path))
    return img


def _gzip_complete(path: Path) -> bool:
    """Whether the gzip stream of ``path`` decompresses to its end."""
    try:
        with gzip.open(path, "rb") as fobj:
            while fobj.read(1 << 20):
                pass
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return False
    return True


def _as_image(img):
    if isinstance(img, (str, Path)):
        return check_nifti(img, load_data=False)
    return img


def grids_match(img_a, img_b, *, atol=1e-3) -> bool:
    """Whether two images share a voxel grid: same spatial shape and close affines.

    Parameters
    ----------
    img_a, img_b : nibabel image or str or Path
        Images (or their files; only headers are read).
    atol : float, default=1e-3
        Largest absolute difference allowed between affine entries (mm). The sform and
        qform codes are ignored: a mask saved by another tool often differs there and by
        rounding (~1e-7 mm) while lying on the same grid.

    Returns
    -------
    bool
    """
    img_a, img_b = _as_image(img_a), _as_image(img_b)
    if tuple(img_a.shape[:3]) != tuple(img_b.shape[:3]):
        return False
    return bool(np.allclose(img_a.affine, img_b.affine, rtol=0.0, atol=atol))


def check_same_grid(img, reference, *, atol=1e-3, name="lesion mask"):
    """Raise unless ``img`` lies on the voxel grid of ``reference``.

    Parameters
    ----------
    img, reference : nibabel image or str or Path
        The image to check and the reference (e.g. a lesion mask and its DWI).
    atol : float, default=1e-3
        Tolerance on affine entries (mm), see :func:`grids_match`.
    name : str, default="lesion mask"
        What ``img`` is, for the message.

    Raises
    ------
    BadInputError
        Shapes differ or affines differ by more than ``atol``.
    """
    img_path = img if isinstance(img, (str, Path)) else img.get_filename()
    ref_path = reference if isinstance(reference, (str, Path)) else reference.get_filename()
    img, reference = _as_image(img), _as_image(reference)
    if grids_match(img, reference, atol=atol):
        return
    diff = float(np.max(np.abs(img.affine - reference.affine)))
    raise BadInputError(
        f"{img_path or name}: the {name} must be on the grid of {ref_path or 'the reference'} "
        f"(shape {tuple(reference.shape[:3])}, affines within {atol} mm). Got shape "
        f"{tuple(img.shape[:3])}, largest affine difference {diff:.3g} mm instead; "
        "resample it onto the DWI grid."
    )
