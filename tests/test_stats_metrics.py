"""Metrics at a threshold and their bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score

from bids_stroke.stats.metrics import (
    METRIC_NAMES,
    bootstrap_metrics,
    bootstrap_resample_counts,
    classification_metrics,
)


@pytest.fixture
def rng():
    return np.random.default_rng(20220101)


def _recalibration(y, score):
    """Calibration intercept (offset model) and slope by statsmodels' logistic GLM."""
    q = np.clip(score, 1e-6, 1 - 1e-6)
    x = np.log(q / (1 - q))
    binomial = sm.families.Binomial()
    intercept = sm.GLM(y, np.ones((len(y), 1)), family=binomial, offset=x).fit().params[0]
    slope = sm.GLM(y, sm.add_constant(x), family=binomial).fit().params[1]
    return intercept, slope


def _by_hand(y, score, threshold):
    pred = (score >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    intercept, slope = _recalibration(y, score)
    return {
        "brier": brier_score_loss(y, score),
        "calibration_intercept": intercept,
        "calibration_slope": slope,
        "accuracy": (tp + tn) / len(y),
        "auc": roc_auc_score(y, score),
        "sensitivity": tp / (tp + fn),
        "specificity": tn / (tn + fp),
        "ppv": tp / (tp + fp),
        "npv": tn / (tn + fn),
    }


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_metrics_match_confusion_matrix_and_sklearn_auc(rng, threshold):
    y = rng.integers(0, 2, 120)
    score = np.round(np.clip(0.3 * y + rng.random(120) * 0.7, 0, 1), 2)  # ties included
    got = classification_metrics(y, score, threshold=threshold)
    want = _by_hand(y, score, threshold)
    assert set(got) == set(want)
    assert got == pytest.approx(want, rel=1e-6)


def test_score_equal_to_threshold_is_predicted_poor():
    m = classification_metrics([0, 1], [0.2, 0.5], threshold=0.5)
    assert m["sensitivity"] == 1.0 and m["specificity"] == 1.0


def test_resample_counts_are_multinomial_draws(rng):
    counts = bootstrap_resample_counts(50, 2000, rng)
    assert counts.shape == (2000, 50)
    assert np.all(counts.sum(axis=1) == 50)
    # each participant is drawn Binomial(50, 1/50) times: mean 1, variance 49/50
    assert counts.mean() == pytest.approx(1.0)
    assert counts.var() == pytest.approx(49 / 50, rel=0.05)


def test_resampled_metrics_equal_metrics_of_the_expanded_resample(rng):
    """The count-weighted metrics of a resample equal sklearn's on the resampled rows."""
    from bids_stroke.stats.metrics import _metrics_from_weights

    y = rng.integers(0, 2, 80)
    scores = np.round(0.1 + 0.6 * rng.random((3, 80)) + 0.2 * y, 1)  # probabilities, many ties
    counts = bootstrap_resample_counts(80, 15, np.random.default_rng(1))
    got = _metrics_from_weights(y, scores, counts, np.array([0.5, 0.7, 0.9]))
    for b in range(15):
        rows = np.repeat(np.arange(80), counts[b].astype(int))
        for m, thr in enumerate([0.5, 0.7, 0.9]):
            want = _by_hand(y[rows], scores[m][rows], thr)
            for name in METRIC_NAMES:
                assert got[name][m, b] == pytest.approx(want[name], nan_ok=True), (name, b, m)


def test_bootstrap_is_seeded_and_paired(rng):
    y = rng.integers(0, 2, 100)
    scores = rng.random((2, 100)) + 0.5 * y
    a = bootstrap_metrics(y, scores, n_bootstrap=300, seed=7)
    b = bootstrap_metrics(y, scores, n_bootstrap=300, seed=7)
    c = bootstrap_metrics(y, scores, n_bootstrap=300, seed=8)
    assert np.array_equal(a.ci_low["auc"], b.ci_low["auc"])
    assert not np.array_equal(a.ci_low["auc"], c.ci_low["auc"])
    # one model alone sees the same resamples as in the pair
    alone = bootstrap_metrics(y, scores[1], n_bootstrap=300, seed=7)
    assert alone.ci_high["auc"][0] == a.ci_high["auc"][1]
    # batching does not change the draws
    batched = bootstrap_metrics(y, scores, n_bootstrap=300, seed=7, batch_size=64)
    assert np.allclose(batched.ci_low["sensitivity"], a.ci_low["sensitivity"])


def test_bootstrap_ci_covers_true_auc_at_nominal_rate():
    """Binormal scores: the true AUC is Phi(d / sqrt 2); 95 % CIs should cover it ~95 %."""
    d = 1.0
    true_auc = stats.norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(5)
    n_rep, covered = 200, 0
    y = np.repeat([0, 1], 80)
    for _ in range(n_rep):
        score = rng.normal(size=160) + d * y
        res = bootstrap_metrics(y, score, n_bootstrap=400, seed=rng)
        covered += res.ci_low["auc"][0] <= true_auc <= res.ci_high["auc"][0]
    # binomial sd at 0.95 over 200 repetitions is 0.015; percentile CIs run slightly narrow
    assert 0.89 <= covered / n_rep <= 0.99


def test_degenerate_resamples_are_counted_and_excluded():
    y = np.array([0, 0, 0, 0, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.9])
    res = bootstrap_metrics(y, score, n_bootstrap=4000, seed=0)
    # P(the single poor participant is never drawn in 6 draws) = (5/6) ** 6 ~ 0.335
    assert res.n_degenerate / 4000 == pytest.approx((5 / 6) ** 6, abs=0.03)
    for name in METRIC_NAMES:
        if name == "calibration_slope":
            continue
        assert np.isfinite(res.ci_low[name]).all() and np.isfinite(res.ci_high[name]).all()
    # the single poor participant has the highest probability: separation, no slope in any
    # kept resample, and so no interval
    assert res.n_undefined["calibration_slope"][0] == 4000 - res.n_degenerate
    assert np.isnan(res.ci_low["calibration_slope"]).all()
    # the poor participant is always ranked first: AUC is 1 in every kept resample
    assert res.ci_low["auc"][0] == 1.0
    # PPV is undefined in no kept resample (the poor participant is predicted poor)
    assert res.n_undefined["ppv"][0] == 0


def test_no_bootstrap_gives_estimates_only(rng):
    y = rng.integers(0, 2, 40)
    res = bootstrap_metrics(y, rng.random(40), n_bootstrap=0)
    assert np.isnan(res.ci_low["auc"]).all() and np.isfinite(res.estimate["auc"]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 2, 1], "y_score": [0.1, 0.2, 0.3]}, "'y_true' must hold only 0"),
        ({"y_true": [1, 1, 1], "y_score": [0.1, 0.2, 0.3]}, "'y_true' must contain both"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2]}, "'y_score' must have shape"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, np.nan, 0.3]}, "'y_score' must be finite"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2, 0.3], "n_bootstrap": -1}, "'n_bootstrap' must be"),
    ],
)
def test_bad_inputs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_metrics(**kwargs)
