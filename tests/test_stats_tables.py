"""The group statistics tables and their data dictionaries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from bids_stroke.bids.naming import derivative_path
from bids_stroke.errors import BadInputError
from bids_stroke.stats import add_loco_baselines, write_group_statistics

VARIANTS = ["f8-g1.5", "f16-g2-bn"]


@pytest.fixture
def group_inputs():
    rng = np.random.default_rng(3)
    n = 150
    sites = rng.choice(["A", "B", "C"], n)
    y = rng.integers(0, 2, n)
    pred = pd.DataFrame({"participant_id": [f"sub-{i:03d}" for i in range(n)], "site": sites,
                         "fold": sites, "outcome": y})
    for v in VARIANTS:
        pred[v] = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(0, 1.5, n))))
    pred["ensemble"] = pred[VARIANTS].mean(axis=1)
    parts = pd.DataFrame({"participant_id": pred["participant_id"],
                          "lesion_volume_ml": np.exp(rng.normal(2 + y, 1.0)),
                          "aspects": np.clip(np.round(9 - 2 * y + rng.normal(0, 1.2, n)), 0, 10),
                          "age": rng.normal(70, 10, n), "sex": rng.choice(["F", "M"], n),
                          "site": "ignored"})
    pred, fitted = add_loco_baselines(pred, parts)
    return pred, parts, fitted


def _read(path):
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def test_writes_four_tables_with_dictionaries(tmp_path, group_inputs):
    pred, parts, fitted = group_inputs
    paths = write_group_statistics(tmp_path, pred, parts, baselines=fitted, n_bootstrap=500, seed=1)
    for desc, suffix, key in [("loco", "metrics", "metrics"), ("comparisons", "stats", "comparisons"),
                              ("cohort", "table", "cohort"), ("decision", "curve", "decision")]:
        assert paths[key] == derivative_path(tmp_path, None, datatype="group", desc=desc, suffix=suffix,
                                             extension=".tsv")
        table = _read(paths[key])
        dictionary = json.loads(paths[f"{key}_json"].read_text())
        assert list(dictionary) == list(table.columns)
        assert all("Description" in entry for entry in dictionary.values())
    assert sorted(p.name for p in (tmp_path / "group").iterdir()) == sorted(p.name for p in paths.values())

    metrics = _read(paths["metrics"]).set_index("model")
    models = [*VARIANTS, "ensemble", "lr_volume", "lr_aspects"]
    assert list(metrics.index) == models
    for model in models:
        assert metrics.loc[model, "auc"] == pytest.approx(roc_auc_score(pred["outcome"], pred[model]))
        assert metrics.loc[model, "auc_ci_low"] < metrics.loc[model, "auc"] < metrics.loc[model, "auc_ci_high"]
        sens = np.mean(pred.loc[pred.outcome == 1, model] >= 0.5)
        assert metrics.loc[model, "sensitivity"] == pytest.approx(sens)
    assert (metrics["threshold"] == 0.5).all() and (metrics["n_bootstrap"] == 500).all()
    for model in models:
        assert metrics.loc[model, "brier"] == pytest.approx(brier_score_loss(pred["outcome"], pred[model]))
        for name in ("brier", "calibration_intercept", "calibration_slope"):
            assert metrics.loc[model, f"{name}_ci_low"] <= metrics.loc[model, name] <= metrics.loc[model, f"{name}_ci_high"]
    units = json.loads(paths["metrics_json"].read_text())
    assert units["calibration_slope"]["Units"] != units["auc"]["Units"]

    # the decision curve: every model on the participants with all probabilities
    decision = _read(paths["decision"])
    assert list(decision.columns) == ["threshold", "treat_all", "treat_none", *models]
    complete = pred.dropna(subset=models)
    assert decision["threshold"].tolist() == pytest.approx(np.arange(5, 96) / 100)
    row = decision[np.isclose(decision["threshold"], 0.3)].iloc[0]
    treated = complete["ensemble"] >= 0.3
    tp = (treated & (complete["outcome"] == 1)).sum()
    fp = (treated & (complete["outcome"] == 0)).sum()
    assert row["ensemble"] == pytest.approx(tp / len(complete) - fp / len(complete) * 0.3 / 0.7)
    assert f"on the {len(complete)} participants" in json.loads(paths["decision_json"].read_text())["ensemble"][
        "Description"]

    comparisons = _read(paths["comparisons"]).set_index("model")
    assert list(comparisons.index) == [*VARIANTS, "lr_volume", "lr_aspects"]
    assert comparisons.loc["lr_volume", "cutoff_units"] == "mL"
    assert comparisons.loc["lr_aspects", "cutoff_direction"] == "less"
    assert np.isnan(comparisons.loc["f8-g1.5", "cutoff"])

    cohort = _read(paths["cohort"])
    assert {"age", "lesion_volume_ml", "aspects", "sex", "outcome"} <= set(cohort["characteristic"])
    assert {"site_A", "site_B", "site_C"} <= set(cohort.columns)


def test_seeded_output_is_reproducible(tmp_path, group_inputs):
    pred, parts, _ = group_inputs
    a = write_group_statistics(tmp_path / "a", pred, parts, n_bootstrap=200, seed=4)
    b = write_group_statistics(tmp_path / "b", pred, parts, n_bootstrap=200, seed=4)
    assert a["metrics"].read_bytes() == b["metrics"].read_bytes()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t: t.drop(columns="fold"), "must have the columns \\['fold'\\]"),
        (lambda t: t.assign(outcome=t["outcome"].replace({1: 3})), "'outcome' must be 0 \\(good\\) or 1"),
        (lambda t: t.assign(ensemble=t["ensemble"] * 2), "Probabilities of model 'ensemble' must lie in"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "one row per participant"),
        (lambda t: t.assign(outcome=0), "must contain both good"),
    ],
)
def test_unusable_predictions_are_refused_before_writing(tmp_path, group_inputs, change, match):
    pred, parts, _ = group_inputs
    with pytest.raises(BadInputError, match=match):
        write_group_statistics(tmp_path, change(pred), parts, n_bootstrap=10)
    assert not (tmp_path / "group").exists()


def test_reference_model_must_exist(tmp_path, group_inputs):
    pred, parts, _ = group_inputs
    with pytest.raises(BadInputError, match="'reference_model' must be one of"):
        write_group_statistics(tmp_path, pred, parts, reference_model="best", n_bootstrap=10)


def test_decision_curve_uses_the_participants_with_every_probability(tmp_path, group_inputs):
    pred, parts, fitted = group_inputs
    pred = pred.copy()
    pred.loc[:9, "lr_aspects"] = np.nan  # ten participants without ASPECTS
    paths = write_group_statistics(tmp_path, pred, parts, baselines=fitted, n_bootstrap=0)
    decision = _read(paths["decision"])
    complete = pred.iloc[10:]
    y = complete["outcome"]
    row = decision[np.isclose(decision["threshold"], 0.5)].iloc[0]
    assert row["treat_all"] == pytest.approx(y.mean() - (1 - y.mean()))
    treated = complete["lr_volume"] >= 0.5
    assert row["lr_volume"] == pytest.approx(((treated & (y == 1)).sum() - (treated & (y == 0)).sum()) / len(y))
    assert "on the 140 participants" in json.loads(paths["decision_json"].read_text())["treat_all"]["Description"]
