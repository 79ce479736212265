"""Calibration of predicted probabilities: Brier score and logistic recalibration.

The numeric cores of the calibration columns of ``desc-loco_metrics.tsv``. Every function
takes resample weights (how often each participant appears in each bootstrap resample,
:func:`bids_stroke.stats.metrics.bootstrap_resample_counts`), so that the bootstrap
computes every resample at once; a weight vector of ones is the full data.

Definitions (Van Calster et al., J Clin Epidemiol 2016; Steyerberg, *Clinical Prediction
Models*, 2019), with ``p`` the predicted probability of a poor outcome and ``y`` the
outcome (1 = poor):

- **Brier score**: the mean of ``(p - y)**2`` (0 is perfect; a constant prediction at the
  prevalence ``q`` scores ``q (1 - q)``);
- **calibration slope** ``b``: the logistic regression ``logit P(y = 1) = a + b logit(p)``;
  1 is ideal, below 1 means predictions too extreme (over-fitting), above 1 too modest;
- **calibration intercept** (calibration-in-the-large) ``a``: the same regression with the
  slope fixed at 1 (``logit(p)`` as an offset); 0 is ideal, above 0 means probabilities
  too low on average, below 0 too high.

Both regressions are fitted by Newton's method for all resamples at once. A resample
without a finite maximum-likelihood fit gets NaN: for the slope, one whose probabilities
separate the outcomes (every poor-outcome probability at or above every good-outcome one,
or the reverse: complete or quasi-complete separation); for the intercept, one with a
single outcome class; and any fit that does not converge.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "brier_scores", "calibration_intercepts", "calibration_slopes", "logit"]

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit.
EPS = 1e-6


def logit(p) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to [:data:`EPS`, 1 - :data:`EPS`]; NaN stays NaN.

    Examples
    --------
    >>> logit([0.5, np.nan]).tolist()
    [0.0, nan]
    >>> bool(np.isclose(logit(1.0), np.log((1 - EPS) / EPS)))
    True
    """
    q = np.clip(np.asarray(p, dtype=float), EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _weights(weights, n: int) -> np.ndarray:
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != n:
        raise ValueError(f"'weights' must have shape (n_resamples, {n}). Got {w.shape} instead.")
    return w


def _separated(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per resample: whether ``x`` separates the outcomes among the drawn participants."""
    drawn = w > 0
    poor, good = drawn & (y == 1), drawn & (y == 0)
    lowest_poor = np.where(poor, x, np.inf).min(axis=1)
    highest_poor = np.where(poor, x, -np.inf).max(axis=1)
    lowest_good = np.where(good, x, np.inf).min(axis=1)
    highest_good = np.where(good, x, -np.inf).max(axis=1)
    return (highest_good <= lowest_poor) | (highest_poor <= lowest_good)


def brier_scores(y, p, weights=None) -> np.ndarray:
    """Weighted Brier score of each resample.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcome, 1 = poor, 0 = good.
    p : array-like of shape (n,)
        Predicted probability of a poor outcome.
    weights : array-like of shape (n_resamples, n), default=None
        Participant counts per resample; None is the full data (one resample).

    Returns
    -------
    ndarray of shape (n_resamples,)

    Examples
    --------
    >>> brier_scores([0, 1], [0.2, 0.6])
    array([0.1])
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = _weights(weights, y.size)
    return w @ (p - y) ** 2 / w.sum(axis=1)


def calibration_intercepts(y, p, weights=None, *, max_iter: int = 50, tol: float = 1e-9) -> np.ndarray:
    """Calibration-in-the-large ``a`` of ``logit P(y=1) = a + logit(p)`` for each resample.

    Parameters
    ----------
    y, p, weights
        As :func:`brier_scores`.
    max_iter : int, default=50
        Newton steps at most.
    tol : float, default=1e-9
        Convergence: the largest step below it.

    Returns
    -------
    ndarray of shape (n_resamples,)
        NaN where the fit does not converge (a resample with one outcome class).
    """
    y = np.asarray(y, dtype=float)
    offset = logit(p)
    w = _weights(weights, y.size)
    a = np.zeros(w.shape[0])
    converged = np.zeros(w.shape[0], dtype=bool)
    for _ in range(max_iter):
        mu = _sigmoid(a[:, None] + offset[None, :])
        gradient = (w * (y - mu)).sum(axis=1)
        curvature = (w * mu * (1.0 - mu)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(converged, 0.0, gradient / curvature)
        a = a + np.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
        converged |= np.abs(step) < tol
        if converged.all():
            break
    drawn = w > 0
    both = (drawn & (y == 1)).any(axis=1) & (drawn & (y == 0)).any(axis=1)
    return np.where(converged & both, a, np.nan)


def calibration_slopes(y, p, weights=None, *, max_iter: int = 50, tol: float = 1e-9) -> np.ndarray:
    """Calibration slope ``b`` of ``logit P(y=1) = a + b logit(p)`` for each resample.

    Parameters
    ----------
    y, p, weights
        As :func:`brier_scores`.
    max_iter : int, default=50
        Newton steps at most (the fit starts at ``b = 0`` and ``a`` the logit of the
        prevalence).
    tol : float, default=1e-9
        Convergence: the largest step below it.

    Returns
    -------
    ndarray of shape (n_resamples,)
        NaN where the probabilities separate the outcomes (a single outcome class
        included) or the fit does not converge.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.02, 0.98, 4000)
    >>> y = rng.random(4000) < p
    >>> bool(abs(calibration_slopes(y, p)[0] - 1) < 0.15)
    True
    """
    y = np.asarray(y, dtype=float)
    x = logit(p)
    w = _weights(weights, y.size)
    # start from the intercept-only fit (b = 0): Newton's method from there converges for
    # logistic regression without separation, even when logit(p) spans tens of units
    prevalence = np.clip((w @ y) / w.sum(axis=1), EPS, 1 - EPS)
    a = np.log(prevalence) - np.log1p(-prevalence)
    b = np.zeros(w.shape[0])
    converged = np.zeros(w.shape[0], dtype=bool)
    for _ in range(max_iter):
        mu = _sigmoid(a[:, None] + b[:, None] * x[None, :])
        r = w * (y - mu)
        v = w * mu * (1.0 - mu)
        g0, g1 = r.sum(axis=1), r @ x
        h00, h01, h11 = v.sum(axis=1), v @ x, v @ (x * x)
        det = h00 * h11 - h01 * h01
        with np.errstate(divide="ignore", invalid="ignore"):
            da = (h11 * g0 - h01 * g1) / det
            db = (h00 * g1 - h01 * g0) / det
        da = np.where(converged, 0.0, np.nan_to_num(da, nan=0.0, posinf=0.0, neginf=0.0))
        db = np.where(converged, 0.0, np.nan_to_num(db, nan=0.0, posinf=0.0, neginf=0.0))
        a, b = a + da, b + db
        converged |= (np.maximum(np.abs(da), np.abs(db)) < tol) & (det > 0)
        if converged.all():
            break
    return np.where(converged & ~_separated(y, x, w), b, np.nan)
