"""Resampling of an image onto another grid by the two grids' affines.

The one resampler of bids-stroke: the model grid (:mod:`bids_stroke.preprocess.grid`),
attention maps back on the native grid (:mod:`bids_stroke.model.attention`), report
figures and the simulator's template-space lesions all call :func:`resample`, each with
the border handling it needs. Pure numpy/scipy: no file I/O, no ANTs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_stroke.errors import BadInputError

__all__ = ["BORDER_MODES", "check_affine", "resample"]

#: Border modes of :func:`resample` (those of :func:`scipy.ndimage.affine_transform`).
BORDER_MODES = ("grid-constant", "constant", "nearest", "reflect", "mirror", "wrap", "grid-wrap",
                "grid-mirror")


def check_affine(affine, name: str = "affine") -> np.ndarray:
    """A finite, invertible 4 × 4 voxel-to-world matrix as float64, else a BadInputError."""
    affine = np.asarray(affine, dtype=np.float64)
    if (
        affine.shape != (4, 4)
        or not np.all(np.isfinite(affine))
        or abs(np.linalg.det(affine[:3, :3])) < 1e-12
    ):
        raise BadInputError(
            f"'{name}' must be a finite, invertible 4 × 4 matrix. Got "
            f"{np.array2string(affine, precision=3, separator=', ')} instead."
        )
    return affine


def resample(data, src_affine, dst_affine, dst_shape, *, order=1, mode="grid-constant", cval=0.0):
    """Resample an image onto another grid (world coordinates are shared).

    Each destination voxel centre is mapped to source voxel coordinates with
    ``inv(src_affine) @ dst_affine`` and interpolated there
    (:func:`scipy.ndimage.affine_transform`).

    Parameters
    ----------
    data : ndarray of shape (X, Y, Z) or (X, Y, Z, ...)
        Source image; trailing axes (e.g. volumes) are resampled one by one.
    src_affine, dst_affine : ndarray of shape (4, 4)
        Voxel-to-world affines (mm) of the source and destination grids.
    dst_shape : tuple of 3 int
        Spatial shape of the destination grid.
    order : int, default=1
        Spline order (0: nearest neighbour, 1: trilinear).
    mode : str, default="grid-constant"
        Border handling, one of :data:`BORDER_MODES`. ``"grid-constant"`` takes the data
        outside the source image as ``cval`` and interpolates towards it between the
        outermost voxel centre and the image's edge; ``"constant"`` gives ``cval`` beyond
        the outermost voxel centres only (a destination voxel there keeps its value in
        both); ``"nearest"`` repeats the edge.
    cval : float, default=0.0
        Value outside the source image (the constant modes).

    Returns
    -------
    ndarray of shape dst_shape + data.shape[3:]
        float64 (the input dtype for ``order=0``).

    Raises
    ------
    BadInputError
        When ``data`` has fewer than 3 dimensions or an affine is not invertible.
    """
    data = np.asarray(data)
    if data.ndim < 3:
        raise BadInputError(
            f"'data' must be an image of 3 or more dimensions. Got shape {data.shape} "
            "instead."
        )
    if mode not in BORDER_MODES:
        raise ValueError(f"'mode' must be one of {', '.join(BORDER_MODES)}. Got {mode!r} instead.")
    src_affine = check_affine(src_affine, "src_affine")
    dst_affine = check_affine(dst_affine, "dst_affine")
    dst_shape = tuple(int(n) for n in dst_shape)
    matrix = np.linalg.solve(src_affine, dst_affine)
    dtype = data.dtype if order == 0 else np.float64
    source = data if order == 0 else data.astype(np.float64)
    extra = data.shape[3:]
    out = np.empty(dst_shape + extra, dtype=dtype)
    for index in np.ndindex(*extra):
        sub = (Ellipsis,) + index
        out[sub] = ndimage.affine_transform(
            source[sub],
            matrix[:3, :3],
            offset=matrix[:3, 3],
            output_shape=dst_shape,
            order=order,
            mode=mode,
            cval=cval,
        )
    return out
