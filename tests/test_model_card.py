"""The model card: built from the group tables, rendered as Markdown, kept in the manifest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bids_stroke.model.spec import MANIFEST, MODEL_CARD
from bids_stroke.report.model_card import (
    CARD_METRICS,
    build_model_card,
    card_summary,
    is_simulated,
    model_card_markdown,
    write_model_card,
)
from bids_stroke.stats import add_loco_baselines, write_group_statistics

VARIANTS = ["f8-g1.5", "f16-g2-bn"]

MANIFEST_FIELDS = {
    "format_version": 1, "input_shape": [96, 96, 24, 1], "threshold": 0.5, "seed": 7,
    "variants": [{"name": v} for v in VARIANTS],
    "extra": {"max_epochs": 30, "patience": 10, "train_precision": "float32", "size_branch": "none",
              "protocol": {"name": "reduced", "deviations": ["2 of 8 variants", "at most 30 epochs instead of 150"]}},
}


def _read(path):
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """A cohort whose ensemble is over-confident, with the group tables written for it."""
    rng = np.random.default_rng(8)
    n = 200
    sites = rng.choice(["A", "B", "C"], n)
    y = rng.integers(0, 2, n)
    pred = pd.DataFrame({"participant_id": [f"sub-{i:03d}" for i in range(n)], "site": sites, "fold": sites,
                         "outcome": y})
    for v in VARIANTS:
        pred[v] = 1 / (1 + np.exp(-6 * ((2 * y - 1) * 0.4 + rng.normal(0, 1, n))))  # too extreme
    pred["ensemble"] = pred[VARIANTS].mean(axis=1)
    cohort = pd.DataFrame({"participant_id": pred["participant_id"], "site": sites, "outcome": y,
                           "lesion_volume_ml": np.exp(rng.normal(2 + y, 1.0)), "age": rng.normal(70, 10, n),
                           "nihss": rng.integers(0, 25, n).astype(float),
                           "lesion_source": np.where(np.arange(n) < 12, "auto", "given")})
    pred, fitted = add_loco_baselines(pred, cohort.set_index("participant_id")[["lesion_volume_ml"]])
    out = tmp_path_factory.mktemp("card")
    paths = write_group_statistics(out, pred, cohort.drop(columns=["site", "outcome"]), baselines=fitted,
                                   n_bootstrap=300, seed=2)
    return _read(paths["metrics"]), _read(paths["comparisons"]), cohort, out


def _card(tables, **kwargs):
    metrics, comparisons, cohort, _ = tables
    options = {"outcome_column": "mrs", "poor_threshold": 3, "clinical_columns": ["age", "nihss"],
               "software": {"bids-stroke": "0.1.0"}, "space": "MNI152NLin2009cAsym"}
    return build_model_card(MANIFEST_FIELDS, metrics, comparisons, cohort, **{**options, **kwargs})


def test_card_numbers_are_the_group_tables_numbers(tables):
    metrics, comparisons, cohort, _ = tables
    card = _card(tables)
    assert [row["model"] for row in card["performance"]] == ["ensemble", "lr_volume"]
    by_model = metrics.set_index("model")
    for row in card["performance"]:
        for name in CARD_METRICS:
            for key in (name, f"{name}_ci_low", f"{name}_ci_high"):
                assert row[key] == by_model.loc[row["model"], key], (row["model"], key)
    versus = comparisons.set_index("model").loc["lr_volume"]
    (entry,) = card["comparisons"]
    assert (entry["model"], entry["auc_difference"], entry["delong_p"]) == (
        "lr_volume", versus["auc_difference"], versus["delong_p"])
    cohort_facts = card["training_cohort"]
    assert (cohort_facts["n"], cohort_facts["n_poor"]) == (len(cohort), int(cohort["outcome"].sum()))
    assert cohort_facts["sites"] == cohort["site"].value_counts().sort_index().to_dict()
    assert cohort_facts["nihss"]["median"] == pytest.approx(cohort["nihss"].median())
    assert cohort_facts["lesion_masks"] == {"auto": 12, "given": len(cohort) - 12}
    json.dumps(card)  # JSON-ready


def test_limitations_follow_the_evidence(tables):
    card = _card(tables, simulated=True)
    text = " ".join(card["limitations"])
    assert "simulated" in text and "12 of 200 lesion masks" in text
    assert "too extreme" in text  # the variants were made over-confident
    assert "at most 30 epochs instead of 150" in text
    acquired = " ".join(_card(tables, simulated=False)["limitations"])
    assert "simulated" not in acquired


def test_summary_markdown_and_manifest(tables, tmp_path):
    card = _card(tables)
    ensemble = card["performance"][0]
    assert f"AUC {ensemble['auc']:.2f} [" in card["summary"] and "200 participants from 3 sites" in card["summary"]
    markdown = model_card_markdown(card)
    assert card["summary"] in markdown and "## Limitations" in markdown and "| lr_volume |" in markdown
    (tmp_path / MANIFEST).write_text(json.dumps(MANIFEST_FIELDS))
    md, manifest = write_model_card(tmp_path, card)
    assert md == tmp_path / MODEL_CARD and md.read_text() == markdown
    saved = json.loads(manifest.read_text())
    assert saved["model_card"] == json.loads(json.dumps(card)) and saved["variants"] == MANIFEST_FIELDS["variants"]
    assert card_summary(saved) == card["summary"] and card_summary(MANIFEST_FIELDS) is None


def test_skipped_clinical_models_keep_their_note(tables):
    card = _card(tables, clinical_columns=[], clinical_note="participants.tsv has no column nihss")
    assert card["clinical_models"] == {"columns": [], "note": "participants.tsv has no column nihss"}
    assert "participants.tsv has no column nihss" in model_card_markdown(card)


def test_simulated_datasets_are_recognised():
    assert is_simulated({"GeneratedBy": [{"Name": "bids-stroke-simulate"}]})
    assert not is_simulated({"GeneratedBy": [{"Name": "dcm2niix"}]}) and not is_simulated({})
