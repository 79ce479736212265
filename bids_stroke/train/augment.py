"""On-the-fly augmentation of training batches.

Each volume of a batch gets, in this order and with its own random draw:

1. a power-law contrast change ``x -> sign(x) |x|^gamma`` with ``gamma`` uniform in
   :data:`GAMMA_RANGE` (normalised intensities are non-negative, so this is ``x^gamma``;
   zeros stay zero);
2. a rotation about the z (slice) axis by an angle uniform in ±:data:`MAX_ANGLE` degrees,
   in the x-y plane about the grid centre, linear interpolation (order 1) with zeros
   outside (:func:`rotate_z`, the same as ``scipy.ndimage.rotate(volume, angle,
   axes=(0, 1), reshape=False, order=1)``, computed as one gather of whole columns);
3. additive Gaussian noise of standard deviation ``sigma`` uniform in
   [0, :data:`MAX_SIGMA`], added to the brain voxels only (the non-zero voxels after the
   rotation), so the background of skull-stripped volumes stays exactly zero, as it is at
   test time.

Only training batches are augmented: validation and test volumes are used as they are.
All randomness comes from the :class:`numpy.random.Generator` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "GAMMA_RANGE",
    "MAX_ANGLE",
    "MAX_SIGMA",
    "AugmentationParameters",
    "add_noise",
    "apply_augmentation",
    "augment_batch",
    "draw_parameters",
    "power_law",
    "rotate_z",
]

#: Range of the power-law exponent.
GAMMA_RANGE = (0.9, 1.1)

#: Largest rotation about z, in degrees (angles are uniform in [-MAX_ANGLE, MAX_ANGLE]).
MAX_ANGLE = 15.0

#: Largest standard deviation of the additive noise, in normalised intensity units.
MAX_SIGMA = 0.01


@dataclass(frozen=True)
class AugmentationParameters:
    """The random draws for one batch.

    Attributes
    ----------
    gamma : ndarray, shape (batch,)
        Power-law exponents.
    angle : ndarray, shape (batch,)
        Rotations about z, in degrees.
    sigma : ndarray, shape (batch,)
        Standard deviations of the noise, in normalised intensity units.
    """

    gamma: np.ndarray
    angle: np.ndarray
    sigma: np.ndarray


def draw_parameters(rng: np.random.Generator, n: int, *, gamma_range=GAMMA_RANGE,
                    max_angle: float = MAX_ANGLE, max_sigma: float = MAX_SIGMA) -> AugmentationParameters:
    """Draw the augmentation parameters of ``n`` volumes.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Volumes in the batch.
    gamma_range : (float, float), default=(0.9, 1.1)
    max_angle : float, default=15.0
        Degrees.
    max_sigma : float, default=0.01

    Returns
    -------
    AugmentationParameters
    """
    gamma = rng.uniform(gamma_range[0], gamma_range[1], n)
    angle = rng.uniform(-max_angle, max_angle, n)
    sigma = rng.uniform(0.0, max_sigma, n)
    return AugmentationParameters(gamma, angle, sigma)


def power_law(volume: np.ndarray, gamma: float) -> np.ndarray:
    """``sign(x) |x|^gamma`` of every voxel (zeros stay zero); a new float32 array."""
    volume = np.asarray(volume, dtype=np.float32)
    return (np.sign(volume) * np.abs(volume) ** np.float32(gamma)).astype(np.float32)


def rotate_z(volume: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a volume about its z axis (axis 2) by ``angle`` degrees, bilinearly in-plane.

    The result equals ``scipy.ndimage.rotate(volume, angle, axes=(0, 1), reshape=False,
    order=1, mode="constant")`` (to float32 rounding): each output voxel samples the input
    at its position rotated about the grid centre, by linear interpolation between the
    four neighbouring columns of the same slice; positions outside the grid give 0. The
    sampling positions are computed once per angle and every slice is gathered at once.

    Parameters
    ----------
    volume : ndarray, shape (X, Y, Z)
    angle : float
        Degrees; positive turns the first axis towards the second.

    Returns
    -------
    ndarray of float32, shape (X, Y, Z)
    """
    volume = np.asarray(volume, dtype=np.float32)
    nx, ny = volume.shape[:2]
    if nx < 2 or ny < 2:
        raise ValueError(f"'volume' must be at least 2 x 2 in-plane. Got {volume.shape} instead.")
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    ox, oy = np.meshgrid(np.arange(nx) - cx, np.arange(ny) - cy, indexing="ij")
    xs = cos * ox + sin * oy + cx  # output voxel o samples the input at M (o - c) + c
    ys = -sin * ox + cos * oy + cy
    inside = ((xs >= 0) & (xs <= nx - 1) & (ys >= 0) & (ys <= ny - 1)).reshape(-1, 1)
    i0 = np.clip(np.floor(xs), 0, nx - 2).astype(np.intp)
    j0 = np.clip(np.floor(ys), 0, ny - 2).astype(np.intp)
    fx = (xs - i0).astype(np.float32).reshape(-1, 1)
    fy = (ys - j0).astype(np.float32).reshape(-1, 1)
    columns = volume.reshape(nx * ny, -1)
    k = (i0 * ny + j0).reshape(-1)
    out = (columns[k] * (1 - fx) + columns[k + ny] * fx) * (1 - fy)
    out += (columns[k + 1] * (1 - fx) + columns[k + ny + 1] * fx) * fy
    out *= inside
    return out.reshape(volume.shape)


def add_noise(volume: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma`` to the non-zero voxels."""
    volume = np.asarray(volume, dtype=np.float32)
    noise = rng.standard_normal(volume.shape, dtype=np.float32) * np.float32(sigma)
    return np.where(volume != 0, volume + noise, volume).astype(np.float32)


def apply_augmentation(batch: np.ndarray, parameters: AugmentationParameters,
                       rng: np.random.Generator) -> np.ndarray:
    """Augment every volume of a batch with given parameters (noise drawn from ``rng``).

    Parameters
    ----------
    batch : ndarray, shape (B, X, Y, Z, 1) or (B, X, Y, Z)
    parameters : AugmentationParameters
        One draw per volume.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    ndarray of float32, same shape as ``batch`` (a new array; ``batch`` is not modified)
    """
    batch = np.asarray(batch)
    if batch.ndim not in (4, 5) or (batch.ndim == 5 and batch.shape[-1] != 1):
        raise ValueError("'batch' must have shape (B, X, Y, Z, 1) or (B, X, Y, Z). "
                         f"Got {batch.shape} instead.")
    volumes = batch[..., 0] if batch.ndim == 5 else batch
    out = np.empty(volumes.shape, dtype=np.float32)
    for i, volume in enumerate(volumes):
        volume = power_law(volume, parameters.gamma[i])
        volume = rotate_z(volume, parameters.angle[i])
        out[i] = add_noise(volume, parameters.sigma[i], rng)
    return out[..., None] if batch.ndim == 5 else out


def augment_batch(batch: np.ndarray, rng: np.random.Generator, *, gamma_range=GAMMA_RANGE,
                  max_angle: float = MAX_ANGLE, max_sigma: float = MAX_SIGMA) -> np.ndarray:
    """Randomly augment a training batch (gamma, rotation about z, noise).

    Parameters
    ----------
    batch : ndarray, shape (B, X, Y, Z, 1) or (B, X, Y, Z)
        Normalised intensities (non-negative; 0 outside the brain).
    rng : numpy.random.Generator
        Source of every random draw: the same generator state gives the same output.
    gamma_range : (float, float), default=(0.9, 1.1)
    max_angle : float, default=15.0
        Degrees.
    max_sigma : float, default=0.01

    Returns
    -------
    ndarray of float32, same shape as ``batch`` (a new array)

    Examples
    --------
    >>> batch = np.ones((2, 16, 16, 8, 1), dtype=np.float32)
    >>> augment_batch(batch, np.random.default_rng(0)).shape
    (2, 16, 16, 8, 1)
    """
    batch = np.asarray(batch)
    parameters = draw_parameters(rng, batch.shape[0], gamma_range=gamma_range,
                                 max_angle=max_angle, max_sigma=max_sigma)
    return apply_augmentation(batch, parameters, rng)
