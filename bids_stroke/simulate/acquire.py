"""Image formation: sampling the deformed head onto a site's native grid.

Every function here is pure (arrays in, arrays out). The subject's anatomy is sampled at
``n_sub`` points across each slice thickness (slice-profile partial volume), after the
subject's head pose and deformation (:class:`~bids_stroke.simulate.warp.Warp`); the
scanner then applies a smooth multiplicative bias field, its intensity scale and Rician
noise, and stores integers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from bids_stroke.simulate.anatomy import Anatomy, tissue_signal
from bids_stroke.simulate.sites import SiteProfile
from bids_stroke.simulate.warp import Warp

#: Samples across the slice thickness.
N_SLICE_SAMPLES = 3
#: Lesion fraction at or above which a native voxel belongs to the native lesion mask.
MASK_THRESHOLD = 0.5
#: Largest value of the stored signed 16-bit integers.
INT16_MAX = 32767


def lesion_bbox(lesion: np.ndarray, pad: int = 2) -> tuple[np.ndarray, np.ndarray] | None:
    """Bounding box (voxel indices, inclusive, padded) of a lesion mask, or None if empty.

    Parameters
    ----------
    lesion : ndarray of shape (X, Y, Z)
    pad : int, default=2
        Voxels added on each side.

    Returns
    -------
    tuple of 2 ndarray of shape (3,) or None
        Lower and upper corners.
    """
    idx = np.nonzero(lesion)
    if idx[0].size == 0:
        return None
    lo = np.array([i.min() for i in idx]) - pad
    hi = np.array([i.max() for i in idx]) + pad
    return lo, hi


def sample_native(anatomy: Anatomy, lesion: np.ndarray, warp: Warp, native_affine,
                  profile: SiteProfile, bvalues, *, adc_scale=1.0,
                  n_sub=N_SLICE_SAMPLES) -> tuple[dict, np.ndarray]:
    """Noise-free signal and lesion fraction on a native grid.

    Parameters
    ----------
    anatomy : Anatomy
        Template head.
    lesion : ndarray of shape (X, Y, Z), uint8 or bool
        Lesion mask on the template grid (already clipped to the brain).
    warp : Warp
        Scanner-to-template map of the subject.
    native_affine : ndarray of shape (4, 4)
        Voxel-to-scanner matrix of the native grid.
    profile : SiteProfile
        Gives the grid shape and slice thickness.
    bvalues : iterable of float
        b-values (s/mm²) at which to compute the signal.
    adc_scale : float, default=1.0
        Subject's global diffusivity factor.
    n_sub : int, default=N_SLICE_SAMPLES
        Samples across the slice thickness, averaged.

    Returns
    -------
    signal : dict of float to ndarray of shape (I, J, K), float32
        Noise-free signal per b-value (units of tissue S0).
    lesion_fraction : ndarray of shape (I, J, K), float32
        Fraction of each native voxel covered by the lesion.
    """
    shape = profile.shape
    bvalues = [float(b) for b in bvalues]
    ii, jj, kk = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape],
                             indexing="ij")
    vox = np.stack([ii.ravel(), jj.ravel(), kk.ravel()])
    del ii, jj, kk
    t_inv = np.linalg.inv(anatomy.affine)
    tshape = np.array(anatomy.shape)
    box = lesion_bbox(lesion)
    lesion_f = np.asarray(lesion, np.float32)
    step = profile.slice_thickness / profile.spacing[2]
    sums = {b: np.zeros(vox.shape[1], np.float32) for b in bvalues}
    les_sum = np.zeros(vox.shape[1], np.float32)
    for m in range(n_sub):
        offset = step * ((m + 0.5) / n_sub - 0.5)
        v = vox.copy()
        v[2] += offset
        p = native_affine[:3, :3] @ v + native_affine[:3, 3:4]
        q = warp.scanner_to_template_points(p)
        tv = (t_inv[:3, :3] @ q + t_inv[:3, 3:4]).astype(np.float32)
        inside = np.all((tv > -1) & (tv < tshape[:, None]), axis=0)
        pts = tv[:, inside]
        frac = np.stack([
            ndimage.map_coordinates(c, pts, order=1, cval=0.0, prefilter=False)
            for c in anatomy.fractions
        ])
        les = np.zeros(pts.shape[1], np.float32)
        if box is not None:
            near = np.all((pts >= box[0][:, None]) & (pts <= box[1][:, None]), axis=0)
            les[near] = ndimage.map_coordinates(lesion_f, pts[:, near], order=1, cval=0.0,
                                                prefilter=False)
        les_sum[inside] += les
        for b in bvalues:
            sums[b][inside] += tissue_signal(frac, les, b, adc_scale=adc_scale)
    signal = {b: (s / n_sub).reshape(shape) for b, s in sums.items()}
    return signal, (les_sum / n_sub).reshape(shape)


def bias_field(shape, rng: np.random.Generator, *, amplitude=0.15) -> np.ndarray:
    """Smooth multiplicative bias field (exponential of a random quadratic).

    Parameters
    ----------
    shape : tuple of 3 int
        Grid shape.
    rng : numpy.random.Generator
    amplitude : float, default=0.15
        Standard deviation of each of the nine polynomial coefficients of the log-field
        (coordinates normalised to [-1, 1]).

    Returns
    -------
    ndarray of shape ``shape``, float32
        Positive factors, around 1.
    """
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    terms = [x, y, z, x * y, x * z, y * z, x * x - 1 / 3, y * y - 1 / 3, z * z - 1 / 3]
    coef = rng.normal(0, amplitude, len(terms)) / np.array([1, 1, 1, 2, 2, 2, 2, 2, 2])
    log_field = sum(np.float32(c) * t for c, t in zip(coef, terms))
    return np.exp(log_field).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of a signal with complex Gaussian noise.

    Parameters
    ----------
    signal : ndarray
        Noise-free magnitude (>= 0).
    sigma : float
        Noise standard deviation per real/imaginary channel, in the units of ``signal``.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, float32, same shape as ``signal``
    """
    re = signal + rng.normal(0, sigma, signal.shape).astype(np.float32)
    im = rng.normal(0, sigma, signal.shape).astype(np.float32)
    return np.sqrt(re * re + im * im).astype(np.float32)


def to_int16(values: np.ndarray) -> np.ndarray:
    """Round and clip to [0, 32767] as int16, as scanners store magnitude images."""
    return np.clip(np.rint(values), 0, INT16_MAX).astype(np.int16)


def acquire_series(signal: dict, bias: np.ndarray, profile: SiteProfile, bvals,
                   rng: np.random.Generator) -> np.ndarray:
    """The stored volumes of a diffusion series.

    Parameters
    ----------
    signal : dict of float to ndarray of shape (I, J, K)
        Noise-free signal per b-value.
    bias : ndarray of shape (I, J, K)
        Multiplicative bias field.
    profile : SiteProfile
        Gives the intensity scale and noise level.
    bvals : ndarray of shape (n_volumes,)
        b-value (s/mm²) of each volume (isotropic tissue: direction does not change the
        noise-free signal).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (I, J, K, n_volumes), float32
        Noisy magnitudes in stored units (not yet rounded).
    """
    sigma = profile.noise * profile.scale
    vols = [rician(signal[float(b)] * bias * np.float32(profile.scale), sigma, rng)
            for b in bvals]
    return np.stack(vols, axis=-1)


def trace_and_adc(series: np.ndarray, bvals, b: float, *, floor: float):
    """Derived trace image and ADC map, as a scanner exports them.

    Parameters
    ----------
    series : ndarray of shape (I, J, K, n_volumes)
        Magnitudes: one b = 0 volume and the directions of one shell.
    bvals : ndarray of shape (n_volumes,)
    b : float
        The shell's b-value (s/mm²).
    floor : float
        b0 intensity below which the ADC is set to 0 (background).

    Returns
    -------
    trace : ndarray of shape (I, J, K), float32
        Geometric mean of the direction images.
    adc : ndarray of shape (I, J, K), float32
        ADC in units of 1e-6 mm²/s, 0 in the background.
    """
    bvals = np.asarray(bvals)
    b0 = series[..., bvals == 0].mean(-1)
    dirs = np.maximum(series[..., bvals == b], 1e-3)
    trace = np.exp(np.log(dirs).mean(-1)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        adc = np.log(np.maximum(b0, 1e-3) / np.maximum(trace, 1e-3)) / b * 1e6
    adc = np.where(b0 > floor, np.clip(adc, 0, 10000), 0).astype(np.float32)
    return trace, adc
