"""Automatic brain mask of a DWI image (dipy's median_otsu on a coarse grid, plus morphological clean-up)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import BadInputError
from .dwi import check_not_empty

__all__ = ["GRID_MM", "as_mask", "brain_mask", "voxel_sizes"]

#: Voxel size (mm) of the grid the median filter and Otsu threshold run on.
GRID_MM = 4.0


def voxel_sizes(affine):
    """Voxel sizes of an image from its affine.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-world (mm) affine.

    Returns
    -------
    ndarray of shape (3,)
        Length in mm of one voxel step along each voxel axis.
    """
    affine = np.asarray(affine, dtype=np.float64)
    return np.sqrt((affine[:3, :3] ** 2).sum(axis=0))


def as_mask(mask, *, name="mask", shape=None):
    """A boolean copy of a mask: True where the input is non-zero.

    Parameters
    ----------
    mask : array-like
        Boolean or numeric mask; non-zero values are inside.
    name : str, default="mask"
        Name of the parameter, used in error messages.
    shape : tuple of int or None, default=None
        Required shape; None: any.

    Returns
    -------
    ndarray of bool
        A new array.

    Raises
    ------
    BadInputError
        The mask holds non-finite values or has the wrong shape.
    """
    mask = np.asarray(mask)
    if shape is not None and mask.shape != tuple(shape):
        raise BadInputError(
            f"'{name}' must have the shape of the image {tuple(shape)}. Got "
            f"{mask.shape} instead."
        )
    if mask.dtype == bool:
        return mask.copy()
    if not np.all(np.isfinite(mask)):
        raise BadInputError(f"'{name}' must hold finite values. Got NaN or Inf instead.")
    return mask != 0


def _structure(voxel_size, *, thick_ratio=1.5):
    """Face-connected 3D structuring element that skips thick axes.

    An axis whose voxel size exceeds ``thick_ratio`` times the smallest one (the slice
    axis of thick-slice clinical DWI) gets no neighbours, so one dilation step grows
    the mask by about one thin voxel in every direction it reaches.
    """
    structure = ndimage.generate_binary_structure(3, 1)
    for axis, size in enumerate(voxel_size):
        if size > thick_ratio * min(voxel_size):
            index = [1, 1, 1]
            for end in (0, 2):
                index[axis] = end
                structure[tuple(index)] = False
    return structure


def _largest_component(mask):
    labels, n_labels = ndimage.label(mask)
    if n_labels <= 1:
        return mask
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == counts.argmax()


def _fill_holes(mask, slice_axis=2):
    """Fill holes in 3D, then in every slice along ``slice_axis``."""
    mask = ndimage.binary_fill_holes(mask)
    filled = np.empty_like(mask)
    for k in range(mask.shape[slice_axis]):
        index = [slice(None)] * 3
        index[slice_axis] = k
        filled[tuple(index)] = ndimage.binary_fill_holes(mask[tuple(index)])
    return filled


def _bin_factors(voxel_size, grid_mm):
    """Whole binning factor per axis that brings each voxel size nearest ``grid_mm`` (>= 1)."""
    voxel_size = np.asarray(voxel_size, dtype=np.float64)
    return np.maximum(1, np.rint(grid_mm / voxel_size)).astype(int)


def _bin(image, factors):
    """Mean of ``factors``-sized blocks (the last block of an axis padded by its edge)."""
    factors = [int(f) for f in factors]
    padded = np.pad(image, [(0, -n % f) for n, f in zip(image.shape, factors)], mode="edge")
    blocks = []
    for n, f in zip(padded.shape, factors):
        blocks += [n // f, f]
    return padded.reshape(blocks).mean(axis=(1, 3, 5))


def _unbin(coarse, factors, shape):
    """Linear interpolation of a :func:`_bin` grid back onto the fine grid's voxel centres.

    Fine voxel ``i`` lies at coarse coordinate ``(i - (f - 1) / 2) / f``.
    """
    factors = np.asarray(factors, dtype=np.float64)
    return ndimage.affine_transform(coarse, np.diag(1 / factors), offset=-(factors - 1) / (2 * factors),
                                    output_shape=tuple(shape), order=1, mode="nearest")


def brain_mask(image, voxel_size, *, median_radius=4, numpass=4, dilate=1, grid_mm=GRID_MM):
    """Brain mask of a b = 0 (or trace) image with dipy's ``median_otsu``.

    Steps: bin the image into blocks of about ``grid_mm`` (block means); on that grid,
    ``median_otsu``'s multi-pass median filter and its Otsu threshold; the filtered image
    interpolated (linearly) back onto the image's grid and thresholded there; keep the
    largest face-connected component; fill holes in 3D, then in every slice along the
    third voxel axis (holes that open onto the top or bottom of the field of view are
    closed in-plane); dilate ``dilate`` times.

    The median filter's radius is given in voxels of the image's finest axis and scaled to
    each axis of the filtering grid by its voxel size (``round(median_radius *
    min(voxel_size) / size)``): with 1.1 × 1.1 × 5 mm clinical DWI and ``grid_mm=0`` the
    window is 9 × 9 × 3 voxels, about 10 × 10 × 15 mm, instead of a 45 mm deep one that
    would erode the top and bottom slices of the brain. Filtering on the default 4 mm grid
    (1.1 mm voxels binned by 4 in-plane, 5 mm slices kept) makes it a 3 × 3 × 3 window of
    about the same extent, and the filter about 15 times faster; the masks agree with
    those of the full grid (on the simulated cohorts' sites, Dice with the true brain
    0.911 against 0.903).

    Parameters
    ----------
    image : ndarray of shape (X, Y, Z)
        b = 0 image (or trace image) in any intensity unit; finite values.
    voxel_size : array-like of shape (3,)
        Voxel size in mm along each axis (see :func:`voxel_sizes`).
    median_radius : int, default=4
        Radius of the median filter, in voxels of the finest axis.
    numpass : int, default=4
        Number of median-filter passes.
    dilate : int, default=1
        Dilation steps of the final mask (face connectivity; an axis more than 1.5
        times coarser than the finest one is not dilated). 0: no dilation.
    grid_mm : float, default=GRID_MM
        Voxel size of the filtering grid: each axis is binned by the whole factor
        ``max(1, round(grid_mm / size))``. 0: the image's own grid (plain
        ``median_otsu``).

    Returns
    -------
    mask : ndarray of bool, shape (X, Y, Z)
        The brain mask.

    Raises
    ------
    BadInputError
        ``image`` is not 3D, not finite or constant, ``voxel_size`` is not three
        positive numbers, or the mask comes out empty.
    """
    from dipy.segment.mask import multi_median
    from dipy.segment.threshold import otsu

    image = np.asarray(image)
    if image.ndim != 3:
        raise BadInputError(
            f"'image' must be a 3D image. Got an image of shape {image.shape} instead."
        )
    if not np.all(np.isfinite(image)):
        raise BadInputError(
            "'image' must hold finite values only. Got NaN or Inf voxels instead "
            "(replace them first)."
        )
    check_not_empty(image)
    voxel_size = np.asarray(voxel_size, dtype=np.float64).ravel()
    if voxel_size.shape != (3,) or not np.all(np.isfinite(voxel_size) & (voxel_size > 0)):
        raise BadInputError(
            f"'voxel_size' must be three positive sizes in mm. Got {voxel_size.tolist()} "
            "instead."
        )
    if int(median_radius) < 0 or int(numpass) < 1 or int(dilate) < 0 or not float(grid_mm) >= 0:
        raise ValueError(
            "'median_radius', 'dilate' and 'grid_mm' must be >= 0 and 'numpass' >= 1. Got "
            f"{median_radius}, {dilate}, {grid_mm} and {numpass} instead."
        )
    factors = _bin_factors(voxel_size, float(grid_mm))
    grid_size = voxel_size * factors
    radius = np.rint(median_radius * voxel_size.min() / grid_size).astype(int)
    filtered = multi_median(_bin(image.astype(np.float64), factors), radius, int(numpass))
    threshold = otsu(filtered)
    if np.any(factors > 1):
        filtered = _unbin(filtered, factors, image.shape)
    mask = filtered > threshold
    mask = _largest_component(mask.astype(bool))
    if not mask.any():
        raise BadInputError(
            "'image' must show a brain brighter than the background. Got an image where "
            "automatic skull-stripping found no brain instead (provide a brain mask)."
        )
    mask = _fill_holes(mask)
    if dilate:
        mask = ndimage.binary_dilation(
            mask, structure=_structure(voxel_size), iterations=int(dilate)
        )
    return mask
