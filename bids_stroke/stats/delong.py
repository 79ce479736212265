"""DeLong's test for correlated ROC AUCs, by the fast algorithm of Sun & Xu (2014).

DeLong, DeLong & Clarke-Pearson (Biometrics 1988) estimate the covariance of the
empirical (Mann-Whitney) AUCs of several scores measured on the same participants from
their structural components. Sun & Xu (IEEE Signal Process. Lett. 21:1389, 2014) compute
those components from mid-ranks, in O(k n log n) for k scores of n participants instead
of O(k m n) pair comparisons.

Inputs follow :mod:`bids_stroke.stats.metrics`: ``y_true`` is 1 for a poor outcome and
0 for a good one; a score is larger for "more likely poor".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .metrics import check_binary_outcome, check_scores

__all__ = ["DeLongResult", "delong_auc_covariance", "delong_ci", "delong_test"]


def delong_auc_covariance(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of several scores and their DeLong covariance matrix.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor outcome, 0 = good; both must occur, and each class needs at least two
        participants for a variance.
    y_score : array-like of shape (n_samples,) or (n_models, n_samples)
        Scores of the models on the same participants.

    Returns
    -------
    auc : ndarray of shape (n_models,)
        Empirical AUC (ties count one half), equal to ``sklearn.metrics.roc_auc_score``.
    covariance : ndarray of shape (n_models, n_models)
        DeLong covariance of the AUCs.

    Examples
    --------
    >>> auc, cov = delong_auc_covariance([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    >>> round(float(auc[0]), 4)
    0.8889
    """
    y = check_binary_outcome(y_true)
    scores = np.atleast_2d(check_scores(y_score, y.size))
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(
            "'y_true' must hold at least two participants of each outcome for a DeLong "
            f"variance. Got {m} poor and {n} good instead."
        )
    x = scores[:, pos]  # (k, m) positives
    z = scores[:, ~pos]  # (k, n) negatives
    tx = stats.rankdata(x, axis=1)
    ty = stats.rankdata(z, axis=1)
    tz = stats.rankdata(np.concatenate([x, z], axis=1), axis=1)
    auc = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n  # (k, m): placement of each positive among negatives
    v01 = 1.0 - (tz[:, m:] - ty) / m  # (k, n)
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return auc, s10 / m + s01 / n


def delong_ci(auc: float, variance: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wald confidence interval ``auc ± z * sqrt(variance)``, clipped to [0, 1]."""
    half = stats.norm.ppf(0.5 + confidence / 2.0) * np.sqrt(max(float(variance), 0.0))
    return float(max(auc - half, 0.0)), float(min(auc + half, 1.0))


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of two correlated AUCs (``auc_a - auc_b``).

    Attributes
    ----------
    auc_a, auc_b : float
        Empirical AUCs.
    difference : float
        ``auc_a - auc_b``.
    z : float
        ``difference / sqrt(var_a + var_b - 2 cov)``. When that variance is 0 (both
        scores rank the participants alike), z is 0 and p is 1 for equal AUCs, ``±inf``
        and 0 otherwise.
    p_value : float
        Two-sided p-value of the standard normal.
    variance_a, variance_b, covariance : float
        DeLong (co)variances of the AUCs.
    ci_a, ci_b : tuple of float
        DeLong 95 % (``confidence``) Wald interval of each AUC.
    ci_difference : tuple of float
        Interval of the difference.
    """

    auc_a: float
    auc_b: float
    difference: float
    z: float
    p_value: float
    variance_a: float
    variance_b: float
    covariance: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    ci_difference: tuple[float, float]


def delong_test(y_true, score_a, score_b, *, confidence: float = 0.95) -> DeLongResult:
    """Compare the AUCs of two scores on the same participants (two-sided).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor outcome, 0 = good.
    score_a, score_b : array-like of shape (n_samples,)
        The two models' probabilities of a poor outcome.
    confidence : float, default=0.95
        Coverage of the reported intervals.

    Returns
    -------
    DeLongResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> res = delong_test(y, 2 * y + rng.normal(size=200), y + rng.normal(size=200))
    >>> bool(res.auc_a > res.auc_b and res.p_value < 0.05)
    True
    """
    y = check_binary_outcome(y_true)
    a = check_scores(score_a, y.size, name="score_a")
    b = check_scores(score_b, y.size, name="score_b")
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"'score_a' and 'score_b' must be 1-D. Got shapes {a.shape} and {b.shape} instead.")
    auc, cov = delong_auc_covariance(y, np.vstack([a, b]))
    diff = float(auc[0] - auc[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if var <= 1e-15:
        z, p = (0.0, 1.0) if abs(diff) < 1e-12 else (float(np.sign(diff) * np.inf), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2.0 * stats.norm.sf(abs(z)))
    half = stats.norm.ppf(0.5 + confidence / 2.0) * np.sqrt(max(var, 0.0))
    return DeLongResult(
        auc_a=float(auc[0]),
        auc_b=float(auc[1]),
        difference=diff,
        z=float(z),
        p_value=p,
        variance_a=float(cov[0, 0]),
        variance_b=float(cov[1, 1]),
        covariance=float(cov[0, 1]),
        ci_a=delong_ci(auc[0], cov[0, 0], confidence=confidence),
        ci_b=delong_ci(auc[1], cov[1, 1], confidence=confidence),
        ci_difference=(float(diff - half), float(diff + half)),
    )
