"""Clinical fusion: the ensemble's logit and clinical covariates, on LOCO folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from bids_stroke.stats.fusion import (
    EPS,
    MODEL_NAMES,
    LogisticFusion,
    fit_final_fusion,
    inner_ensemble_probability,
    loco_clinical,
    loco_clinical_fusion,
    loco_logistic,
    loco_volume_clinical,
    logit_clipped,
)

SITES = tuple("ABCD")


def _cohort(n=240, seed=0):
    """A simulated cohort: outcome from lesion volume and NIHSS, with the CNN's probabilities.

    ``inner`` holds, per fold, the inner held-out probability of every participant (NaN for
    the fold's own site, which its variants never see, and for about a fifth of the others,
    held out for validation by no variant).
    """
    rng = np.random.default_rng(seed)
    folds = rng.choice(SITES, n)
    log_volume = rng.normal(2.5, 1.2, n)
    nihss = rng.integers(0, 25, n).astype(float)
    age = rng.normal(70, 10, n)
    eta = -5.0 + 1.2 * log_volume + 0.2 * nihss
    outcome = (rng.random(n) < expit(eta)).astype(int)
    ensemble = expit(0.8 * (log_volume - 2.5) + rng.normal(0, 0.7, n))
    inner = {}
    for fold in SITES:
        p = expit(0.8 * (log_volume - 2.5) + rng.normal(0, 0.7, n))
        p[(folds == fold) | (rng.random(n) < 0.2)] = np.nan
        inner[fold] = p
    return {"folds": folds, "volume": np.exp(log_volume), "nihss": nihss, "age": age,
            "outcome": outcome, "ensemble": ensemble, "inner": inner}


def _fusion(c, **params):
    covariates = np.column_stack([c["age"], c["nihss"]])
    return loco_clinical_fusion(c["ensemble"], c["inner"], covariates, c["outcome"], c["folds"],
                                covariate_names=("age", "nihss"), **params)


# -- inner held-out probabilities --------------------------------------------------------


def test_logit_clipped_clips_and_keeps_nan():
    out = logit_clipped([0.0, 0.25, 0.5, 1.0, np.nan])
    assert out[1] == pytest.approx(np.log(1 / 3))
    assert out[2] == 0.0
    assert out[0] == pytest.approx(np.log(EPS / (1 - EPS)))
    assert out[3] == pytest.approx(-out[0])
    assert np.isnan(out[4])
    assert expit(logit_clipped(np.array([0.1, 0.9]))) == pytest.approx([0.1, 0.9])


def test_inner_probability_is_the_mean_over_the_variants_that_held_out():
    jobs = [
        (np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3])),
        (np.array([2, 3]), np.array([0.5, 0.7])),
        ([3, 1], [0.9, 0.4]),  # lists, unsorted
    ]
    out = inner_ensemble_probability(6, jobs)
    np.testing.assert_allclose(out[:4], [0.1, 0.3, 0.4, 0.8])
    assert np.isnan(out[4:]).all()  # held out by no variant
    assert np.isnan(inner_ensemble_probability(3, [])).all()
    # validation indices as a JSON round trip gives them (int64) with an empty job
    assert inner_ensemble_probability(2, [(np.array([], dtype=np.int64), np.array([])),
                                          (np.array([1]), np.array([1.0]))])[1] == 1.0


@pytest.mark.parametrize(
    ("jobs", "match"),
    [
        ([([0, 5], [0.1, 0.2])], r"must lie in \[0, 5\)"),
        ([([-1], [0.1])], r"must lie in \[0, 5\)"),
        ([([0.5], [0.1])], "integer validation indices"),
        ([([0, 1], [0.1])], "one length"),
        ([([0, 0], [0.1, 0.2])], "must not repeat"),
        ([([0, 1], [0.1, 1.2])], r"finite and lie in \[0, 1\]"),
        ([([0, 1], [0.1, np.nan])], r"finite and lie in \[0, 1\]"),
    ],
)
def test_inner_probability_rejects_bad_jobs(jobs, match):
    with pytest.raises(ValueError, match=match):
        inner_ensemble_probability(5, jobs)
    with pytest.raises(ValueError, match="non-negative integer"):
        inner_ensemble_probability(-1, [])


# -- LogisticFusion ----------------------------------------------------------------------


def _features(seed=1, n=200):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(0, 2, n), rng.normal(70, 10, n), rng.integers(0, 25, n)])
    y = (rng.random(n) < expit(-8 + 1.5 * x[:, 0] + 0.08 * x[:, 1] + 0.2 * x[:, 2])).astype(int)
    return x, y


def test_coefficients_are_sklearn_on_standardised_features_in_feature_units():
    x, y = _features()
    model = LogisticFusion(C=0.3).fit(x, y)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    np.testing.assert_allclose(model.mean_, mean)
    np.testing.assert_allclose(model.scale_, scale)
    ref = LogisticRegression(C=0.3, max_iter=1000, tol=1e-8).fit((x - mean) / scale, y)
    np.testing.assert_allclose(model.coef_, ref.coef_[0] / scale, rtol=1e-6)
    np.testing.assert_allclose(model.decision_function(x), ref.decision_function((x - mean) / scale),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.predict_proba(x), ref.predict_proba((x - mean) / scale), atol=1e-9)
    assert model.coef_.shape == (3,) and isinstance(model.intercept_, float)
    # per unit: age in decades gives a coefficient ten times larger and the same predictions
    decades = x * [1, 0.1, 1]
    other = LogisticFusion(C=0.3).fit(decades, y)
    assert other.coef_[1] == pytest.approx(10 * model.coef_[1], rel=1e-5)
    np.testing.assert_allclose(other.decision_function(decades), model.decision_function(x), rtol=1e-5, atol=1e-7)


def test_unpenalised_fit_matches_unpenalised_sklearn_and_statsmodels():
    x, y = _features(seed=2)
    model = LogisticFusion(C=np.inf).fit(x, y)
    ref = LogisticRegression(C=np.inf, max_iter=100_000, tol=1e-12).fit(x, y)
    np.testing.assert_allclose(model.decision_function(x), ref.decision_function(x), rtol=0, atol=1e-6)
    logit = sm.Logit(y, sm.add_constant(x)).fit(disp=0, method="newton", tol=1e-14)
    np.testing.assert_allclose(model.decision_function(x), sm.add_constant(x) @ logit.params, rtol=0, atol=1e-6)


def test_constant_feature_gets_scale_one():
    x, y = _features()
    x[:, 2] = 5.0
    model = LogisticFusion().fit(x, y)
    assert model.scale_[2] == 1.0 and model.mean_[2] == 5.0
    assert model.coef_[2] == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("C", [0.5, np.inf])
def test_dict_round_trip_gives_the_same_decision_function(C):
    x, y = _features()
    model = LogisticFusion(C=C, feature_names=("ensemble_logit", "age", "nihss")).fit(x, y)
    d = model.to_dict()
    assert d["feature_names"] == ["ensemble_logit", "age", "nihss"]
    assert set(d) == {"feature_names", "coef", "intercept", "mean", "scale", "C"}
    text = json.dumps({**d, "columns": ["age", "nihss"], "n_fit": 200}, allow_nan=False)  # strict JSON
    restored = LogisticFusion.from_dict(json.loads(text))  # extra manifest keys are ignored
    np.testing.assert_array_equal(restored.decision_function(x), model.decision_function(x))
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    np.testing.assert_array_equal(restored.mean_, model.mean_)
    assert restored.C == C and restored.feature_names == ("ensemble_logit", "age", "nihss")
    assert restored.n_features_in_ == 3
    assert LogisticFusion().fit(x, y).to_dict()["feature_names"] == ["x0", "x1", "x2"]
    with pytest.raises(ValueError, match="one coefficient per feature name"):
        LogisticFusion.from_dict({**d, "coef": d["coef"][:2]})
    with pytest.raises(ValueError, match="must have the keys"):
        LogisticFusion.from_dict({"coef": [1.0]})


def test_estimator_contract():
    x, y = _features()
    model = LogisticFusion(C=0.5, feature_names=("a", "b", "c"))
    assert clone(model).get_params()["C"] == 0.5
    with pytest.raises(NotFittedError):
        model.predict(x)
    model.fit(x, y)
    p = model.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(x), (p[:, 1] >= 0.5).astype(int))
    np.testing.assert_array_equal(model.classes_, [0, 1])
    with pytest.raises(ValueError, match="both outcome classes"):
        LogisticFusion().fit(x, np.ones(len(y), dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        LogisticFusion().fit(np.where(np.arange(len(y))[:, None] == 3, np.nan, x), y)
    with pytest.raises(ValueError, match="'feature_names' must name each of the 3"):
        LogisticFusion(feature_names=("a",)).fit(x, y)
    with pytest.raises(ValueError, match="features"):
        model.decision_function(x[:, :2])


# -- LOCO: the held-out site never moves its fold's model --------------------------------


@pytest.mark.parametrize("fold", SITES)
def test_held_out_site_never_moves_its_fold_coefficients(fold):
    c = _cohort()
    before = _fusion(c)
    held = c["folds"] == fold
    rng = np.random.default_rng(42)
    s = {**c, "inner": {k: v.copy() for k, v in c["inner"].items()}}
    s["age"] = np.where(held, rng.normal(40, 30, held.size), c["age"])
    s["nihss"] = np.where(held, rng.integers(0, 40, held.size), c["nihss"])
    s["ensemble"] = np.where(held, rng.random(held.size), c["ensemble"])
    s["outcome"] = np.where(held, rng.integers(0, 2, held.size), c["outcome"])
    for k in SITES:  # including the fold's own entry, whose held-out rows are NaN in real data
        s["inner"][k][held] = rng.random(held.sum())
    after = _fusion(s)
    np.testing.assert_array_equal(after.fold_models[fold].coef_, before.fold_models[fold].coef_)
    assert after.fold_models[fold].intercept_ == before.fold_models[fold].intercept_
    assert after.n_fit[fold] == before.n_fit[fold]
    assert not np.allclose(after.probability[held], before.probability[held])  # predictions do change
    # the other folds, which train on this site, do move
    for other in set(SITES) - {fold}:
        assert not np.array_equal(after.fold_models[other].coef_, before.fold_models[other].coef_)


def test_folds_train_on_their_inner_and_predict_from_the_out_of_center_probability():
    c = _cohort()
    before = _fusion(c)
    held = c["folds"] == "A"
    # the out-of-center probabilities of the training sites do not enter fold A's fit ...
    moved = {**c, "ensemble": np.where(held, c["ensemble"], 1 - c["ensemble"])}
    np.testing.assert_array_equal(_fusion(moved).fold_models["A"].coef_, before.fold_models["A"].coef_)
    # ... fold A's inner probabilities of the training sites do
    inner = {**c["inner"], "A": np.where(held, np.nan, 1 - c["inner"]["A"])}
    assert not np.allclose(_fusion({**c, "inner": inner}).fold_models["A"].coef_, before.fold_models["A"].coef_)
    # the held-out site is predicted from its out-of-center ensemble probability
    model = before.fold_models["A"]
    x = np.column_stack([logit_clipped(c["ensemble"]), c["age"], c["nihss"]])[held]
    np.testing.assert_allclose(before.probability[held], model.predict_proba(x)[:, 1])
    assert before.feature_names == ("ensemble_logit", "age", "nihss")
    assert model.to_dict()["feature_names"] == ["ensemble_logit", "age", "nihss"]
    # fitted on the other sites' participants with an inner probability of fold A
    assert before.n_fit["A"] == int((~held & np.isfinite(c["inner"]["A"])).sum())
    assert np.isfinite(before.probability).all()
    assert before.fold_models["A"].coef_[0] > 0 and before.fold_models["A"].coef_[2] > 0


def test_generic_loco_uses_shared_or_per_fold_training_features():
    c = _cohort()
    x = np.column_stack([np.log1p(c["volume"]), c["nihss"]])
    shared = loco_logistic(x, x, c["outcome"], c["folds"], feature_names=("v", "n"), C=0.7)
    per_fold = loco_logistic({f: x for f in SITES}, x, c["outcome"], c["folds"], feature_names=("v", "n"), C=0.7)
    np.testing.assert_array_equal(shared.probability, per_fold.probability)
    for fold in SITES:
        rows = c["folds"] != fold
        ref = LogisticFusion(C=0.7).fit(x[rows], c["outcome"][rows])
        np.testing.assert_allclose(shared.fold_models[fold].coef_, ref.coef_)
        assert shared.fold_models[fold].C == 0.7  # params reach the models
        assert shared.n_fit[fold] == rows.sum()


# -- volume + clinical -------------------------------------------------------------------


def test_volume_clinical_uses_the_covariate():
    c = _cohort(n=400, seed=3)
    both = loco_volume_clinical(c["volume"], c["nihss"], c["outcome"], c["folds"], covariate_names=["nihss"])
    volume_only = loco_logistic(np.log1p(c["volume"]), np.log1p(c["volume"]), c["outcome"], c["folds"],
                                feature_names=("log1p_lesion_volume_ml",))
    assert both.feature_names == ("log1p_lesion_volume_ml", "nihss")
    auc_both = roc_auc_score(c["outcome"], both.probability)
    auc_volume = roc_auc_score(c["outcome"], volume_only.probability)
    assert auc_both > auc_volume + 0.03
    assert all(model.coef_[1] > 0 for model in both.fold_models.values())
    # the feature is log1p(volume): the same as a generic LOCO fit on it
    x = np.column_stack([np.log1p(c["volume"]), c["nihss"]])
    ref = loco_logistic(x, x, c["outcome"], c["folds"], feature_names=("a", "b"))
    np.testing.assert_array_equal(both.probability, ref.probability)


# -- missing values ----------------------------------------------------------------------


def test_missing_covariates_get_no_probability_and_no_fit():
    c = _cohort()
    rng = np.random.default_rng(5)
    missing = rng.random(c["outcome"].size) < 0.15
    c["nihss"] = np.where(missing, np.nan, c["nihss"])
    ensemble_missing = np.zeros(missing.size, dtype=bool)
    ensemble_missing[np.flatnonzero(~missing)[:3]] = True
    c["ensemble"] = np.where(ensemble_missing, np.nan, c["ensemble"])
    fusion = _fusion(c)
    np.testing.assert_array_equal(np.isnan(fusion.probability), missing | ensemble_missing)
    volume = loco_volume_clinical(c["volume"], np.column_stack([c["age"], c["nihss"]]), c["outcome"], c["folds"],
                                  covariate_names=("age", "nihss"))
    np.testing.assert_array_equal(np.isnan(volume.probability), missing)
    for fold in SITES:
        train = c["folds"] != fold
        assert fusion.n_fit[fold] == int((train & ~missing & np.isfinite(c["inner"][fold])).sum())
        assert volume.n_fit[fold] == int((train & ~missing).sum())
    # the outcomes of participants without a covariate do not enter any fit
    flipped = {**c, "outcome": np.where(missing, 1 - c["outcome"], c["outcome"])}
    again = _fusion(flipped)
    for fold in SITES:
        np.testing.assert_array_equal(again.fold_models[fold].coef_, fusion.fold_models[fold].coef_)


def test_final_fusion_fits_every_participant_with_an_inner_probability_and_covariates():
    c = _cohort()
    inner = c["inner"]["A"].copy()  # NaN for some participants (held out by no variant)
    covariates = np.column_stack([c["age"], c["nihss"]])
    covariates[:7, 1] = np.nan
    model = fit_final_fusion(inner, covariates, c["outcome"], covariate_names=["age", "nihss"], C=0.5)
    rows = np.isfinite(inner) & np.isfinite(covariates).all(axis=1)
    x = np.column_stack([logit_clipped(inner), covariates])[rows]
    ref = LogisticFusion(C=0.5).fit(x, c["outcome"][rows])
    np.testing.assert_array_equal(model.coef_, ref.coef_)
    assert model.to_dict()["feature_names"] == ["ensemble_logit", "age", "nihss"]
    with pytest.raises(ValueError, match="both classes"):
        fit_final_fusion(inner, covariates, np.zeros_like(c["outcome"]), covariate_names=["age", "nihss"])
    with pytest.raises(ValueError, match="at least 5 participants"):
        fit_final_fusion(np.where((np.arange(inner.size) >= 10) & (np.arange(inner.size) < 14), 0.5, np.nan), covariates, c["outcome"],
                         covariate_names=["age", "nihss"])


# -- errors ------------------------------------------------------------------------------


def test_errors():
    c = _cohort(n=80)
    covariates = np.column_stack([c["age"], c["nihss"]])
    # a fold whose training participants all have one outcome
    outcome = np.where(c["folds"] == "A", 1, 0)
    with pytest.raises(ValueError, match="both classes among the training participants of fold 'A'"):
        loco_volume_clinical(c["volume"], covariates, outcome, c["folds"], covariate_names=("age", "nihss"))
    # a fold missing from inner_probability
    inner = {k: v for k, v in c["inner"].items() if k != "C"}
    with pytest.raises(ValueError, match=r"'inner_probability' must have a key for every fold.*'C'"):
        loco_clinical_fusion(c["ensemble"], inner, covariates, c["outcome"], c["folds"],
                             covariate_names=("age", "nihss"))
    with pytest.raises(ValueError, match="'train_features' must have a key for every fold"):
        loco_logistic({"A": covariates}, covariates, c["outcome"], c["folds"], feature_names=("a", "n"))
    # shape mismatches
    with pytest.raises(ValueError, match="'covariates' must have shape"):
        loco_volume_clinical(c["volume"], covariates[:-1], c["outcome"], c["folds"], covariate_names=("a", "n"))
    with pytest.raises(ValueError, match="'covariate_names' must name each of the 2"):
        loco_volume_clinical(c["volume"], covariates, c["outcome"], c["folds"], covariate_names=("age",))
    with pytest.raises(ValueError, match="'volume_ml' must have shape"):
        loco_volume_clinical(c["volume"][:-1], covariates, c["outcome"], c["folds"], covariate_names=("a", "n"))
    with pytest.raises(ValueError, match="'folds' must be 1-D arrays of one length"):
        loco_logistic(covariates, covariates, c["outcome"], c["folds"][:-1], feature_names=("a", "n"))
    with pytest.raises(ValueError, match="'ensemble_probability' must have shape"):
        loco_clinical_fusion(c["ensemble"][:-1], c["inner"], covariates, c["outcome"], c["folds"],
                             covariate_names=("age", "nihss"))
    bad_inner = {**c["inner"], "B": c["inner"]["B"][:-1]}
    with pytest.raises(ValueError, match=r"'inner_probability\['B'\]' must have shape"):
        loco_clinical_fusion(c["ensemble"], bad_inner, covariates, c["outcome"], c["folds"],
                             covariate_names=("age", "nihss"))
    with pytest.raises(ValueError, match="'train_features' of fold '[ABCD]' must have 2 columns"):
        loco_logistic({f: covariates[:, :1] for f in SITES}, covariates, c["outcome"], c["folds"],
                      feature_names=("a", "n"))
    # values out of range
    with pytest.raises(ValueError, match=r"'ensemble_probability' must lie in \[0, 1\]"):
        loco_clinical_fusion(c["ensemble"] + 1, c["inner"], covariates, c["outcome"], c["folds"],
                             covariate_names=("age", "nihss"))
    with pytest.raises(ValueError, match="'volume_ml' must be non-negative"):
        loco_volume_clinical(-c["volume"], covariates, c["outcome"], c["folds"], covariate_names=("a", "n"))
    # too few training rows with every feature
    sparse = np.where(np.arange(80)[:, None] < 3, covariates, np.nan)  # three participants with covariates
    with pytest.raises(ValueError, match=r"Fold '[ABCD]' must have at least 4 training participants.*Got [0-3]"):
        loco_logistic(sparse, sparse, c["outcome"], c["folds"], feature_names=("a", "n"))


def test_clinical_baseline_fits_the_covariates_alone_out_of_center():
    """lr_clinical: NIHSS (which drives the outcome) predicts out of center; the held-out
    site's covariates never move its fold's coefficients."""
    c = _cohort(n=400, seed=3)
    x = np.column_stack([c["age"], c["nihss"]])
    fit = loco_clinical(x, c["outcome"], c["folds"], covariate_names=["age", "nihss"])
    assert fit.feature_names == ("age", "nihss") and "lr_clinical" in MODEL_NAMES
    assert roc_auc_score(c["outcome"], fit.probability) > 0.65
    assert all(model.coef_[1] > 0 for model in fit.fold_models.values())
    scrambled = x.copy()
    held = c["folds"] == "A"
    scrambled[held] = np.random.default_rng(1).permutation(scrambled[held])
    again = loco_clinical(scrambled, c["outcome"], c["folds"], covariate_names=["age", "nihss"])
    np.testing.assert_array_equal(again.fold_models["A"].coef_, fit.fold_models["A"].coef_)
    assert not np.allclose(again.probability[held], fit.probability[held])
