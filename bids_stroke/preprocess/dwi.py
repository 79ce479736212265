"""b = 0 and trace images from a DWI series, ADC maps, and checks on voxel values.

Pure functions on arrays: they take numpy arrays, return new ones and never modify their
inputs. b-values are in s/mm², ADC values in mm²/s.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError

__all__ = [
    "ADC_MAX",
    "B0_THRESHOLD",
    "b0_and_trace",
    "check_not_empty",
    "compute_adc",
    "has_b0",
    "sanitize",
    "split_shells",
]

#: Upper bound of ADC values (mm²/s); free water at 37 °C is about 3e-3 mm²/s.
ADC_MAX = 5e-3


def _describe(values, limit=8):
    """Short text of a 1D array for error messages."""
    values = np.asarray(values).ravel()
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    if values.size > limit:
        shown += f", ... ({values.size} values)"
    return f"[{shown}]"


#: Volumes with a b-value up to this (s/mm²) count as b = 0.
B0_THRESHOLD = 50.0


def has_b0(bvals, *, b0_threshold=B0_THRESHOLD) -> bool:
    """Whether a series has a b = 0 volume (needed for its ADC map)."""
    return bool(np.any(np.asarray(bvals, dtype=float) <= b0_threshold))


def split_shells(bvals, *, b0_threshold=B0_THRESHOLD, shell_tolerance=0.1):
    """Find the b = 0 volumes and the volumes of the highest shell.

    Parameters
    ----------
    bvals : array-like of shape (n_volumes,)
        b-value of each DWI volume, in s/mm².
    b0_threshold : float, default=50.0
        Volumes with ``b <= b0_threshold`` (s/mm²) count as b = 0.
    shell_tolerance : float, default=0.1
        Relative width of the highest shell: a volume belongs to it when its b-value is
        at least ``(1 - shell_tolerance) * max(bvals)`` (and above ``b0_threshold``).

    Returns
    -------
    b0_index : ndarray of int, shape (n_b0,)
        Indices of the b = 0 volumes, in increasing order; empty when there is none.
    high_index : ndarray of int, shape (n_high,)
        Indices of the highest-shell volumes, in increasing order; never empty.
    high_b : float
        Mean b-value of the highest shell (s/mm²). This is the effective b-value of the
        geometric mean of those volumes (see :func:`b0_and_trace`).

    Raises
    ------
    BadInputError
        ``bvals`` is not one-dimensional, holds negative or non-finite values, or has no
        value above ``b0_threshold``.

    Examples
    --------
    >>> b0, high, b = split_shells([0, 1000, 1000, 0, 2000, 1990, 2010])
    >>> b0.tolist(), high.tolist(), b
    ([0, 3], [4, 5, 6], 2000.0)
    """
    if not 0 <= shell_tolerance < 1:
        raise ValueError(
            f"'shell_tolerance' must be in [0, 1). Got {shell_tolerance!r} instead."
        )
    bvals = np.asarray(bvals, dtype=float)
    if bvals.ndim != 1 or bvals.size == 0:
        raise BadInputError(
            "'bvals' must be a non-empty list of numbers, one per volume. Got an array "
            f"of shape {bvals.shape} instead."
        )
    if not np.all(np.isfinite(bvals)) or np.any(bvals < 0):
        raise BadInputError(
            "'bvals' must be finite and non-negative (s/mm²). Got "
            f"{_describe(bvals)} instead."
        )
    b_max = bvals.max()
    if b_max <= b0_threshold:
        raise BadInputError(
            f"'bvals' must contain a diffusion-weighted volume (b > {b0_threshold:g} "
            f"s/mm²). Got only b-values {_describe(bvals)} instead."
        )
    b0_index = np.flatnonzero(bvals <= b0_threshold)
    high = (bvals >= (1.0 - shell_tolerance) * b_max) & (bvals > b0_threshold)
    high_index = np.flatnonzero(high)
    return b0_index, high_index, float(bvals[high_index].mean())


def b0_and_trace(data, bvals, *, eps=1e-6, **kwargs):
    """Mean b = 0 image and trace (geometric mean of the highest shell) of a DWI series.

    Parameters
    ----------
    data : ndarray of shape (X, Y, Z, N)
        The DWI series, one volume per b-value, in scanner intensity units. Must be
        finite (see :func:`sanitize`).
    bvals : array-like of shape (N,)
        b-value of each volume, in s/mm².
    eps : float, default=1e-6
        Values ``<= 0`` (in intensity units) are clipped to ``eps`` before the logarithm
        of the geometric mean, so a voxel where one direction is 0 gets a small positive
        trace instead of ``-inf``/NaN. Voxels where every highest-shell volume is
        ``<= 0`` (background) get exactly 0.
    **kwargs
        ``b0_threshold`` and ``shell_tolerance``, passed to :func:`split_shells`.

    Returns
    -------
    b0 : ndarray of shape (X, Y, Z) or None
        Arithmetic mean of the b = 0 volumes; None when the series has none.
    trace : ndarray of shape (X, Y, Z)
        Geometric mean of the highest-shell volumes (the "trace" or isotropic DWI):
        ``exp(mean(log(S_i)))``, float64.
    high_b : float
        b-value of ``trace`` (mean b of the highest shell), in s/mm².

    Raises
    ------
    BadInputError
        ``data`` is not 4D, or its number of volumes differs from the number of
        b-values, or ``bvals`` is unusable (see :func:`split_shells`).
    """
    data = np.asarray(data)
    bvals = np.asarray(bvals, dtype=float)
    if data.ndim != 4:
        raise BadInputError(
            "'data' must be a 4D DWI series (X, Y, Z, volumes). Got an image of shape "
            f"{data.shape} instead."
        )
    if bvals.ndim != 1 or data.shape[3] != bvals.size:
        raise BadInputError(
            "'bvals' must have one value per DWI volume (the image has "
            f"{data.shape[3]} volumes). Got {bvals.size} b-values instead."
        )
    b0_index, high_index, high_b = split_shells(bvals, **kwargs)
    b0 = None
    if b0_index.size:
        b0 = data[..., b0_index].astype(np.float64).mean(axis=3)
    high = data[..., high_index].astype(np.float64)
    trace = np.exp(np.log(np.clip(high, eps, None)).mean(axis=3))
    trace[np.all(high <= 0, axis=3)] = 0.0
    return b0, trace, high_b


def compute_adc(b0, trace, b_value, *, mask=None):
    """Apparent diffusion coefficient from a b = 0 and a trace image.

    ``ADC = ln(b0 / trace) / b``, the mono-exponential model ``S = S0 exp(-b ADC)``.

    Parameters
    ----------
    b0 : ndarray of shape (X, Y, Z)
        b = 0 image (intensity units).
    trace : ndarray of shape (X, Y, Z)
        Trace image at ``b_value`` (same units and grid as ``b0``).
    b_value : float
        b-value of ``trace``, in s/mm² (> 0).
    mask : ndarray of shape (X, Y, Z) or None, default=None
        Voxels to compute (non-zero); None: every voxel.

    Returns
    -------
    adc : ndarray of shape (X, Y, Z)
        ADC in mm²/s, float64, clipped to ``[0, ADC_MAX]`` (5e-3 mm²/s); 0 where ``b0``
        or ``trace`` is ``<= 0`` or not finite, and outside ``mask``.

    Raises
    ------
    BadInputError
        ``b_value`` is not a positive finite number, or the shapes differ.
    """
    b0 = np.asarray(b0, dtype=np.float64)
    trace = np.asarray(trace, dtype=np.float64)
    try:
        b_value = float(b_value)
    except (TypeError, ValueError):
        b_value = float("nan")
    if not (np.isfinite(b_value) and b_value > 0):
        raise BadInputError(
            f"'b_value' must be a positive number (s/mm²). Got {b_value!r} instead."
        )
    if b0.shape != trace.shape:
        raise BadInputError(
            f"'trace' must have the shape of 'b0' {b0.shape}. Got {trace.shape} instead."
        )
    valid = np.isfinite(b0) & np.isfinite(trace) & (b0 > 0) & (trace > 0)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != b0.shape:
            raise BadInputError(
                f"'mask' must have the shape of 'b0' {b0.shape}. Got {mask.shape} "
                "instead."
            )
        valid &= mask != 0
    adc = np.zeros(b0.shape, dtype=np.float64)
    adc[valid] = np.log(b0[valid] / trace[valid]) / b_value
    return np.clip(adc, 0.0, ADC_MAX)


def sanitize(data):
    """Replace non-finite values (NaN, ±Inf) by 0 and count them.

    Policy: non-finite voxels are handled here, not refused; the caller reports the
    count as a warning.

    Parameters
    ----------
    data : array-like of any shape
        Image values.

    Returns
    -------
    clean : ndarray of the same shape
        A copy of ``data`` with non-finite values set to 0. Floating dtypes are kept;
        other dtypes become float64.
    n_nonfinite : int
        Number of values replaced.
    """
    data = np.asarray(data)
    dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float64
    clean = np.array(data, dtype=dtype, copy=True)
    bad = ~np.isfinite(clean)
    n_nonfinite = int(bad.sum())
    clean[bad] = 0
    return clean, n_nonfinite


def check_not_empty(data, *, name="image"):
    """Fail when an image holds no information (no voxels, or the same value everywhere).

    Parameters
    ----------
    data : array-like of any shape
        Image values; non-finite values are ignored.
    name : str, default="image"
        Name of the parameter, used in the error message.

    Raises
    ------
    BadInputError
        The image has no voxel, no finite voxel, or a single value in every finite voxel
        (e.g. all zeros).
    """
    data = np.asarray(data)
    finite = data[np.isfinite(data)] if data.size else data.ravel()
    if finite.size == 0:
        raise BadInputError(
            f"'{name}' must contain finite voxel values. Got an image of shape "
            f"{data.shape} without any instead."
        )
    low, high = finite.min(), finite.max()
    if low == high:
        raise BadInputError(
            f"'{name}' must vary across voxels. Got a constant image (every voxel is "
            f"{low:g}) instead."
        )
