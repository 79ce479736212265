"""Calibration (Brier score, recalibration intercept and slope) and decision curves."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from bids_stroke.stats.calibration import brier_scores, calibration_intercepts, calibration_slopes, logit
from bids_stroke.stats.decision import DEFAULT_THRESHOLDS, decision_curve, net_benefit
from bids_stroke.stats.metrics import bootstrap_metrics, bootstrap_resample_counts


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def calibrated():
    """Outcomes drawn from the probabilities themselves: a perfectly calibrated score."""
    rng = np.random.default_rng(11)
    p = _sigmoid(rng.normal(-0.2, 1.3, 600))
    y = (rng.random(600) < p).astype(int)
    return y, p


def test_brier_equals_sklearn_on_data_and_resamples(calibrated):
    y, p = calibrated
    assert brier_scores(y, p)[0] == pytest.approx(brier_score_loss(y, p))
    counts = bootstrap_resample_counts(y.size, 5, np.random.default_rng(0))
    for b, value in enumerate(brier_scores(y, p, counts)):
        rows = np.repeat(np.arange(y.size), counts[b].astype(int))
        assert value == pytest.approx(brier_score_loss(y[rows], p[rows]))


def test_calibrated_score_has_slope_one_and_intercept_zero_within_ci(calibrated):
    y, p = calibrated
    res = bootstrap_metrics(y, p, n_bootstrap=1000, seed=3)
    assert res.ci_low["calibration_slope"][0] <= 1.0 <= res.ci_high["calibration_slope"][0]
    assert res.ci_low["calibration_intercept"][0] <= 0.0 <= res.ci_high["calibration_intercept"][0]


def test_squared_score_is_over_confident_slope_clearly_below_one(calibrated):
    """p**2 spreads the low probabilities apart on the logit scale (d logit(p^2) / d logit(p)
    = 2 / (1 + p)): predictions too extreme, slope below 1 with its CI."""
    y, p = calibrated
    res = bootstrap_metrics(y, p**2, n_bootstrap=1000, seed=3)
    assert res.ci_high["calibration_slope"][0] < 0.9
    # and so does a score stretched twice on the logit scale, whose slope is 1/2
    stretched = _sigmoid(2 * logit(p))
    assert calibration_slopes(y, stretched)[0] == pytest.approx(0.5, abs=0.1)


def test_intercept_sees_probabilities_too_high_on_average(calibrated):
    y, p = calibrated
    too_high = _sigmoid(logit(p) + 1.0)  # the odds of every participant times e
    assert calibration_intercepts(y, too_high)[0] == pytest.approx(-1.0, abs=0.25)
    assert calibration_slopes(y, too_high)[0] == pytest.approx(calibration_slopes(y, p)[0])


def test_separated_or_single_class_resamples_have_no_fit():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.8])  # every poor above every good
    assert np.isnan(calibration_slopes(y, p)[0])
    weights = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=float)  # one class / both
    assert np.isnan(calibration_intercepts(y, p, weights)[0])
    assert np.isfinite(calibration_intercepts(y, p, weights)[1])


def test_net_benefit_equals_the_formula_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.7, 0.2, 0.8, 0.4, 0.3, 0.1, 0.05])
    # pt = 0.25: treated 0.9 0.7 0.8 0.4 0.3 -> TP 2, FP 3; n 8
    assert net_benefit(y, p, [0.25])[0] == pytest.approx(2 / 8 - 3 / 8 * 0.25 / 0.75)
    # pt = 0.75: treated 0.9 0.8 -> TP 1, FP 1
    assert net_benefit(y, p, [0.75])[0] == pytest.approx(1 / 8 - 1 / 8 * 3)


def test_treat_all_crosses_zero_at_the_prevalence():
    rng = np.random.default_rng(2)
    y = (rng.random(400) < 0.3).astype(int)
    table = decision_curve(y, {"model": rng.random(400)}, DEFAULT_THRESHOLDS)
    prevalence = y.mean()
    above = table["threshold"] < prevalence
    assert (table.loc[above, "treat_all"] > 0).all() and (table.loc[~above, "treat_all"] <= 0).all()
    assert (table["treat_none"] == 0).all()
    assert list(table.columns) == ["threshold", "treat_all", "treat_none", "model"]
    # at pt -> 0 treat all's net benefit tends to the prevalence
    assert net_benefit(y, np.ones(400), [1e-9])[0] == pytest.approx(prevalence)


def test_a_perfect_model_gains_the_prevalence_at_every_threshold():
    y = np.array([0, 1, 0, 1, 1])
    nb = net_benefit(y, y.astype(float), DEFAULT_THRESHOLDS)
    assert np.allclose(nb, y.mean())


@pytest.mark.parametrize("thresholds", [[0.0, 0.5], [0.5, 1.0], [-0.1]])
def test_thresholds_outside_the_open_unit_interval_are_refused(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        net_benefit([0, 1], [0.2, 0.8], thresholds)


def test_slope_of_very_extreme_probabilities_matches_statsmodels():
    """Logits spanning ±10 and more: the fit still converges, to statsmodels' estimate."""
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 200)
    p = _sigmoid(6 * ((2 * y - 1) * 0.4 + rng.normal(0, 1, 200)))
    want = sm.GLM(y, sm.add_constant(logit(p)), family=sm.families.Binomial()).fit().params[1]
    assert calibration_slopes(y, p)[0] == pytest.approx(want, rel=1e-6)
    counts = bootstrap_resample_counts(200, 200, np.random.default_rng(0))
    assert np.isfinite(calibration_slopes(y, p, counts)).all()
