"""Univariate logistic-regression baselines on LOCO folds."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bids_stroke.stats.baselines import (
    UnivariateLogisticBaseline,
    add_loco_baselines,
    loco_baseline,
)


def _cohort(n=240, seed=0):
    rng = np.random.default_rng(seed)
    sites = rng.choice(list("ABCD"), n)
    y = rng.integers(0, 2, n)
    volume = np.exp(rng.normal(2.0 + 1.2 * y, 1.0))  # mL, larger when poor
    aspects = np.clip(np.round(9 - 2 * y + rng.normal(0, 1.2, n)), 0, 10)  # lower when poor
    predictions = pd.DataFrame({"participant_id": [f"sub-{i:03d}" for i in range(n)], "site": sites,
                                "fold": sites, "outcome": y, "ensemble": rng.random(n)})
    participants = pd.DataFrame({"lesion_volume_ml": volume, "aspects": aspects},
                                index=pd.Index(predictions["participant_id"], name="participant_id"))
    return predictions, participants


def test_unpenalised_fit_equals_statsmodels_logit():
    _, parts = _cohort()
    pred, _ = _cohort()
    x, y = parts["lesion_volume_ml"].to_numpy(), pred["outcome"].to_numpy()
    model = UnivariateLogisticBaseline(C=np.inf).fit(x[:, None], y)
    ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    assert model.intercept_ == pytest.approx(ref.params[0], rel=1e-3)
    assert model.coef_ == pytest.approx(ref.params[1], rel=1e-3)
    assert model.predict_proba(x[:5, None])[:, 1] == pytest.approx(ref.predict(sm.add_constant(x))[:5], rel=1e-3)


@pytest.mark.parametrize(("column", "direction"), [("lesion_volume_ml", "greater"), ("aspects", "less")])
def test_cutoff_is_in_feature_units_and_gives_the_probability(column, direction):
    pred, parts = _cohort()
    x = parts[column].to_numpy()
    model = UnivariateLogisticBaseline().fit(x[:, None], pred["outcome"])
    assert model.direction_ == direction
    for p in (0.3, 0.5, 0.8):
        cut = model.cutoff(p)
        assert model.predict_proba([[cut]])[0, 1] == pytest.approx(p)
        # on the poor side of the cut-off the model predicts poor at that threshold
        step = 1e-3 if direction == "greater" else -1e-3
        assert model.predict_proba([[cut + step]])[0, 1] > p
    assert x.min() < model.cutoff(0.5) < x.max()


def test_estimator_contract():
    model = UnivariateLogisticBaseline(C=0.5)
    assert clone(model).get_params()["C"] == 0.5
    with pytest.raises(NotFittedError):
        model.predict([[1.0]])
    with pytest.raises(ValueError, match="exactly one feature"):
        model.fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="both outcome classes"):
        model.fit(np.arange(4.0)[:, None], [1, 1, 1, 1])


def test_out_of_center_predictions_do_not_see_their_own_site():
    pred, parts = _cohort()
    x = parts["lesion_volume_ml"].to_numpy().copy()
    y = pred["outcome"].to_numpy().copy()
    folds = pred["fold"].to_numpy()
    before = loco_baseline(x, y, folds).probability
    # scramble site A's outcomes and features: A's own predictions must not move
    held = folds == "A"
    rng = np.random.default_rng(9)
    y2, x2 = y.copy(), x.copy()
    y2[held] = rng.integers(0, 2, held.sum())
    x2[held] = x[held] * 0 + 1.0  # same feature for everyone in A
    after = loco_baseline(x2, y2, folds)
    model_a = after.fold_models["A"]
    assert model_a.predict_proba(x[held, None])[:, 1] == pytest.approx(before[held])
    assert not np.allclose(after.probability[~held], before[~held])  # other folds did train on A


def test_add_loco_baselines_handles_missing_values_and_columns(caplog):
    pred, parts = _cohort()
    parts.loc[parts.index[:7], "aspects"] = np.nan
    out, fitted = add_loco_baselines(pred, parts)
    assert {"lr_volume", "lr_aspects"} <= set(out.columns)
    assert out["lr_aspects"].isna().sum() == 7 and out["lr_volume"].notna().all()
    assert "lr_aspects" not in pred.columns  # the input is not modified
    cut = fitted["lr_volume"].cutoffs(0.5)
    per_fold = [fitted["lr_volume"].fold_models[f].cutoff(0.5) for f in "ABCD"]
    assert (cut["cutoff_fold_min"], cut["cutoff_fold_max"]) == (min(per_fold), max(per_fold))
    assert 0 < cut["cutoff"] < parts["lesion_volume_ml"].max() and cut["direction"] == "greater"
    assert fitted["lr_volume"].units == "mL" and fitted["lr_aspects"].units == "points"
    with caplog.at_level(logging.WARNING, logger="bids_stroke.stats"):
        out2, fitted2 = add_loco_baselines(pred, parts.drop(columns="aspects"))
    assert "lr_aspects" not in out2.columns and "lr_aspects" not in fitted2
    assert "aspects" in caplog.text


def test_fold_whose_training_set_has_one_class_is_refused():
    x = np.arange(6.0)
    with pytest.raises(ValueError, match="both classes among the training participants of fold 'B'"):
        loco_baseline(x, [0, 0, 1, 1, 0, 0], ["A", "A", "B", "B", "C", "C"])
