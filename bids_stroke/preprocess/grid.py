"""The model grid: crop to the brain (square in-plane) and the 96 × 96 × 24 grid's affine.

Images go onto the model grid and back with :func:`bids_stroke.spatial.resample.resample`
and :func:`model_grid_affine`.

Conventions
-----------
* Voxel coordinates index voxel centres: voxel ``(i, j, k)`` has its centre at
  ``affine @ [i, j, k, 1]`` (mm), as in NIfTI.
* The third voxel axis of the native image is the slice axis; the first two are
  in-plane.
* A crop box is given in native voxel coordinates (floats) of the first and last voxel
  centres of the model grid along each axis. The model grid's voxel centres span the box
  exactly: model voxel 0 lies on the box's lower corner and model voxel ``n - 1`` on its
  upper corner, so the model's voxel size along an axis is ``extent / (n - 1)``.
* The model grid keeps the native image's orientation: its affine is the native affine
  times a scaling and a shift in voxel space, so an oblique native image gives an
  equally oblique model grid.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError
from ..model.spec import MODEL_GRID
from ..spatial.resample import check_affine, resample
from .brainmask import as_mask, voxel_sizes

__all__ = [
    "MODEL_GRID",
    "crop_box",
    "model_grid_affine",
    "resample_mask",
]


def crop_box(brain_mask, affine, *, margin_mm=0.0):
    """Bounding box of the brain, square in-plane in millimetres.

    The box first spans the centres of the brain's outermost voxels along each axis,
    widened by ``margin_mm`` on every side. The in-plane extent (axes 0 and 1) is then
    made square in mm: both in-plane axes take the larger of the two extents, centred on
    the brain. The box may reach beyond the image; resampling pads with 0 there.

    Parameters
    ----------
    brain_mask : ndarray of shape (X, Y, Z)
        Brain voxels (non-zero) on the native grid.
    affine : ndarray of shape (4, 4)
        Native voxel-to-world affine (mm).
    margin_mm : float, default=0.0
        Extra space around the brain on every side, in mm.

    Returns
    -------
    dict
        ``lower`` and ``upper``: lists of 3 floats, native voxel coordinates of the
        box's corners (the first and last model voxel centres); ``extent_mm``: list of 3
        floats, the box's length along each axis in mm (``extent_mm[0] ==
        extent_mm[1]``); ``margin_mm``: float. Plain Python types, ready for JSON.

    Raises
    ------
    BadInputError
        The mask is empty or not 3D, or the box has zero length along an axis (a
        single-slice brain with no margin).
    """
    affine = check_affine(affine)
    mask = as_mask(brain_mask, name="brain_mask")
    if mask.ndim != 3:
        raise BadInputError(
            f"'brain_mask' must be a 3D mask. Got shape {mask.shape} instead."
        )
    if margin_mm < 0 or not np.isfinite(margin_mm):
        raise ValueError(f"'margin_mm' must be >= 0. Got {margin_mm!r} instead.")
    if not mask.any():
        raise BadInputError("'brain_mask' must contain brain voxels. Got an empty mask instead.")
    ijk = np.argwhere(mask)
    size = voxel_sizes(affine)
    lower = ijk.min(axis=0) - margin_mm / size
    upper = ijk.max(axis=0) + margin_mm / size
    extent_mm = (upper - lower) * size
    square = extent_mm[:2].max()
    centre = (lower + upper) / 2
    half = square / size[:2] / 2
    lower[:2], upper[:2] = centre[:2] - half, centre[:2] + half
    extent_mm[:2] = square
    if np.any(extent_mm <= 0):
        raise BadInputError(
            "'brain_mask' must span more than one voxel along every axis. Got a brain "
            f"of extent {extent_mm.round(3).tolist()} mm instead."
        )
    return {
        "lower": [float(v) for v in lower],
        "upper": [float(v) for v in upper],
        "extent_mm": [float(v) for v in extent_mm],
        "margin_mm": float(margin_mm),
    }


def model_grid_affine(affine, box, shape=MODEL_GRID):
    """Affine of the model grid whose voxel centres span a crop box.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Native voxel-to-world affine (mm).
    box : dict
        Crop box from :func:`crop_box` (``lower`` and ``upper`` in native voxels).
    shape : tuple of 3 int, default=(96, 96, 24)
        Model grid shape; at least 2 voxels per axis.

    Returns
    -------
    ndarray of shape (4, 4)
        Model voxel-to-world affine: ``affine @ T`` with ``T`` mapping model voxel
        ``m`` to native voxel ``lower + m * (upper - lower) / (shape - 1)``.
    """
    affine = check_affine(affine)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(f"'shape' must be 3 sizes >= 2. Got {shape} instead.")
    lower = np.asarray(box["lower"], dtype=np.float64)
    upper = np.asarray(box["upper"], dtype=np.float64)
    step = (upper - lower) / (np.asarray(shape) - 1)
    if np.any(step <= 0):
        raise BadInputError(
            "'box' must have 'upper' above 'lower' on every axis. Got lower="
            f"{lower.tolist()}, upper={upper.tolist()} instead."
        )
    model_to_native = np.eye(4)
    model_to_native[:3, :3] = np.diag(step)
    model_to_native[:3, 3] = lower
    return affine @ model_to_native


def resample_mask(mask, src_affine, dst_affine, dst_shape, *, order=1, threshold=0.5):
    """Resample a binary mask onto another grid.

    Parameters
    ----------
    mask : ndarray of shape (X, Y, Z)
        Source mask (non-zero inside).
    src_affine, dst_affine : ndarray of shape (4, 4)
        Voxel-to-world affines (mm) of the source and destination grids.
    dst_shape : tuple of 3 int
        Shape of the destination grid.
    order : {0, 1}, default=1
        0: nearest neighbour; 1: trilinear interpolation of the 0/1 mask, then
        ``>= threshold``.
    threshold : float, default=0.5
        Threshold of the interpolated mask (``order=1``).

    Returns
    -------
    ndarray of bool, shape dst_shape
    """
    if order not in (0, 1):
        raise ValueError(f"'order' must be 0 or 1. Got {order!r} instead.")
    values = resample(
        as_mask(mask, name="mask").astype(np.float64),
        src_affine,
        dst_affine,
        dst_shape,
        order=order,
    )
    return values >= (0.5 if order == 0 else threshold)
