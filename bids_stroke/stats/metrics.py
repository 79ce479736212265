"""Classification metrics on the merged out-of-center vector, with bootstrap CIs.

The group level merges every leave-one-center-out (LOCO) fold's predictions into one
vector, one probability per participant, and the metrics are computed on that vector (not
averaged over folds), as in Moulton et al. (JCBFM 2022).

Conventions
-----------
- ``y_true`` is 1 for a poor outcome (mRS >= 3) and 0 for a good one.
- ``y_score`` is the predicted probability of a poor outcome (any score where larger
  means "more likely poor" works for the AUC).
- A participant is *predicted poor* when ``y_score >= threshold`` (0.5 by default).
- Sensitivity and PPV refer to the poor-outcome class; specificity and NPV to the good
  one.

Bootstrap
---------
:func:`bootstrap_metrics` draws ``n_bootstrap`` resamples (with replacement, same size
as the data) of the participants from one seeded generator, the same resamples for
every model (a paired bootstrap), and reports percentile confidence intervals. Each
resample is stored as a vector of counts (how often each participant was drawn), so every
metric of every resample is a matrix product and the AUC a weighted Mann-Whitney
statistic: no Python loop runs over resamples. Resamples that hold only one outcome class
have no AUC, sensitivity or specificity: they are dropped for every metric and their
number is reported (``n_degenerate``); a PPV (NPV) with no predicted poor (good)
participant in a resample is left out of that metric's interval only, and so is a
calibration fit that does not converge in a resample (complete separation).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .calibration import brier_scores, calibration_intercepts, calibration_slopes

__all__ = [
    "METRIC_NAMES",
    "BootstrapResult",
    "bootstrap_metrics",
    "bootstrap_resample_counts",
    "check_binary_outcome",
    "check_scores",
    "classification_metrics",
]

#: The metrics reported for every model, in table order: classification at the decision
#: threshold, discrimination (AUC), then calibration (:mod:`bids_stroke.stats.calibration`).
METRIC_NAMES = ("accuracy", "auc", "sensitivity", "specificity", "ppv", "npv", "brier", "calibration_intercept",
                "calibration_slope")


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------
def check_binary_outcome(y_true, *, name: str = "y_true", require_both: bool = True) -> np.ndarray:
    """Return ``y_true`` as an int8 vector of 0/1, or raise ``ValueError``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Outcome, 1 = poor, 0 = good.
    name : str, default="y_true"
        Parameter name used in the error message.
    require_both : bool, default=True
        Also require at least one participant of each class.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"'{name}' must be a non-empty 1-D array. Got shape {arr.shape} instead.")
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    try:
        values = arr.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must hold 0 (good) or 1 (poor outcome). Got dtype {arr.dtype} instead.") from None
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"'{name}' must hold only 0 (good) or 1 (poor outcome). Got {arr[bad][:5].tolist()} instead."
        )
    out = values.astype(np.int8)
    if require_both and (out.min() == out.max()):
        raise ValueError(
            f"'{name}' must contain both outcomes (0 and 1). Got only {int(out[0])} "
            f"in {out.size} participants instead."
        )
    return out


def check_scores(y_score, n_samples: int, *, name: str = "y_score") -> np.ndarray:
    """Return scores as a float64 array of shape (n_samples,) or (n_models, n_samples).

    Raises ``ValueError`` for a wrong length or non-finite values.
    """
    arr = np.asarray(y_score, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[-1] != n_samples:
        raise ValueError(
            f"'{name}' must have shape ({n_samples},) or (n_models, {n_samples}). "
            f"Got shape {arr.shape} instead."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"'{name}' must be finite. Got {int((~np.isfinite(arr)).sum())} NaN/inf values instead.")
    return arr


# ---------------------------------------------------------------------------------------
# Point estimates
# ---------------------------------------------------------------------------------------
def _auc_weighted(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC (ties count one half).

    Parameters
    ----------
    y : ndarray of shape (n,)
        0/1 outcome.
    score : ndarray of shape (n,)
    weights : ndarray of shape (n_resamples, n)
        Number of times each participant appears in each resample.

    Returns
    -------
    ndarray of shape (n_resamples,)
        NaN where a resample lacks a class.
    """
    order = np.argsort(score, kind="mergesort")
    s_sorted = score[order]
    w = weights[:, order]
    w_pos = w * y[order].astype(weights.dtype)
    if s_sorted.size > 1 and (s_sorted[1:] == s_sorted[:-1]).any():
        starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        w = np.add.reduceat(w, starts, axis=1)
        w_pos = np.add.reduceat(w_pos, starts, axis=1)
    w_neg = w - w_pos
    neg_below = np.cumsum(w_neg, axis=1)
    neg_below -= 0.5 * w_neg
    num = np.einsum("ij,ij->i", w_pos, neg_below)
    total_pos = w_pos.sum(axis=1)
    total_neg = w_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((total_pos > 0) & (total_neg > 0), num / (total_pos * total_neg), np.nan)


def _metrics_from_weights(y: np.ndarray, scores: np.ndarray, weights: np.ndarray,
                          thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of every model for each resample.

    Parameters
    ----------
    y : ndarray of shape (n,)
    scores : ndarray of shape (n_models, n)
    weights : ndarray of shape (n_resamples, n)
    thresholds : ndarray of shape (n_models,)

    Returns
    -------
    dict of str to ndarray of shape (n_models, n_resamples)
    """
    pos = y.astype(float)
    pred = (scores >= thresholds[:, None]).astype(float)  # (k, n)
    # confusion-matrix indicators of every model, counted in one product (no BLAS call
    # per vector: einsum keeps the many small products single-threaded and fast)
    cells = np.concatenate([pos * pred, pos * (1 - pred), (1 - pos) * pred, (1 - pos) * (1 - pred)])
    counts = np.einsum("bn,cn->cb", weights, cells).reshape(4, scores.shape[0], weights.shape[0])
    tp, fn, fp, tn = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "accuracy": (tp + tn) / (tp + tn + fp + fn),
            "auc": np.stack([_auc_weighted(y, s, weights) for s in scores]),
            "sensitivity": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
        }
    out["brier"] = np.stack([brier_scores(y, s, weights) for s in scores])
    out["calibration_intercept"] = np.stack([calibration_intercepts(y, s, weights) for s in scores])
    out["calibration_slope"] = np.stack([calibration_slopes(y, s, weights) for s in scores])
    return out


def classification_metrics(y_true, y_score, *, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, AUC, sensitivity, specificity, PPV, NPV at one decision threshold, and calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor outcome (mRS >= 3), 0 = good.
    y_score : array-like of shape (n_samples,)
        Predicted probability of a poor outcome.
    threshold : float, default=0.5
        Predicted poor when ``y_score >= threshold``.

    Returns
    -------
    dict of str to float
        Keys :data:`METRIC_NAMES`; a ratio with an empty denominator (e.g. PPV when no
        one is predicted poor) is NaN, and so is a calibration fit that does not converge.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> m["auc"], m["sensitivity"], m["specificity"]
    (0.75, 0.5, 0.5)
    """
    y = check_binary_outcome(y_true)
    s = check_scores(y_score, y.size)
    if s.ndim != 1:
        raise ValueError(f"'y_score' must be 1-D. Got shape {s.shape} instead.")
    values = _metrics_from_weights(y, s[None, :], np.ones((1, y.size)), np.array([float(threshold)]))
    return {name: float(values[name][0, 0]) for name in METRIC_NAMES}


# ---------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------
def bootstrap_resample_counts(n_samples: int, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Draw resamples as counts: shape (n_bootstrap, n_samples), row sums ``n_samples``.

    Row ``b`` says how many times each participant appears in resample ``b``; the draws
    are those of ``rng.integers(0, n_samples, size=(n_bootstrap, n_samples))``.
    """
    idx = rng.integers(0, n_samples, size=(n_bootstrap, n_samples))
    flat = (idx + n_samples * np.arange(n_bootstrap)[:, None]).ravel()
    return np.bincount(flat, minlength=n_bootstrap * n_samples).reshape(n_bootstrap, n_samples).astype(float)


@dataclass(frozen=True)
class BootstrapResult:
    """Metrics of one or more models with percentile bootstrap confidence intervals.

    Attributes
    ----------
    estimate, ci_low, ci_high : dict of str to ndarray of shape (n_models,)
        Point estimate on the full data and interval bounds, per metric of
        :data:`METRIC_NAMES`; NaN bounds when ``n_bootstrap`` is 0.
    n_bootstrap : int
        Resamples drawn.
    n_degenerate : int
        Resamples holding a single outcome class, left out of every interval.
    n_undefined : dict of str to ndarray of shape (n_models,)
        Per metric and model, the resamples (among the non-degenerate ones) where the
        metric was undefined (PPV/NPV with an empty denominator) and left out.
    confidence : float
        Coverage of the intervals (0.95).
    """

    estimate: Mapping[str, np.ndarray]
    ci_low: Mapping[str, np.ndarray]
    ci_high: Mapping[str, np.ndarray]
    n_bootstrap: int
    n_degenerate: int
    n_undefined: Mapping[str, np.ndarray]
    confidence: float


def bootstrap_metrics(
    y_true,
    y_score,
    *,
    threshold: float = 0.5,
    n_bootstrap: int = 10000,
    seed: int | np.random.Generator | None = 0,
    confidence: float = 0.95,
    batch_size: int = 1000,
) -> BootstrapResult:
    """Metrics of one or several models with paired percentile bootstrap CIs.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor outcome, 0 = good; both must occur.
    y_score : array-like of shape (n_samples,) or (n_models, n_samples)
        Probability of a poor outcome, one row per model. All models share the same
        resamples.
    threshold : float or array-like of shape (n_models,), default=0.5
        Predicted poor when ``y_score >= threshold``.
    n_bootstrap : int, default=10000
        Number of resamples; 0 gives point estimates only.
    seed : int, numpy Generator or None, default=0
        Seed of the resampling (``numpy.random.default_rng(seed)``).
    confidence : float, default=0.95
        Two-sided coverage of the percentile intervals.
    batch_size : int, default=1000
        Resamples processed at once (memory ~ 8 * batch_size * n_samples bytes per array).

    Returns
    -------
    BootstrapResult
        Arrays of shape (n_models,) (a 1-D ``y_score`` counts as one model).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> res = bootstrap_metrics(y, y * 0.3 + rng.random(200) * 0.7, n_bootstrap=500)
    >>> bool(res.ci_low["auc"][0] < res.estimate["auc"][0] < res.ci_high["auc"][0])
    True
    """
    y = check_binary_outcome(y_true)
    scores = check_scores(y_score, y.size)
    scores = np.atleast_2d(scores)
    n_models = scores.shape[0]
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=float), (n_models,))
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"'n_bootstrap' must be an integer >= 0. Got {n_bootstrap!r} instead.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"'confidence' must lie in (0, 1). Got {confidence!r} instead.")
    if int(batch_size) < 1:
        raise ValueError(f"'batch_size' must be a positive integer. Got {batch_size!r} instead.")

    values = _metrics_from_weights(y, scores, np.ones((1, y.size)), thresholds)
    estimate = {name: values[name][:, 0] for name in METRIC_NAMES}

    nan = {name: np.full(n_models, np.nan) for name in METRIC_NAMES}
    if n_bootstrap == 0:
        return BootstrapResult(estimate, nan, dict(nan), 0, 0,
                               {name: np.zeros(n_models, int) for name in METRIC_NAMES}, confidence)

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    samples = {name: np.empty((n_models, n_bootstrap)) for name in METRIC_NAMES}
    valid = np.empty(n_bootstrap, dtype=bool)
    pos = y.astype(float)
    for start in range(0, n_bootstrap, int(batch_size)):
        stop = min(start + int(batch_size), n_bootstrap)
        counts = bootstrap_resample_counts(y.size, stop - start, rng)
        n_pos = np.einsum("bn,n->b", counts, pos)
        valid[start:stop] = (n_pos > 0) & (n_pos < y.size)
        values = _metrics_from_weights(y, scores, counts, thresholds)
        for name in METRIC_NAMES:
            samples[name][:, start:stop] = values[name]

    alpha = (1.0 - confidence) / 2.0
    ci_low, ci_high, n_undefined = {}, {}, {}
    for name in METRIC_NAMES:
        kept = samples[name][:, valid]
        n_undefined[name] = np.isnan(kept).sum(axis=1)
        if kept.shape[1] == 0:
            ci_low[name] = ci_high[name] = np.full(n_models, np.nan)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(kept, [alpha, 1.0 - alpha], axis=1)
        ci_low[name], ci_high[name] = low, high
    return BootstrapResult(estimate, ci_low, ci_high, int(n_bootstrap),
                           int((~valid).sum()), n_undefined, confidence)
