"""Comparisons of each model with the reference deep model (the ensemble by default).

For every compared model (the baselines, and any other model asked for), on the merged
out-of-center vector:

1. DeLong's test of the two correlated AUCs (:func:`bids_stroke.stats.delong.delong_test`);
2. the model's threshold is set so that its specificity matches the reference model's
   specificity at its decision threshold (:func:`threshold_for_specificity`);
3. McNemar's test compares the paired correct/incorrect classifications of the
   poor-outcome participants, i.e. the two sensitivities (:func:`mcnemar_test`).

Predictions table
-----------------
One row per participant: ``participant_id``, ``site``, ``fold`` (held-out site of the fold
that predicted it), ``outcome`` (1 = poor, mRS >= 3; 0 = good), and one column per model
holding its out-of-center probability of a poor outcome (``f8-g1.5`` ... ``f16-g2-bn``,
``ensemble``, ``lr_volume``, ``lr_aspects``). A participant is predicted poor when its
probability is ``>=`` the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar

from .delong import delong_test
from .metrics import check_binary_outcome, check_scores

__all__ = [
    "EXACT_MCNEMAR_BELOW",
    "McNemarResult",
    "comparisons_table",
    "compare_to_reference",
    "mcnemar_test",
    "threshold_for_specificity",
]

#: McNemar's test is exact (binomial) when fewer discordant pairs than this are observed,
#: and the continuity-corrected chi-square test otherwise.
EXACT_MCNEMAR_BELOW = 25


def threshold_for_specificity(y_true, y_score, specificity: float) -> float:
    """The lowest threshold whose specificity reaches a target.

    With the rule "predicted poor when ``y_score >= threshold``", the specificity
    ``#{good: score < t} / #good`` can only take the values reached at the distinct
    scores. This returns the smallest distinct score ``t`` with specificity ``>=`` the
    target (the most sensitive threshold that is at least as specific). Without ties among
    the good participants' scores, and a target that is a multiple of ``1 / #good`` (as
    the reference model's specificity on the same participants is), the specificity is
    reached exactly. Ties can make it unreachable: good participants sharing a score are
    classified together, so the specificity jumps over the target and the returned
    threshold gives the next value above it. ``inf`` (nobody predicted poor) when only
    that reaches the target.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor, 0 = good (at least one good).
    y_score : array-like of shape (n_samples,)
        Probability (or any score) of a poor outcome.
    specificity : float
        Target specificity in [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> threshold_for_specificity([0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.5, 0.9], 0.75)
    0.5
    """
    y = check_binary_outcome(y_true, require_both=False)
    s = check_scores(y_score, y.size)
    if s.ndim != 1:
        raise ValueError(f"'y_score' must be 1-D. Got shape {s.shape} instead.")
    if not 0.0 <= float(specificity) <= 1.0:
        raise ValueError(f"'specificity' must lie in [0, 1]. Got {specificity!r} instead.")
    negatives = np.sort(s[y == 0])
    if negatives.size == 0:
        raise ValueError("'y_true' must contain good-outcome (0) participants to set a specificity.")
    needed = int(np.ceil(float(specificity) * negatives.size - 1e-9))
    candidates = np.unique(s)
    # good participants strictly below each candidate threshold
    below = np.searchsorted(negatives, candidates, side="left")
    ok = np.flatnonzero(below >= needed)
    return float(candidates[ok[0]]) if ok.size else float("inf")


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired binary results.

    Attributes
    ----------
    table : ndarray of shape (2, 2)
        Rows: model A correct, incorrect; columns: model B correct, incorrect.
    b, c : int
        Discordant pairs: A correct and B not (``b``), B correct and A not (``c``).
    statistic : float
        ``min(b, c)`` for the exact test, else the continuity-corrected chi-square.
    p_value : float
        Two-sided.
    exact : bool
        Whether the exact binomial test was used.
    """

    table: np.ndarray
    b: int
    c: int
    statistic: float
    p_value: float
    exact: bool


def mcnemar_test(correct_a, correct_b, *, exact: bool | None = None) -> McNemarResult:
    """McNemar's test of two paired classifiers (via statsmodels).

    Parameters
    ----------
    correct_a, correct_b : array-like of bool, shape (n_samples,)
        Whether each model classified each participant correctly.
    exact : bool or None, default=None
        Exact binomial test; ``None`` chooses it when ``b + c <``
        :data:`EXACT_MCNEMAR_BELOW`, the continuity-corrected chi-square otherwise.

    Returns
    -------
    McNemarResult

    Examples
    --------
    >>> res = mcnemar_test([1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 1])
    >>> res.b, res.c, round(res.p_value, 3)
    (3, 0, 0.25)
    """
    a = np.asarray(correct_a).astype(bool)
    b = np.asarray(correct_b).astype(bool)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"'correct_a' and 'correct_b' must be 1-D of one length. Got shapes {a.shape} and {b.shape} instead."
        )
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    n_b, n_c = int(table[0, 1]), int(table[1, 0])
    if exact is None:
        exact = (n_b + n_c) < EXACT_MCNEMAR_BELOW
    if n_b + n_c == 0:
        return McNemarResult(table, 0, 0, 0.0, 1.0, bool(exact))
    res = mcnemar(table, exact=bool(exact), correction=True)
    return McNemarResult(table, n_b, n_c, float(res.statistic), float(min(res.pvalue, 1.0)), bool(exact))


def compare_to_reference(y_true, reference_score, model_score, *, threshold: float = 0.5,
                         confidence: float = 0.95) -> dict[str, Any]:
    """DeLong's test and McNemar's test at matched specificity for one pair of models.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 = poor, 0 = good.
    reference_score, model_score : array-like of shape (n_samples,)
        Probabilities of a poor outcome of the reference (deep) model and of the model
        compared with it.
    threshold : float, default=0.5
        The reference model's decision threshold.
    confidence : float, default=0.95
        Coverage of the DeLong intervals.

    Returns
    -------
    dict
        The columns of one row of :func:`comparisons_table` (see its data dictionary in
        :mod:`bids_stroke.stats.tables`), except ``reference``/``model`` and the cut-offs.
    """
    y = check_binary_outcome(y_true)
    ref = check_scores(reference_score, y.size, name="reference_score")
    other = check_scores(model_score, y.size, name="model_score")
    delong = delong_test(y, ref, other, confidence=confidence)
    pos, neg = y == 1, y == 0
    ref_pred = ref >= threshold
    spec_ref = float(np.mean(~ref_pred[neg]))
    model_threshold = threshold_for_specificity(y, other, spec_ref)
    model_pred = other >= model_threshold
    test = mcnemar_test(ref_pred[pos], model_pred[pos])
    return {
        "n": int(y.size),
        "n_poor": int(pos.sum()),
        "auc_reference": delong.auc_a,
        "auc_reference_ci_low": delong.ci_a[0],
        "auc_reference_ci_high": delong.ci_a[1],
        "auc_model": delong.auc_b,
        "auc_model_ci_low": delong.ci_b[0],
        "auc_model_ci_high": delong.ci_b[1],
        "auc_difference": delong.difference,
        "auc_difference_ci_low": delong.ci_difference[0],
        "auc_difference_ci_high": delong.ci_difference[1],
        "delong_z": delong.z,
        "delong_p": delong.p_value,
        "reference_threshold": float(threshold),
        "reference_specificity": spec_ref,
        "reference_sensitivity": float(np.mean(ref_pred[pos])),
        "model_threshold": model_threshold,
        "model_specificity": float(np.mean(~model_pred[neg])),
        "model_sensitivity": float(np.mean(model_pred[pos])),
        "mcnemar_reference_only": test.b,
        "mcnemar_model_only": test.c,
        "mcnemar_statistic": test.statistic,
        "mcnemar_p": test.p_value,
        "mcnemar_method": "exact" if test.exact else "chi2",
    }


def comparisons_table(
    predictions: pd.DataFrame,
    *,
    reference_model: str = "ensemble",
    models: Sequence[str],
    threshold: float = 0.5,
    baselines: Mapping[str, Any] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Compare each model with the reference model, one row per model.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The predictions table (see the module docstring).
    reference_model : str, default="ensemble"
        Column of the deep model the others are compared with.
    models : sequence of str
        Columns to compare with it (the reference itself is skipped).
    threshold : float, default=0.5
        The reference model's decision threshold.
    baselines : mapping of str to LocoBaseline, default=None
        Fitted baselines (:func:`bids_stroke.stats.baselines.add_loco_baselines`); for
        those, the matched-specificity threshold is also given in the feature's units
        (``cutoff``: the model fitted on every participant; ``cutoff_fold_min``/``_max``:
        range over the LOCO models), with ``cutoff_units`` and ``cutoff_direction``.
    confidence : float, default=0.95
        Coverage of the DeLong intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``reference``, ``model``, then those of :func:`compare_to_reference`, then
        the cut-off columns. A participant missing a probability of either model (e.g. no
        ASPECTS) is left out of that comparison (``n``).
    """
    baselines = baselines or {}
    rows = []
    for model in models:
        if model == reference_model:
            continue
        pair = predictions[["outcome", reference_model, model]].dropna()
        row: dict[str, Any] = {"reference": reference_model, "model": model}
        row.update(compare_to_reference(pair["outcome"].to_numpy(), pair[reference_model].to_numpy(),
                                        pair[model].to_numpy(), threshold=threshold, confidence=confidence))
        cut = {"cutoff": np.nan, "cutoff_fold_min": np.nan, "cutoff_fold_max": np.nan,
               "cutoff_units": None, "cutoff_direction": None}
        if model in baselines:
            fitted = baselines[model]
            p = row["model_threshold"]
            values = fitted.cutoffs(p) if np.isfinite(p) else {}
            cut.update({key: values.get(key, np.nan) for key in ("cutoff", "cutoff_fold_min", "cutoff_fold_max")})
            cut["cutoff_units"] = fitted.units
            cut["cutoff_direction"] = values.get("direction")
        row.update(cut)
        rows.append(row)
    columns = ["reference", "model", *_COMPARISON_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


_COMPARISON_COLUMNS = (
    "n", "n_poor",
    "auc_reference", "auc_reference_ci_low", "auc_reference_ci_high",
    "auc_model", "auc_model_ci_low", "auc_model_ci_high",
    "auc_difference", "auc_difference_ci_low", "auc_difference_ci_high",
    "delong_z", "delong_p",
    "reference_threshold", "reference_specificity", "reference_sensitivity",
    "model_threshold", "model_specificity", "model_sensitivity",
    "mcnemar_reference_only", "mcnemar_model_only", "mcnemar_statistic", "mcnemar_p", "mcnemar_method",
    "cutoff", "cutoff_fold_min", "cutoff_fold_max", "cutoff_units", "cutoff_direction",
)
