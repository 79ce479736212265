"""Lesion measures: volume (mL) and side (left, right, bilateral)."""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError
from .brainmask import as_mask

__all__ = [
    "BILATERAL_FRACTION",
    "lesion_side",
    "lesion_side_from_points",
    "lesion_volume_ml",
    "voxel_centres_mm",
]

#: A lesion is bilateral when each hemisphere holds at least this fraction of it.
BILATERAL_FRACTION = 0.2


def _check_affine(affine):
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise BadInputError(
            f"'affine' must be a finite 4 × 4 matrix. Got shape {affine.shape} instead."
        )
    return affine


def lesion_volume_ml(mask, affine):
    """Lesion volume in millilitres.

    Parameters
    ----------
    mask : ndarray of shape (X, Y, Z)
        Lesion voxels (non-zero).
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine of ``mask`` (mm).

    Returns
    -------
    float
        ``n_voxels * |det(affine[:3, :3])| / 1000`` (mL); 0.0 for an empty mask.
    """
    affine = _check_affine(affine)
    voxel_mm3 = abs(float(np.linalg.det(affine[:3, :3])))
    return int(as_mask(mask, name="mask").sum()) * voxel_mm3 / 1000.0


def voxel_centres_mm(mask, affine):
    """World coordinates of the centres of a mask's voxels.

    Parameters
    ----------
    mask : ndarray of shape (X, Y, Z)
        Voxels to list (non-zero).
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine (mm).

    Returns
    -------
    ndarray of shape (n_voxels, 3)
        ``affine @ [i, j, k, 1]`` of every voxel in the mask, in mm.
    """
    affine = _check_affine(affine)
    ijk = np.argwhere(as_mask(mask, name="mask")).astype(np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def lesion_side_from_points(points_mm, *, min_fraction=BILATERAL_FRACTION, midline_mm=0.0):
    """Side of a lesion from the template-space coordinates of its voxels.

    Coordinates are RAS+ (x grows towards the subject's right), so ``x < midline_mm`` is
    the left hemisphere. Each point stands for one voxel of equal volume (a
    template-space mask, or native voxels warped into the template), so fractions of
    points are fractions of lesion volume. A point exactly on the midline counts half
    to each side.

    Parameters
    ----------
    points_mm : array-like of shape (n_points, 3)
        Voxel centres in template mm (RAS+).
    min_fraction : float, default=0.2
        ``'bilateral'`` when both hemispheres hold at least this fraction of the points.
    midline_mm : float, default=0.0
        x coordinate of the midline (0 in MNI templates).

    Returns
    -------
    {'left', 'right', 'bilateral', 'none'}
        ``'none'`` when there is no point; otherwise ``'bilateral'`` as above, or the
        hemisphere holding the larger fraction (``'bilateral'`` on a tie).
    """
    points = np.asarray(points_mm, dtype=np.float64)
    if points.size == 0:
        return "none"
    if points.ndim != 2 or points.shape[1] != 3 or not np.all(np.isfinite(points)):
        raise BadInputError(
            "'points_mm' must be finite coordinates of shape (n, 3). Got an array of "
            f"shape {points.shape} instead."
        )
    if not 0 < min_fraction <= 0.5:
        raise ValueError(f"'min_fraction' must be in (0, 0.5]. Got {min_fraction!r} instead.")
    x = points[:, 0] - midline_mm
    on_midline = 0.5 * np.count_nonzero(x == 0)
    left = (np.count_nonzero(x < 0) + on_midline) / x.size
    right = (np.count_nonzero(x > 0) + on_midline) / x.size
    if min(left, right) >= min_fraction or left == right:
        return "bilateral"
    return "left" if left > right else "right"


def lesion_side(mask, affine, *, min_fraction=BILATERAL_FRACTION, midline_mm=0.0):
    """Side of a lesion given as a template-space mask.

    Parameters
    ----------
    mask : ndarray of shape (X, Y, Z)
        Lesion voxels (non-zero) on a template grid.
    affine : ndarray of shape (4, 4)
        Voxel-to-template affine (mm, RAS+).
    min_fraction : float, default=0.2
        See :func:`lesion_side_from_points`.
    midline_mm : float, default=0.0
        See :func:`lesion_side_from_points`.

    Returns
    -------
    {'left', 'right', 'bilateral', 'none'}
        See :func:`lesion_side_from_points`.
    """
    return lesion_side_from_points(
        voxel_centres_mm(mask, affine), min_fraction=min_fraction, midline_mm=midline_mm
    )
