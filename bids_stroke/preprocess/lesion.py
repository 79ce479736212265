"""Lesion measures: volume (mL) and side (left, right, bilateral)."""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError
from .brainmask import as_mask

__all__ = [
    "BILATERAL_FRACTION",
    "PROBABILITY_THRESHOLD",
    "binarize_lesion",
    "lesion_side",
    "lesion_side_from_points",
    "lesion_volume_ml",
    "voxel_centres_mm",
]

#: A lesion is bilateral when each hemisphere holds at least this fraction of it.
BILATERAL_FRACTION = 0.2

#: A lesion-probability map is lesion where it is at least this.
PROBABILITY_THRESHOLD = 0.5


def binarize_lesion(data, *, label=None):
    """The lesion voxels of a given lesion mask, and how they were found.

    A binary mask (0 and 1, or booleans) is taken as it is. A probability map (values in
    [0, 1], some between) is lesion where it is >= :data:`PROBABILITY_THRESHOLD`. An
    integer label map (values 0, 1, 2, ...) is refused unless ``label`` picks the lesion's
    label: taking every non-zero label would count other structures as lesion.

    Parameters
    ----------
    data : ndarray of shape (X, Y, Z) or (X, Y, Z, 1)
        The mask's voxel values.
    label : int or None, default=None
        The lesion's value in an integer label map (``--lesion-label``); binary masks
        and probability maps ignore it.

    Returns
    -------
    mask : ndarray of bool, shape (X, Y, Z)
    info : dict
        ``{"LesionMaskType": "binary"}``, ``{"LesionMaskType": "probability",
        "LesionThreshold": 0.5}`` or ``{"LesionMaskType": "labels", "LesionLabel": label}``,
        for the outputs' sidecars.

    Raises
    ------
    BadInputError
        Not 3D, NaN or infinite values, negative values, a label map without ``label``
        (or without a voxel of that label), values that are neither a mask, a
        probability map nor labels, or a mask covering the whole field of view.
    """
    data = np.asarray(data)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BadInputError(f"a lesion mask must be a 3D image. Got {data.ndim} dimensions {data.shape} instead.")
    if data.dtype == bool:
        mask, info = data.copy(), {"LesionMaskType": "binary"}
    else:
        if not np.all(np.isfinite(data)):
            raise BadInputError("a lesion mask must hold finite values. Got NaN or infinite values instead.")
        values = np.unique(data)
        if values[0] < 0:
            raise BadInputError(f"a lesion mask must not be negative. Got values down to {values[0]:g}.")
        integers = bool(np.all(values == np.round(values)))
        if integers and values[-1] <= 1:
            mask, info = data != 0, {"LesionMaskType": "binary"}
        elif integers:
            shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
            if label is None:
                raise BadInputError(f"a label map (values {shown}), not a binary lesion mask; give the "
                                    "lesion's label with --lesion-label.")
            mask, info = data == label, {"LesionMaskType": "labels", "LesionLabel": int(label)}
            if not mask.any():
                raise BadInputError(f"no voxel has the lesion label {label} (--lesion-label); its values "
                                    f"are {shown}.")
        elif values[-1] <= 1:
            mask = data >= PROBABILITY_THRESHOLD
            info = {"LesionMaskType": "probability", "LesionThreshold": PROBABILITY_THRESHOLD}
        else:
            raise BadInputError(f"neither a binary lesion mask, a probability map in [0, 1] nor integer "
                                f"labels: values from {values[0]:g} to {values[-1]:g}.")
    if mask.all():
        raise BadInputError("the lesion mask covers the whole field of view.")
    return mask, info


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
