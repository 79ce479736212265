"""Attention maps from the model's scales to the model grid, and on to the native DWI grid.

Each variant returns three attention maps on its own scale's grid (``a1`` on 24×24×6,
``a2`` on 12×12×3, ``a3`` on 6×6×3 voxels for the 96×96×24 input), each summing to 1.
Voxel ``(i, j, k)`` of a scale with factors ``(fx, fy, fz)`` covers the model-grid voxels
``[i·fx, (i+1)·fx) × [j·fy, (j+1)·fy) × [k·fz, (k+1)·fz)``.

* :func:`upsample_attention` puts a map on the 96×96×24 model grid and keeps its mass:
  the result sums to 1 over the model grid;
* :func:`to_native` resamples a model-grid map onto the native DWI grid (world
  coordinates are shared through the two affines). Its values are the model grid's,
  interpolated: attention per model voxel, not renormalised on the native grid (whose
  voxels have other sizes and which may hold parts of the head outside the crop box,
  where the map is 0);
* :func:`attention_image` does the same for a nibabel image (the only function here that
  touches images).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_stroke.spatial.resample import check_affine, resample

from .spec import MODEL_GRID

__all__ = ["attention_image", "to_native", "upsample_attention"]


def upsample_attention(attention, shape=MODEL_GRID, *, mode="linear"):
    """Put one scale's attention map on the model grid, keeping its total mass.

    Parameters
    ----------
    attention : ndarray of shape (x, y, z)
        One scale's map (non-negative); each of ``shape`` must be a multiple of its size.
    shape : tuple of 3 int, default=(96, 96, 24)
        The model grid.
    mode : {"linear", "block"}, default="linear"
        ``"block"``: every model voxel of a scale voxel's block gets the scale voxel's
        value divided by the block's size (exact, piecewise constant).
        ``"linear"``: trilinear interpolation between the scale voxels' centres (edges
        held), then rescaled so that the total equals the input's total.

    Returns
    -------
    ndarray of shape ``shape``, float64
        Non-negative, with the same sum as ``attention`` (1 for a softmax map).

    Examples
    --------
    >>> a = np.full((24, 24, 6), 1 / (24 * 24 * 6))
    >>> float(upsample_attention(a).sum().round(12))
    1.0
    """
    attention = np.asarray(attention, dtype=np.float64)
    shape = tuple(int(n) for n in shape)
    if attention.ndim != 3 or any(n % m for n, m in zip(shape, attention.shape)):
        raise ValueError(
            f"'attention' must be a 3D map whose shape divides {shape}. "
            f"Got shape {attention.shape} instead."
        )
    if mode not in ("linear", "block"):
        raise ValueError(f"'mode' must be 'linear' or 'block'. Got {mode!r} instead.")
    factors = tuple(n // m for n, m in zip(shape, attention.shape))
    total = attention.sum()
    if mode == "block":
        out = attention
        for axis, factor in enumerate(factors):
            out = np.repeat(out, factor, axis=axis)
        return out / np.prod(factors)
    out = ndimage.zoom(attention, factors, order=1, mode="nearest", grid_mode=True)
    out = np.clip(out, 0.0, None)
    mass = out.sum()
    return out * (total / mass) if mass > 0 else out


def to_native(model_map, model_affine, native_affine, native_shape, *, order=1):
    """Resample a model-grid map onto the native DWI grid.

    Each native voxel centre is mapped to model voxel coordinates with
    ``inv(model_affine) @ native_affine`` and interpolated there
    (:func:`bids_stroke.spatial.resample.resample`); outside the model grid the map is 0.

    Parameters
    ----------
    model_map : ndarray of shape (96, 96, 24)
        A map on the model grid (e.g. from :func:`upsample_attention`).
    model_affine, native_affine : ndarray of shape (4, 4)
        Voxel-to-world affines (mm) of the model grid and of the native DWI.
    native_shape : tuple of 3 int
        Spatial shape of the native DWI.
    order : int, default=1
        Spline order (1: trilinear).

    Returns
    -------
    ndarray of shape ``native_shape``, float32
    """
    model_map = np.asarray(model_map, dtype=np.float64)
    if model_map.ndim != 3:
        raise ValueError(f"'model_map' must be 3D. Got shape {model_map.shape} instead.")
    model_affine = check_affine(model_affine, "model_affine")
    native_affine = check_affine(native_affine, "native_affine")
    out = resample(model_map, model_affine, native_affine, native_shape, order=order,
                   mode="grid-constant", cval=0.0)
    return np.clip(out, 0.0, None).astype(np.float32)


def attention_image(model_map, model_affine, native_img):
    """A model-grid map as a NIfTI image on the native DWI grid.

    Parameters
    ----------
    model_map : ndarray of shape (96, 96, 24)
    model_affine : ndarray of shape (4, 4)
        The model grid's voxel-to-world affine (that of the ``space-model`` image).
    native_img : nibabel.spatialimages.SpatialImage
        Any image on the native DWI grid (its first three dimensions and affine are used).

    Returns
    -------
    nibabel.Nifti1Image
        float32, with the native image's shape (3D) and affine (sform and qform).
    """
    import nibabel as nib

    data = to_native(model_map, model_affine, native_img.affine, native_img.shape[:3])
    img = nib.Nifti1Image(data, native_img.affine)
    img.set_qform(native_img.affine, code=1)
    img.set_sform(native_img.affine, code=1)
    return img
