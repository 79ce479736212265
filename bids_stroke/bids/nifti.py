"""Loading NIfTI inputs with one clear error per broken file, and grid comparisons."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import nibabel as nb
import numpy as np

from ..errors import BadInputError, MissingInputError

__all__ = ["MAX_GZIP_DATA_BYTES", "check_header", "check_nifti", "check_same_grid", "grids_match"]

_GZIP_MAGIC = b"\x1f\x8b"

#: Most bytes of voxel data a ``.nii.gz`` may claim (4 GiB): its size is unknown until
#: every byte is decompressed, so larger claims are refused before reading.
MAX_GZIP_DATA_BYTES = 2**32

#: Largest uncompressed/compressed size ratio of a gzip (deflate) stream is ~1032:1; a
#: header claiming more data than this times the file size cannot be telling the truth.
_DEFLATE_MAX_RATIO = 1100

#: Smallest ``|det(A)| / prod(|columns of A|)`` of an affine's 3x3 part (1 for
#: orthogonal axes, 0 when the voxel axes are coplanar): below it the affine is singular.
_MIN_AFFINE_SINE = 1e-6


def check_nifti(path, *, load_data=True, ndim=(3, 4)) -> nb.Nifti1Image:
    """Load a NIfTI file, or fail with one line naming the file and the reason.

    Parameters
    ----------
    path : str or Path
        A ``.nii`` or ``.nii.gz`` file.
    load_data : bool, default=True
        Also read (and decompress) every voxel, which detects truncated or corrupt
        files; the returned image then holds its data in memory. ``False`` reads the
        header only.
    ndim : int or tuple of int, default=(3, 4)
        Allowed numbers of dimensions (e.g. ``3`` or ``(3, 4)``).

    Returns
    -------
    nibabel.Nifti1Image
        The image (a :class:`nibabel.Nifti2Image`, a subclass, for NIfTI-2 files).

    Raises
    ------
    MissingInputError
        The file does not exist.
    BadInputError
        An empty file, named ``.gz`` but not gzip-compressed, a truncated or corrupt file, not a NIfTI
        image, or a header that cannot describe it (:func:`check_header`: the wrong
        number of dimensions, an empty dimension, voxel sizes that are not positive, an
        affine that is not finite or not invertible, more voxel data than the file can
        hold). The header is checked before any voxel is read.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path} does not exist.")
    with open(path, "rb") as fobj:
        magic = fobj.read(2)
    if not magic:
        raise BadInputError(f"{path}: the file is empty (0 bytes).")
    if path.name.endswith(".gz") and magic != _GZIP_MAGIC:
        raise BadInputError(
            f"{path}: not gzip-compressed although named .gz (rename it to .nii, or "
            "compress it with gzip)."
        )
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN in headers: refused below
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
    check_header(path, img, ndim=ndim)
    if load_data:
        try:
            data = np.asanyarray(img.dataobj)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as err:
            raise BadInputError(f"{path}: truncated or corrupt file ({err}).") from err
        img = img.__class__(data, img.affine, img.header)
        img.set_filename(str(path))
    return img


def check_header(path, img, *, ndim=(3, 4)) -> None:
    """Check that the header of ``img`` (loaded from ``path``) describes a usable image.

    Only the header is read: this runs before the voxel data, so that a header claiming
    absurd sizes fails at once instead of exhausting memory.

    Parameters
    ----------
    path : str or Path
        The file ``img`` was loaded from (``.nii`` or ``.nii.gz``).
    img : nibabel.Nifti1Image
        The image, as :func:`nibabel.load` returns it (data not read).
    ndim : int or tuple of int, default=(3, 4)
        Allowed numbers of dimensions.

    Raises
    ------
    BadInputError
        ``path: reason`` when the number of dimensions is not allowed, a dimension is
        smaller than 1, the voxel sizes are not positive and finite, the affine is not
        finite or not invertible, or the header claims more voxel data than the file
        holds (``.nii``) or than a gzip file of its size can hold (``.nii.gz``, also at
        most :data:`MAX_GZIP_DATA_BYTES`).
    """
    path = Path(path)
    _check_shape(path, img.shape, ndim)
    _check_voxel_sizes(path, img)
    _check_affine(path, img.affine)
    _check_data_size(path, img)


def _check_shape(path: Path, shape: tuple, ndim) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if len(shape) not in allowed:
        raise BadInputError(
            f"{path}: must be a {' or '.join(f'{n}D' for n in allowed)} image. "
            f"Got shape {shape} instead."
        )
    if any(int(n) < 1 for n in shape):
        raise BadInputError(
            f"{path}: every dimension must hold at least one voxel. Got shape {shape} instead."
        )


def _raw_header(path: Path, img):
    """The header as stored in ``path``, before nibabel's fixes (0 voxel sizes become 1)."""
    with nb.openers.ImageOpener(path) as fobj:
        return img.header_class.from_fileobj(fobj, check=False)


def _check_voxel_sizes(path: Path, img) -> None:
    """The stored spatial voxel sizes (``pixdim``) must be positive and finite.

    They give the affine unless an sform does (``sform_code > 0``); the affine's own voxel
    sizes are checked by :func:`_check_affine`.
    """
    raw = _raw_header(path, img)
    if int(raw["sform_code"]) > 0:
        return
    zooms = np.asarray(raw["pixdim"][1:1 + min(3, len(img.shape))], dtype=float)
    if not (np.all(np.isfinite(zooms)) and np.all(zooms > 0)):
        raise BadInputError(
            f"{path}: voxel sizes (pixdim) must be positive and finite numbers. "
            f"Got {tuple(float(z) for z in zooms)} instead."
        )


def _check_affine(path: Path, affine) -> None:
    """The voxel-to-world affine must be finite and invertible."""
    affine = np.asarray(affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise BadInputError(
            f"{path}: the affine (sform/qform) must be finite numbers. "
            f"Got {affine[:3].tolist()} instead."
        )
    matrix = affine[:3, :3]
    sizes = np.sqrt((matrix**2).sum(axis=0))
    if np.any(sizes <= 0) or abs(np.linalg.det(matrix)) < _MIN_AFFINE_SINE * np.prod(sizes):
        raise BadInputError(
            f"{path}: the affine (sform/qform) must be invertible, with a positive voxel size "
            f"along each axis. Got {affine[:3].tolist()} instead."
        )


def _data_bytes(img) -> int:
    """Bytes of voxel data the header claims (exact integers, no overflow)."""
    return math.prod(int(n) for n in img.shape) * img.header.get_data_dtype().itemsize


def _check_data_size(path: Path, img) -> None:
    """The header must not claim more voxel data than the file can hold."""
    claimed = _data_bytes(img)
    offset = int(img.dataobj.offset)  # the header's vox_offset as read
    size = path.stat().st_size
    shape = tuple(int(n) for n in img.shape)
    what = f"the header claims {claimed} bytes of voxel data (shape {shape}, {img.get_data_dtype()})"
    if not path.name.endswith(".gz"):
        if offset + claimed > size:
            raise BadInputError(
                f"{path}: truncated or corrupt file: {what} from byte {offset}, but the file "
                f"holds {size} bytes."
            )
        return
    if offset + claimed > _DEFLATE_MAX_RATIO * size:
        raise BadInputError(
            f"{path}: truncated or corrupt file: {what}, more than a gzip file of {size} "
            "bytes can hold."
        )
    if claimed > MAX_GZIP_DATA_BYTES:
        raise BadInputError(
            f"{path}: too large: {what}, more than the {MAX_GZIP_DATA_BYTES} bytes this App "
            "reads from a .nii.gz."
        )


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
