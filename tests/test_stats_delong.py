"""DeLong's test (fast algorithm of Sun & Xu 2014) against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from bids_stroke.stats.delong import delong_auc_covariance, delong_test


def _delong_by_definition(y, scores):
    """DeLong et al. (1988) structural components by explicit pair comparison, O(m n)."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, m, n)
    v10 = psi.mean(axis=2)
    v01 = psi.mean(axis=1)
    return psi.mean(axis=(1, 2)), np.cov(v10) / m + np.cov(v01) / n


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    scores = np.round(rng.random((4, 150)) + 0.3 * y, 1)
    auc, _ = delong_auc_covariance(y, scores)
    assert auc == pytest.approx([roc_auc_score(y, s) for s in scores])


def test_covariance_equals_the_definition():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(size=(3, 60)) + y, 1)
    auc, cov = delong_auc_covariance(y, scores)
    auc_ref, cov_ref = _delong_by_definition(y, scores)
    assert auc == pytest.approx(auc_ref)
    assert cov == pytest.approx(cov_ref)


def test_variance_agrees_with_bootstrap_variance():
    """DeLong's (co)variances vs those of 4000 bootstrap resamples (stratified by class,
    as DeLong conditions on the class sizes), AUCs from scipy's Mann-Whitney U."""
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], [120, 80])
    shared = rng.normal(size=200)
    scores = np.vstack([y + shared + rng.normal(size=200), 0.7 * y + shared + rng.normal(size=200)])
    _, cov = delong_auc_covariance(y, scores)
    n_boot = 4000
    neg_rows = rng.integers(0, 120, (n_boot, 120))
    pos_rows = 120 + rng.integers(0, 80, (n_boot, 80))
    boot = np.stack([
        stats.mannwhitneyu(s[pos_rows], s[neg_rows], axis=1).statistic / (80 * 120) for s in scores
    ])
    assert cov[0, 0] == pytest.approx(boot[0].var(), rel=0.12)
    assert cov[1, 1] == pytest.approx(boot[1].var(), rel=0.12)
    diff_var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert diff_var == pytest.approx((boot[0] - boot[1]).var(), rel=0.12)


def test_null_p_values_are_uniform():
    """Two scores with the same population AUC: p should be ~ U(0, 1)."""
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 60)
    p = []
    for _ in range(400):
        shared = rng.normal(size=120)
        a = 0.8 * y + shared + rng.normal(size=120)
        b = 0.8 * y + shared + rng.normal(size=120)
        p.append(delong_test(y, a, b).p_value)
    p = np.array(p)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(p < 0.05) <= 0.09


def test_clearly_better_score_is_detected():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 100)
    noise = rng.normal(size=200)
    res = delong_test(y, 2.0 * y + noise, 0.3 * y + noise + rng.normal(size=200))
    assert res.auc_a > res.auc_b
    assert res.z > 0 and res.p_value < 1e-4
    assert res.ci_a[0] < res.auc_a < res.ci_a[1]
    assert res.ci_difference[0] > 0


def test_identical_rankings_give_p_one():
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.3, 0.2, 0.5, 0.7, 0.9])
    res = delong_test(y, s, s ** 2)  # monotonic transform: same ranks, same AUC
    assert res.difference == 0.0 and res.p_value == 1.0


def test_needs_two_participants_per_class():
    with pytest.raises(ValueError, match="at least two participants of each outcome"):
        delong_auc_covariance([0, 0, 1], [0.1, 0.2, 0.3])
