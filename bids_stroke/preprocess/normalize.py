"""Lesion-aware intensity normalisation of DWI images."""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError
from .brainmask import as_mask

__all__ = ["normalize_intensity"]


def normalize_intensity(image, brain_mask, lesion_mask=None):
    """Divide brain voxels by the mean of the non-lesioned brain.

    Parameters
    ----------
    image : ndarray of shape (X, Y, Z)
        Image to normalise (e.g. the trace image), any intensity unit; finite values.
    brain_mask : ndarray of shape (X, Y, Z)
        Brain voxels (non-zero).
    lesion_mask : ndarray of shape (X, Y, Z) or None, default=None
        Lesion voxels (non-zero), left out of the reference. None or an empty mask: the
        reference is the mean over the whole brain.

    Returns
    -------
    normalized : ndarray of shape (X, Y, Z)
        ``image / reference`` inside the brain (lesion included), 0 outside; float64,
        dimensionless. The mean of ``normalized`` over brain minus lesion is 1.
    reference : float
        Mean of ``image`` over brain minus lesion, in the image's unit.

    Raises
    ------
    BadInputError
        Shapes differ, no brain voxel lies outside the lesion, or the reference is not a
        positive finite number.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise BadInputError(
            f"'image' must be a 3D image. Got an image of shape {image.shape} instead."
        )
    brain = as_mask(brain_mask, name="brain_mask", shape=image.shape)
    reference_voxels = brain.copy()
    if lesion_mask is not None:
        reference_voxels &= ~as_mask(lesion_mask, name="lesion_mask", shape=image.shape)
    n_brain, n_reference = int(brain.sum()), int(reference_voxels.sum())
    if n_reference == 0:
        raise BadInputError(
            "'brain_mask' must contain voxels outside the lesion. Got "
            f"{n_brain} brain voxels, all of them in the lesion instead."
        )
    reference = float(image[reference_voxels].mean())
    if not (np.isfinite(reference) and reference > 0):
        raise BadInputError(
            "'image' must have a positive mean over the non-lesioned brain "
            f"({n_reference} voxels). Got {reference:g} instead."
        )
    normalized = np.zeros(image.shape, dtype=np.float64)
    normalized[brain] = image[brain] / reference
    return normalized, reference
