"""The model card of a trained ensemble: ``models/ensemble/model_card.md`` and the manifest's ``model_card``.

Written by the group level once its statistics tables exist, from those tables (so that
the card's numbers are the tables' numbers), the bundle's manifest and the training
cohort. It answers what a reader of a prognostic model asks first (in the spirit of the
TRIPOD+AI statement, Collins et al., BMJ 2024, and of model cards, Mitchell et al., FAT*
2019): what the model is for and not for, whom it was trained on, how it was built, how
well it predicts out of center (discrimination, classification and calibration, with
95 % CIs) against the simple baselines, and what limits it.

:func:`build_model_card` is a pure function (tables in, a JSON-ready dict out);
:func:`model_card_markdown` renders it; :func:`write_model_card` writes both files;
:func:`card_summary` gives the one line that ``participant --model`` prints and its
reports show.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bids_stroke.bids.writers import write_json, write_text
from bids_stroke.config import VARIANT_NAMES
from bids_stroke.model.spec import MANIFEST, MODEL_CARD

__all__ = ["CARD_METRICS", "build_model_card", "card_summary", "is_simulated", "model_card_markdown",
           "write_model_card"]

#: Metrics of ``desc-loco_metrics.tsv`` the card reports for each model, with their CIs.
CARD_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "brier", "calibration_intercept",
                "calibration_slope")

#: Columns of ``desc-comparisons_stats.tsv`` the card reports for each comparison.
CARD_COMPARISON = ("reference", "model", "n", "auc_reference", "auc_model", "auc_difference",
                   "auc_difference_ci_low", "auc_difference_ci_high", "delong_p")

INTENDED_USE = (
    "Research: estimating, from the acute (day-1) diffusion MRI of an ischaemic stroke patient, the "
    "probability of a poor functional outcome (modified Rankin Scale at or above the stated threshold), "
    "with attention maps of the regions the prediction came from; comparing cohorts and sites; a covariate "
    "or stratification variable in research studies.")

OUT_OF_SCOPE = (
    "Decisions about the care of an individual patient: the model is not a medical device and has not been "
    "validated prospectively.",
    "Haemorrhagic stroke, non-acute imaging (beyond the first days), paediatric patients and modalities "
    "other than diffusion MRI.",
    "Sites, scanners or populations unlike the training cohort without a local evaluation (run the group "
    "level on local data first).",
)


def is_simulated(description: Mapping) -> bool:
    """Whether a raw dataset's ``dataset_description.json`` says the simulator generated it."""
    from bids_stroke.simulate.dataset import GENERATOR

    generated = description.get("GeneratedBy") or []
    return any(isinstance(entry, Mapping) and entry.get("Name") == GENERATOR for entry in generated)


def _number(value: Any) -> float | int | None:
    """A JSON-ready number (None for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _summary_of(values: pd.Series) -> dict[str, Any]:
    v = pd.to_numeric(values, errors="coerce")
    known = v.dropna()
    if not len(known):
        return {"n_missing": int(v.isna().sum())}
    q1, median, q3 = np.percentile(known, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "min": float(known.min()),
            "max": float(known.max()), "n_missing": int(v.isna().sum())}


def _cohort_facts(cohort: pd.DataFrame, outcome_column: str, poor_threshold: int,
                  clinical_columns: Sequence[str]) -> dict[str, Any]:
    outcome = cohort["outcome"].astype(int)
    facts: dict[str, Any] = {
        "n": int(len(cohort)),
        "n_poor": int(outcome.sum()),
        "prevalence": float(outcome.mean()),
        "outcome": f"{outcome_column} >= {poor_threshold}",
        "sites": {str(site): int(n) for site, n in cohort["site"].astype(str).value_counts().sort_index().items()},
        "lesion_volume_ml": _summary_of(cohort["lesion_volume_ml"]),
    }
    for column in dict.fromkeys(("age", "nihss", *clinical_columns)):
        if column in cohort:
            facts[column] = _summary_of(cohort[column])
    if "lesion_source" in cohort:
        facts["lesion_masks"] = {str(k): int(n) for k, n in cohort["lesion_source"].astype(str).value_counts()
                                 .sort_index().items()}
    return facts


def _performance(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for _, r in metrics.iterrows():
        if str(r["model"]) in VARIANT_NAMES:
            continue
        row: dict[str, Any] = {"model": str(r["model"]), "n": _number(r.get("n")), "n_poor": _number(r.get("n_poor")),
                               "threshold": _number(r.get("threshold"))}
        for name in CARD_METRICS:
            for key in (name, f"{name}_ci_low", f"{name}_ci_high"):
                row[key] = _number(r.get(key))
        rows.append(row)
    return rows


def _comparisons(comparisons: pd.DataFrame) -> list[dict[str, Any]]:
    keep = comparisons[~comparisons["model"].astype(str).isin(VARIANT_NAMES)]
    return [{key: (str(r[key]) if key in ("reference", "model") else _number(r.get(key))) for key in CARD_COMPARISON}
            for _, r in keep.iterrows()]


def _ci(row: Mapping, name: str, digits: int = 2) -> str:
    value, low, high = row.get(name), row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}–{high:.{digits}f}]"
    return text


def _limitations(card: Mapping, protocol: Mapping | None, simulated: bool) -> list[str]:
    cohort = card["training_cohort"]
    out = [f"The outcome is participants.tsv's {cohort['outcome']}; the method was designed for the modified "
           "Rankin Scale at 3 months, and any other time point (e.g. at discharge) is a proxy of it."]
    if simulated:
        out.append("The training images were simulated (bids-stroke-simulate: semi-synthetic DWI around lesion "
                   "masks); performance on acquired DWI is unknown.")
    auto = (cohort.get("lesion_masks") or {}).get("auto", 0)
    if auto:
        out.append(f"{auto} of {cohort['n']} lesion masks were drawn automatically (trace + ADC), not by experts; "
                   "lesion volume and the lesion maps carry their errors.")
    if cohort["n"] < 300 or len(cohort["sites"]) < 4:
        out.append(f"Small training cohort ({cohort['n']} participants, {len(cohort['sites'])} sites; the "
                   "reference study had 322 from 8 sites): wide confidence intervals.")
    if protocol and protocol.get("deviations"):
        out.append("Trained with a protocol that differs from the paper's: " + "; ".join(protocol["deviations"]) + ".")
    by_model = {row["model"]: row for row in card["performance"]}
    ensemble = by_model.get("ensemble")
    for comparison in card["comparisons"]:
        if comparison["reference"] != "ensemble" or comparison["delong_p"] is None:
            continue
        if comparison["delong_p"] < 0.05 and (comparison["auc_difference"] or 0) < 0:
            out.append(f"The ensemble discriminated worse than {comparison['model']} out of center (AUC "
                       f"{comparison['auc_reference']:.2f} vs {comparison['auc_model']:.2f}, DeLong p "
                       f"{comparison['delong_p']:.4f}): prefer {comparison['model']} on data like these.")
    if ensemble and ensemble.get("calibration_slope_ci_high") is not None:
        if ensemble["calibration_slope_ci_high"] < 1:
            out.append(f"The ensemble's probabilities are too extreme (calibration slope "
                       f"{_ci(ensemble, 'calibration_slope')}): recalibrate before reading them as risks.")
        elif ensemble["calibration_slope_ci_low"] > 1:
            out.append(f"The ensemble's probabilities are too modest (calibration slope "
                       f"{_ci(ensemble, 'calibration_slope')}).")
    if ensemble and ensemble.get("calibration_intercept_ci_low") is not None:
        low, high = ensemble["calibration_intercept_ci_low"], ensemble["calibration_intercept_ci_high"]
        if low > 0 or high < 0:
            side = "low" if low > 0 else "high"
            out.append(f"The ensemble's probabilities are on average too {side} (calibration intercept "
                       f"{_ci(ensemble, 'calibration_intercept')}).")
    out.append("Leave-one-center-out estimates assume that a new site resembles the training sites; the "
               "ensemble trained on everyone has not been evaluated on an external cohort.")
    return out


def build_model_card(
    manifest: Mapping,
    metrics: pd.DataFrame,
    comparisons: pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    outcome_column: str,
    poor_threshold: int,
    clinical_columns: Sequence[str] = (),
    clinical_note: str | None = None,
    simulated: bool = False,
    software: Mapping[str, str] | None = None,
    space: str | None = None,
) -> dict[str, Any]:
    """The model card's facts, JSON-ready.

    Parameters
    ----------
    manifest : mapping
        The bundle's ``manifest.json`` (variants, seed, threshold, ``extra``).
    metrics : pandas.DataFrame
        ``group/desc-loco_metrics.tsv`` as written.
    comparisons : pandas.DataFrame
        ``group/desc-comparisons_stats.tsv`` as written.
    cohort : pandas.DataFrame
        One row per training participant: ``site``, ``outcome`` (0/1),
        ``lesion_volume_ml``, optionally ``lesion_source`` and clinical columns.
    outcome_column : str
        The participants.tsv column of the outcome.
    poor_threshold : int
        Poor outcome when the outcome is at least this.
    clinical_columns : sequence of str, default=()
        The covariates of the clinical models (empty when they were skipped).
    clinical_note : str, default=None
        Why the clinical models were skipped.
    simulated : bool, default=False
        Whether the training images came from the simulator.
    software : mapping of str to str, default=None
        Package -> version.
    space : str, default=None
        The template space of the maps.

    Returns
    -------
    dict
        ``summary``, ``intended_use``, ``out_of_scope``, ``training_cohort``,
        ``training``, ``preprocessing``, ``performance`` (one entry per model that is not
        a variant, with :data:`CARD_METRICS` and their CIs), ``comparisons``,
        ``clinical_models``, ``limitations``, ``software``.
    """
    extra = manifest.get("extra") or {}
    card: dict[str, Any] = {
        "intended_use": INTENDED_USE,
        "out_of_scope": list(OUT_OF_SCOPE),
        "training_cohort": _cohort_facts(cohort, outcome_column, poor_threshold, clinical_columns),
        "training": {
            "variants": [v["name"] for v in manifest.get("variants", [])],
            "seed": manifest.get("seed"),
            "max_epochs": extra.get("max_epochs"),
            "patience": extra.get("patience"),
            "learning_rate": extra.get("learning_rate"),
            "train_precision": extra.get("train_precision"),
            "size_branch": extra.get("size_branch"),
            "protocol": extra.get("protocol"),
            "validation": "leave-one-center-out: one fold per site, each trained on the other sites",
        },
        "preprocessing": {
            "input_shape": manifest.get("input_shape"),
            "template_space": space,
            "steps": "b0 and trace from the DWI series, brain mask, intensity normalisation, cropping and "
                     "resampling to the model grid; lesion masks given or automatic; ANTs registration to the "
                     "template for the maps",
        },
        "decision_threshold": _number(manifest.get("threshold")),
        "performance": _performance(metrics),
        "comparisons": _comparisons(comparisons),
        "clinical_models": {"columns": list(clinical_columns), "note": clinical_note},
        "software": dict(software or {}),
    }
    card["limitations"] = _limitations(card, extra.get("protocol"), simulated)
    card["summary"] = _summary(card)
    return card


def _summary(card: Mapping) -> str:
    cohort = card["training_cohort"]
    by_model = {row["model"]: row for row in card["performance"]}
    n_variants = len(card["training"]["variants"])
    parts = [f"bids-stroke ensemble of {n_variants} variant{'s' if n_variants != 1 else ''} trained on {cohort['n']} "
             f"participants from {len(cohort['sites'])} sites ({100 * cohort['prevalence']:.0f} % with "
             f"{cohort['outcome']})"]
    ensemble = by_model.get("ensemble")
    if ensemble:
        parts.append(f"leave-one-center-out AUC {_ci(ensemble, 'auc')}, Brier {_ci(ensemble, 'brier')}, "
                     f"calibration slope {_ci(ensemble, 'calibration_slope')}")
    if "lr_volume" in by_model:
        parts.append(f"lesion volume alone AUC {_ci(by_model['lr_volume'], 'auc')}")
    return "; ".join(parts) + ". Research use only."


def card_summary(manifest: Mapping) -> str | None:
    """The one-line summary of a bundle's model card, or None when the bundle has no card."""
    card = manifest.get("model_card")
    return card.get("summary") if isinstance(card, Mapping) else None


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def _summary_text(s: Mapping) -> str:
    if "median" not in s:
        return "n/a"
    return f"{s['median']:.1f} [{s['q1']:.1f}–{s['q3']:.1f}] (range {s['min']:.1f}–{s['max']:.1f})"


def model_card_markdown(card: Mapping) -> str:
    """The model card as Markdown."""
    cohort = card["training_cohort"]
    lines = ["# Model card: bids-stroke ensemble", "", card["summary"], "", "## Intended use", "",
             card["intended_use"], "", "### Out of scope", "", *(f"- {item}" for item in card["out_of_scope"]), "",
             "## Training cohort", ""]
    rows = [["participants", str(cohort["n"])], ["poor outcome", f"{cohort['n_poor']} ({100 * cohort['prevalence']:.1f} %), "
                                                                 f"{cohort['outcome']}"],
            ["sites", ", ".join(f"{site} ({n})" for site, n in cohort["sites"].items())],
            ["lesion volume (mL), median [IQR]", _summary_text(cohort["lesion_volume_ml"])]]
    for column in dict.fromkeys(("age", "nihss", *card["clinical_models"]["columns"])):
        if column in cohort and column != "lesion_volume_ml":
            rows.append([f"{column}, median [IQR]", _summary_text(cohort[column])
                         + (f", {cohort[column]['n_missing']} missing" if cohort[column]["n_missing"] else "")])
    if cohort.get("lesion_masks"):
        rows.append(["lesion masks", ", ".join(f"{n} {k}" for k, n in cohort["lesion_masks"].items())])
    lines += _md_table(["", ""], rows)
    training = card["training"]
    protocol = training.get("protocol") or {}
    lines += ["## Training and preprocessing", "",
              f"- Variants: {', '.join(training['variants'])}; seed {training['seed']}; at most "
              f"{training['max_epochs']} epochs, patience {training['patience']}; training precision "
              f"{training['train_precision']}; size branch {training['size_branch']}.",
              f"- Protocol: {protocol.get('name', 'n/a')}"
              + (f" (deviations: {'; '.join(protocol['deviations'])})" if protocol.get("deviations") else "") + ".",
              f"- Validation: {training['validation']}.",
              f"- Preprocessing: {card['preprocessing']['steps']}; model input {card['preprocessing']['input_shape']}"
              f"; template {card['preprocessing']['template_space'] or 'n/a'}.",
              f"- Decision threshold: {card['decision_threshold']}.", "",
              "## Performance (leave-one-center-out, 95 % CIs)", ""]
    header = ["model", "n", "AUC", "accuracy", "sensitivity", "specificity", "Brier", "calibration intercept",
              "calibration slope"]
    lines += _md_table(header, [[row["model"], str(row["n"]), *(_ci(row, name) for name in CARD_METRICS)]
                                for row in card["performance"]])
    if card["comparisons"]:
        lines += ["### Comparisons (DeLong)", ""]
        lines += _md_table(["reference", "model", "AUC reference", "AUC model", "difference [95 % CI]", "p"], [
            [c["reference"], c["model"], f"{c['auc_reference']:.3f}", f"{c['auc_model']:.3f}",
             f"{c['auc_difference']:.3f} [{c['auc_difference_ci_low']:.3f}–{c['auc_difference_ci_high']:.3f}]",
             f"{c['delong_p']:.4f}"] for c in card["comparisons"]])
    clinical = card["clinical_models"]
    lines += ["## Clinical models", "", (f"Covariates: {', '.join(clinical['columns'])}." if clinical["columns"]
                                         else clinical["note"] or "None."), "",
              "## Limitations", "", *(f"- {item}" for item in card["limitations"]), "",
              "## Software", "", *(f"- {name} {version}" for name, version in card["software"].items()), ""]
    return "\n".join(lines)


def write_model_card(bundle: str | os.PathLike, card: Mapping, manifest: Mapping | None = None) -> tuple[Path, Path]:
    """Write ``model_card.md`` into the bundle folder and the card into its ``manifest.json``.

    Parameters
    ----------
    bundle : path-like
        The bundle folder.
    card : mapping
        :func:`build_model_card`.
    manifest : mapping, default=None
        The manifest to write the card into; None reads the bundle's.

    Returns
    -------
    markdown, manifest : pathlib.Path
    """
    folder = Path(bundle)
    manifest = dict(manifest) if manifest is not None else json.loads((folder / MANIFEST).read_text())
    manifest["model_card"] = dict(card)
    markdown = write_text(folder / MODEL_CARD, model_card_markdown(card))
    return markdown, write_json(folder / MANIFEST, manifest, sort_keys=False)
