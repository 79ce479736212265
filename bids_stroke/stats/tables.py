"""Write the group-level statistics tables, each with its JSON data dictionary.

:func:`write_group_statistics` is what the group level calls once the merged
out-of-center predictions are known. It writes, in ``OUTPUT_DIR/group/``:

- ``desc-loco_metrics.tsv``: one row per model: accuracy, AUC, sensitivity,
  specificity, PPV, NPV at the decision threshold, Brier score, calibration intercept and
  slope, each with its bootstrap 95 % CI;
- ``desc-comparisons_stats.tsv``: each model against the reference (DeLong, McNemar at
  matched specificity, baseline cut-offs in the feature's units);
- ``desc-cohort_table.tsv``: characteristics per site with the tests comparing sites;
- ``desc-decision_curve.tsv``: the net benefit of every model, "treat all" and "treat
  none" at threshold probabilities 0.05 ... 0.95 (:mod:`bids_stroke.stats.decision`), on
  the participants with a probability of every model;

and beside each a ``.json`` data dictionary (BIDS style: column -> ``Description`` and
``Units`` or ``Levels``). Paths come from :func:`bids_stroke.bids.naming.derivative_path`
and files are written atomically.

Predictions table
-----------------
One row per participant: ``participant_id``, ``site``, ``fold`` (held-out site of the fold
that predicted it), ``outcome`` (1 = poor, mRS >= 3; 0 = good), and one column per model
with its out-of-center probability of a poor outcome (``f8-g1.5`` ... ``f16-g2-bn``,
``ensemble``, ``lr_volume``, ``lr_aspects``). A model's probability may be missing (n/a)
for a participant (a baseline whose feature is missing); that participant is left out of
that model's metrics and comparisons.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bids.naming import derivative_path

from ..bids.writers import write_json, write_tsv
from ..errors import BadInputError
from .cohort import cohort_table
from .comparisons import comparisons_table
from .decision import DEFAULT_THRESHOLDS, decision_curve
from .metrics import METRIC_NAMES, bootstrap_metrics

__all__ = [
    "ID_COLUMNS",
    "cohort_dictionary",
    "comparisons_dictionary",
    "decision_curve_dictionary",
    "decision_curve_table",
    "loco_metrics_table",
    "metrics_dictionary",
    "validate_predictions",
    "write_group_statistics",
]

#: Columns of the predictions table that are not models.
ID_COLUMNS = ("participant_id", "site", "fold", "outcome")

_METRIC_TEXT = {
    "accuracy": "Fraction of participants classified correctly",
    "auc": "Area under the ROC curve (ties count one half)",
    "sensitivity": "Fraction of poor-outcome participants predicted poor",
    "specificity": "Fraction of good-outcome participants predicted good",
    "ppv": "Positive predictive value: fraction of participants predicted poor who had a poor outcome",
    "npv": "Negative predictive value: fraction of participants predicted good who had a good outcome",
    "brier": "Brier score: mean squared difference between the probability and the outcome (0 is perfect)",
    "calibration_intercept": "Calibration intercept (calibration-in-the-large): a of logit P(poor) = a + "
                             "logit(probability); 0 is ideal, > 0 probabilities too low on average, < 0 too high",
    "calibration_slope": "Calibration slope: b of logit P(poor) = a + b logit(probability); 1 is ideal, < 1 "
                         "probabilities too extreme, > 1 too modest",
}

#: Units of each metric of :data:`METRIC_NAMES` (fraction unless listed).
_METRIC_UNITS = {"brier": "squared probability (0-1)", "calibration_intercept": "log-odds",
                 "calibration_slope": "ratio of log-odds"}


def validate_predictions(predictions: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Check the predictions table; return it with ``outcome`` as int.

    Raises
    ------
    BadInputError
        A column is missing, a participant is duplicated, ``outcome`` is not 0/1 or holds
        one class only, or a probability lies outside [0, 1].
    """
    if not isinstance(predictions, pd.DataFrame):
        raise BadInputError(f"'predictions' must be a pandas DataFrame. Got {type(predictions).__name__} instead.")
    missing = [c for c in (*ID_COLUMNS, *models) if c not in predictions.columns]
    if missing:
        raise BadInputError(
            f"The predictions table must have the columns {missing}. Got {list(predictions.columns)} instead."
        )
    dup = predictions["participant_id"][predictions["participant_id"].duplicated()]
    if len(dup):
        raise BadInputError(f"The predictions table must have one row per participant. Got {sorted(set(dup))[:5]} "
                            "more than once instead.")
    outcome = pd.to_numeric(predictions["outcome"], errors="coerce")
    if not outcome.isin([0, 1]).all():
        bad = predictions["outcome"][~outcome.isin([0, 1])].tolist()[:5]
        raise BadInputError(f"'outcome' must be 0 (good) or 1 (poor) for every participant. Got {bad} instead.")
    if outcome.nunique() < 2:
        raise BadInputError(
            f"'outcome' must contain both good (0) and poor (1) outcomes. Got only {int(outcome.iloc[0])} instead."
        )
    for model in models:
        p = pd.to_numeric(predictions[model], errors="coerce")
        bad = p.notna() & ~p.between(0.0, 1.0)
        text = predictions[model].notna() & p.isna()
        if bad.any() or text.any():
            shown = predictions[model][bad | text].tolist()[:5]
            raise BadInputError(f"Probabilities of model {model!r} must lie in [0, 1]. Got {shown} instead.")
        if p.notna().sum() == 0:
            raise BadInputError(f"Model {model!r} must have at least one probability. Got none instead.")
    out = predictions.copy()
    out["outcome"] = outcome.astype(int)
    for model in models:
        out[model] = pd.to_numeric(out[model], errors="coerce").astype(float)
    return out


def loco_metrics_table(predictions: pd.DataFrame, *, models: Sequence[str], threshold: float = 0.5,
                       n_bootstrap: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Metrics of every model on the merged vector, with bootstrap CIs; one row per model.

    Models with a probability for every participant share one set of resamples; a model
    with missing probabilities is resampled on its own participants with the same seed.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The predictions table (module docstring), validated.
    models : sequence of str
        Model columns, in row order.
    threshold : float, default=0.5
        Predicted poor when the probability is ``>=`` it.
    n_bootstrap : int, default=10000
        Resamples (0: no intervals).
    seed : int, default=0
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        Columns of :func:`metrics_dictionary`.
    """
    complete = [m for m in models if predictions[m].notna().all()]
    batches = [complete] if complete else []
    batches += [[m] for m in models if m not in complete]
    rows: dict[str, dict[str, Any]] = {}
    for batch in batches:
        subset = predictions.dropna(subset=list(batch))
        y = subset["outcome"].to_numpy()
        if np.unique(y).size < 2:
            raise BadInputError(f"The participants with a probability of {batch} must include both outcomes.")
        res = bootstrap_metrics(y, subset[list(batch)].to_numpy().T, threshold=threshold,
                                n_bootstrap=n_bootstrap, seed=seed)
        for i, model in enumerate(batch):
            row: dict[str, Any] = {"model": model, "n": len(subset), "n_poor": int(y.sum()),
                                   "threshold": float(threshold)}
            for name in METRIC_NAMES:
                row[name] = float(res.estimate[name][i])
                row[f"{name}_ci_low"] = float(res.ci_low[name][i])
                row[f"{name}_ci_high"] = float(res.ci_high[name][i])
            row["n_bootstrap"] = res.n_bootstrap
            row["n_bootstrap_degenerate"] = res.n_degenerate
            rows[model] = row
    return pd.DataFrame([rows[m] for m in models], columns=list(metrics_dictionary()))


def decision_curve_table(predictions: pd.DataFrame, *, models: Sequence[str],
                         thresholds=DEFAULT_THRESHOLDS) -> tuple[pd.DataFrame, int, int]:
    """The decision curve of every model on the participants with all their probabilities.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The predictions table (module docstring), validated.
    models : sequence of str
        Model columns.
    thresholds : array-like, default=DEFAULT_THRESHOLDS

    Returns
    -------
    table : pandas.DataFrame
        :func:`bids_stroke.stats.decision.decision_curve`.
    n, n_poor : int
        The participants it was computed on, and those with a poor outcome.
    """
    subset = predictions.dropna(subset=list(models))
    y = subset["outcome"].to_numpy()
    table = decision_curve(y, {m: subset[m].to_numpy(float) for m in models}, thresholds)
    return table, len(subset), int(y.sum())


# ---------------------------------------------------------------------------------------
# Data dictionaries
# ---------------------------------------------------------------------------------------
def _prob(text: str) -> dict[str, str]:
    return {"Description": text, "Units": "probability (0-1)"}


def metrics_dictionary() -> dict[str, dict[str, Any]]:
    """Data dictionary of ``desc-loco_metrics.tsv`` (column order = table order)."""
    out: dict[str, dict[str, Any]] = {
        "model": {"Description": "Model: a CNN variant, the ensemble (mean of the variants' probabilities) "
                                 "or a logistic-regression baseline (lr_volume, lr_aspects)"},
        "n": {"Description": "Participants with an out-of-center prediction of this model", "Units": "participants"},
        "n_poor": {"Description": "Of those, participants with a poor outcome (mRS >= poor threshold)",
                   "Units": "participants"},
        "threshold": {"Description": "Decision threshold: predicted poor when the probability is >= threshold",
                      "Units": "probability (0-1)"},
    }
    for name in METRIC_NAMES:
        units = _METRIC_UNITS.get(name, "fraction (0-1)")
        out[name] = {"Description": f"{_METRIC_TEXT[name]}, on the merged leave-one-center-out predictions "
                                    "(one per participant)", "Units": units}
        out[f"{name}_ci_low"] = {"Description": f"Lower bound of the percentile bootstrap 95 % CI of {name}",
                                 "Units": units}
        out[f"{name}_ci_high"] = {"Description": f"Upper bound of the percentile bootstrap 95 % CI of {name}",
                                  "Units": units}
    out["n_bootstrap"] = {"Description": "Bootstrap resamples of the merged vector drawn (0: no CIs)",
                          "Units": "resamples"}
    out["n_bootstrap_degenerate"] = {"Description": "Resamples holding only one outcome class, left out of "
                                                    "every CI", "Units": "resamples"}
    return out


def comparisons_dictionary() -> dict[str, dict[str, Any]]:
    """Data dictionary of ``desc-comparisons_stats.tsv``."""
    frac = "fraction (0-1)"
    return {
        "reference": {"Description": "The deep model compared with (ensemble by default)"},
        "model": {"Description": "The model compared with the reference"},
        "n": {"Description": "Participants with predictions of both models", "Units": "participants"},
        "n_poor": {"Description": "Of those, participants with a poor outcome", "Units": "participants"},
        "auc_reference": {"Description": "ROC AUC of the reference model", "Units": frac},
        "auc_reference_ci_low": {"Description": "Lower bound of the DeLong 95 % CI of auc_reference", "Units": frac},
        "auc_reference_ci_high": {"Description": "Upper bound of the DeLong 95 % CI of auc_reference",
                                  "Units": frac},
        "auc_model": {"Description": "ROC AUC of the model", "Units": frac},
        "auc_model_ci_low": {"Description": "Lower bound of the DeLong 95 % CI of auc_model", "Units": frac},
        "auc_model_ci_high": {"Description": "Upper bound of the DeLong 95 % CI of auc_model", "Units": frac},
        "auc_difference": {"Description": "auc_reference - auc_model", "Units": frac},
        "auc_difference_ci_low": {"Description": "Lower bound of the DeLong 95 % CI of auc_difference",
                                  "Units": frac},
        "auc_difference_ci_high": {"Description": "Upper bound of the DeLong 95 % CI of auc_difference",
                                   "Units": frac},
        "delong_z": {"Description": "DeLong's z statistic for correlated ROC curves (Sun & Xu 2014 algorithm)"},
        "delong_p": {"Description": "Two-sided p-value of DeLong's test"},
        "reference_threshold": _prob("Decision threshold of the reference model"),
        "reference_specificity": {"Description": "Specificity of the reference model at its threshold",
                                  "Units": frac},
        "reference_sensitivity": {"Description": "Sensitivity of the reference model at its threshold",
                                  "Units": frac},
        "model_threshold": _prob("Lowest probability threshold of the model whose specificity reaches "
                                 "reference_specificity (predicted poor when >=; ties can make it higher)"),
        "model_specificity": {"Description": "Specificity of the model at model_threshold", "Units": frac},
        "model_sensitivity": {"Description": "Sensitivity of the model at model_threshold", "Units": frac},
        "mcnemar_reference_only": {"Description": "Poor-outcome participants detected by the reference model "
                                                  "only", "Units": "participants"},
        "mcnemar_model_only": {"Description": "Poor-outcome participants detected by the model only",
                               "Units": "participants"},
        "mcnemar_statistic": {"Description": "McNemar statistic: min of the discordant counts (exact) or the "
                                             "continuity-corrected chi-square (chi2)"},
        "mcnemar_p": {"Description": "Two-sided p-value of McNemar's test comparing the sensitivities at "
                                     "matched specificity"},
        "mcnemar_method": {"Description": "Variant of McNemar's test",
                           "Levels": {"exact": "Exact binomial test (fewer than 25 discordant pairs)",
                                      "chi2": "Chi-square test with continuity correction"}},
        "cutoff": {"Description": "model_threshold in the baseline feature's units, for the baseline fitted "
                                  "on every participant (n/a for models that are not baselines)",
                   "Units": "see cutoff_units"},
        "cutoff_fold_min": {"Description": "Smallest such cut-off among the leave-one-center-out models",
                            "Units": "see cutoff_units"},
        "cutoff_fold_max": {"Description": "Largest such cut-off among the leave-one-center-out models",
                            "Units": "see cutoff_units"},
        "cutoff_units": {"Description": "Units of the cut-off (mL for lesion volume, points for ASPECTS)"},
        "cutoff_direction": {"Description": "Which side of the cut-off is predicted poor",
                             "Levels": {"greater": "feature >= cutoff predicted poor",
                                        "less": "feature <= cutoff predicted poor"}},
    }


def decision_curve_dictionary(models: Sequence[str], n: int, n_poor: int) -> dict[str, dict[str, Any]]:
    """Data dictionary of ``desc-decision_curve.tsv``."""
    on = (f"on the {n} participants with a probability of every model ({n_poor} with a poor outcome): "
          "TP/n - FP/n * threshold / (1 - threshold)")
    out: dict[str, dict[str, Any]] = {
        "threshold": _prob("Threshold probability: participants whose probability of a poor outcome is >= it "
                           "are treated as poor; its odds are the harm of a false positive relative to the "
                           "benefit of a true positive"),
        "treat_all": {"Description": f"Net benefit of treating every participant as poor, {on}",
                      "Units": "net true positives per participant"},
        "treat_none": {"Description": "Net benefit of treating no participant as poor (0)",
                       "Units": "net true positives per participant"},
    }
    for model in models:
        out[model] = {"Description": f"Net benefit of model {model}'s leave-one-center-out probabilities, {on}",
                      "Units": "net true positives per participant"}
    return out


def cohort_dictionary(table: pd.DataFrame, group_column: str = "site") -> dict[str, dict[str, Any]]:
    """Data dictionary of ``desc-cohort_table.tsv`` for the sites present in ``table``."""
    out: dict[str, dict[str, Any]] = {
        "characteristic": {"Description": "participants.tsv column (or lesion measure, or binary outcome)"},
        "level": {"Description": "Level of a categorical characteristic (n/a for the row of its test)"},
        "comparison": {"Description": "'all' for the characteristic across every site, '<A> vs <B>' for a "
                                      "significant post-hoc pair"},
        "summary": {"Description": "How the values are summarised",
                    "Levels": {"mean_sd": "mean ± standard deviation (normal in every site)",
                               "median_iqr": "median [first quartile–third quartile]",
                               "n_percent": "count (percent of the site's participants with a value)"}},
        "all": {"Description": "Summary over the whole cohort"},
    }
    for column in table.columns:
        if column.startswith(f"{group_column}_"):
            site = column[len(group_column) + 1:]
            out[column] = {"Description": f"Summary over the participants of {group_column} {site}"}
    out.update({
        "n_missing": {"Description": "Participants without a value", "Units": "participants"},
        "normal": {"Description": "Whether D'Agostino-Pearson's test found every site normal (p >= 0.05, at "
                                  "least 8 values per site)"},
        "test": {"Description": "Test used", "Levels": {
            "anova": "one-way ANOVA", "kruskal": "Kruskal-Wallis H test", "chi2": "chi-square test of independence",
            "ttest": "post-hoc Student's t-test", "mannwhitney": "post-hoc Mann-Whitney U test"}},
        "statistic": {"Description": "Test statistic (F, H, chi-square, t or U)"},
        "p_value": {"Description": "p-value of the test"},
        "p_adjusted": {"Description": "Bonferroni-adjusted p-value of a post-hoc pair"},
    })
    return out


# ---------------------------------------------------------------------------------------
# The group level's entry point
# ---------------------------------------------------------------------------------------
def write_group_statistics(
    output_dir: str | os.PathLike,
    predictions: pd.DataFrame,
    participants: pd.DataFrame | None = None,
    *,
    models: Sequence[str] | None = None,
    reference_model: str = "ensemble",
    comparison_models: Sequence[str] | None = None,
    extra_comparisons: Sequence[tuple[str, str]] = (),
    baselines: Mapping[str, Any] | None = None,
    n_bootstrap: int = 10000,
    seed: int = 0,
    threshold: float = 0.5,
    cohort_numeric: Sequence[str] | None = None,
    cohort_categorical: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Compute and write the four group-level statistics tables and their dictionaries.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR; files go to ``OUTPUT_DIR/group/``.
    predictions : pandas.DataFrame
        The merged predictions table (module docstring), baselines included
        (:func:`bids_stroke.stats.baselines.add_loco_baselines`).
    participants : pandas.DataFrame or None, default=None
        participants.tsv (indexed by ``participant_id`` or with that column), with any
        lesion measures joined; its rows for the predicted participants feed the cohort
        table, with ``site`` and ``outcome`` taken from ``predictions``.
    models : sequence of str, default=None
        Model columns; ``None`` means every column of ``predictions`` but
        :data:`ID_COLUMNS`.
    reference_model : str, default="ensemble"
        The deep model the others are compared with.
    comparison_models : sequence of str, default=None
        Models compared with the reference; ``None`` means every other model.
    extra_comparisons : sequence of (str, str), default=()
        More (reference, model) pairs, appended to the comparisons table (e.g.
        ``("ensemble+clinical", "volume+clinical")``).
    baselines : mapping of str to LocoBaseline, default=None
        Fitted baselines, for their cut-offs in mL / ASPECTS points.
    n_bootstrap : int, default=10000
        Bootstrap resamples for the metrics' CIs (0: none).
    seed : int, default=0
        Seed of the resampling.
    threshold : float, default=0.5
        Decision threshold on the probability of a poor outcome (predicted poor when >=).
    cohort_numeric, cohort_categorical : sequence of str, default=None
        Characteristics of the cohort table (see :func:`bids_stroke.stats.cohort.cohort_table`).

    Returns
    -------
    dict of str to pathlib.Path
        ``metrics``, ``comparisons``, ``cohort``, ``decision`` (TSV files) and
        ``metrics_json``, ``comparisons_json``, ``cohort_json``, ``decision_json`` (their data
        dictionaries).

    Raises
    ------
    BadInputError
        The predictions table is unusable (:func:`validate_predictions`), or a named model
        or characteristic is absent.
    """
    if models is None:
        models = [c for c in predictions.columns if c not in ID_COLUMNS]
    models = list(models)
    if reference_model not in models:
        raise BadInputError(f"'reference_model' must be one of the models {models}. Got {reference_model!r} instead.")
    table = validate_predictions(predictions, models)
    comparison_models = [m for m in models if m != reference_model] if comparison_models is None \
        else list(comparison_models)
    unknown = [m for m in [*comparison_models, *(m for pair in extra_comparisons for m in pair)]
               if m not in models]
    if unknown:
        raise BadInputError(f"'comparison_models' must be among the models {models}. Got {unknown} instead.")

    metrics = loco_metrics_table(table, models=models, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed)
    try:
        comparisons = pd.concat(
            [comparisons_table(table, reference_model=reference_model, models=comparison_models,
                               threshold=threshold, baselines=baselines)]
            + [comparisons_table(table, reference_model=ref, models=[model], threshold=threshold,
                                 baselines=baselines) for ref, model in extra_comparisons],
            ignore_index=True)
    except ValueError as err:
        raise BadInputError(f"The predictions table cannot be compared across models: {err}") from err

    cohort_input = table[["participant_id", "site", "outcome"]].set_index("participant_id")
    if participants is not None:
        extra = participants.set_index("participant_id") if "participant_id" in participants.columns \
            else participants
        extra = extra.drop(columns=[c for c in ("site", "outcome") if c in extra.columns])
        cohort_input = cohort_input.join(extra, how="left")
    try:
        cohort = cohort_table(cohort_input.reset_index(drop=True), group_column="site",
                              numeric=cohort_numeric, categorical=cohort_categorical)
    except ValueError as err:
        raise BadInputError(str(err)) from err

    decision, n_decision, n_poor_decision = decision_curve_table(table, models=models)
    if n_decision == 0 or n_poor_decision in (0, n_decision):
        raise BadInputError(f"The participants with a probability of every model {models} must include both "
                            "outcomes for the decision curve.")

    paths: dict[str, Path] = {}
    for key, (desc, suffix, frame, dictionary) in {
        "metrics": ("loco", "metrics", metrics, metrics_dictionary()),
        "comparisons": ("comparisons", "stats", comparisons, comparisons_dictionary()),
        "cohort": ("cohort", "table", cohort, cohort_dictionary(cohort)),
        "decision": ("decision", "curve", decision, decision_curve_dictionary(models, n_decision,
                                                                               n_poor_decision)),
    }.items():
        tsv = derivative_path(output_dir, None, datatype="group", desc=desc, suffix=suffix, extension=".tsv")
        sidecar = derivative_path(output_dir, None, datatype="group", desc=desc, suffix=suffix, extension=".json")
        paths[key] = write_tsv(tsv, frame)
        paths[f"{key}_json"] = write_json(sidecar, {c: dictionary[c] for c in frame.columns}, sort_keys=False)
    return paths
