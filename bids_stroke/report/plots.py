"""Statistical plots of the reports: the variants' probabilities, ROC, calibration and decision curves.

Every function draws from a table already in memory (read from OUTPUT_DIR by the report
pages), writes one PNG (:func:`bids_stroke.report.canvas.save_png`) and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bids_stroke.report.canvas import MODEL_COLOURS, save_png  # noqa: E402

__all__ = ["plot_calibration", "plot_decision_curve", "plot_roc", "plot_variant_probabilities"]


# ---------------------------------------------------------------------------------------
# Participant
# ---------------------------------------------------------------------------------------
def plot_variant_probabilities(predictions: pd.DataFrame, out_file: str | os.PathLike, *,
                               title: str | None = None) -> Path:
    """Each variant's probability of a poor outcome, with the ensemble and the threshold.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The participant's ``desc-ensemble_predictions.tsv``: ``model``,
        ``probability_poor``, ``threshold`` (one row per variant plus ``ensemble``).
    out_file : path-like
        The PNG to write.
    title : str, default=None
    """
    table = predictions.reset_index(drop=True)
    is_ens = table["model"].astype(str) == "ensemble"
    variants = table[~is_ens]
    fig, ax = plt.subplots(figsize=(6.0, 0.32 * (len(variants) + 1) + 1.2))
    y = np.arange(len(variants))
    ax.barh(y, variants["probability_poor"].astype(float), color="#9bb7d4", height=0.6)
    ax.set_yticks(y, variants["model"].astype(str).tolist(), fontsize=8)
    ax.invert_yaxis()
    if is_ens.any():
        p = float(table.loc[is_ens, "probability_poor"].iloc[0])
        ax.axvline(p, color=MODEL_COLOURS["ensemble"], lw=2, label=f"ensemble = {p:.2f}")
    thr = pd.to_numeric(table.get("threshold"), errors="coerce") if "threshold" in table else None
    if thr is not None and thr.notna().any():
        ax.axvline(float(thr.dropna().iloc[0]), color="black", ls="--", lw=1,
                   label=f"threshold = {float(thr.dropna().iloc[0]):.2f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Probability of a poor outcome (mRS ≥ 3)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_file)


# ---------------------------------------------------------------------------------------
# Group level
# ---------------------------------------------------------------------------------------
def _main_colour(model: str, index: int) -> str:
    """The model's fixed colour, else the ``index``-th of matplotlib's cycle."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return MODEL_COLOURS.get(model, cycle[index % len(cycle)])


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return fpr, tpr


def _rates(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = p >= threshold
    sens = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
    spec = float((~pred[y == 0]).mean()) if (y == 0).any() else float("nan")
    return sens, spec


def plot_roc(predictions: pd.DataFrame, out_file: str | os.PathLike, *, models: Sequence[str],
             reference: str = "ensemble", threshold: float = 0.5, title: str | None = None) -> Path:
    """ROC curves of the ensemble and the baselines, with the matched-specificity line.

    The reference model's operating point (its specificity at ``threshold``) is marked and
    a vertical line drawn at its false-positive rate; each other model's point at the
    lowest threshold reaching that specificity
    (:func:`bids_stroke.stats.comparisons.threshold_for_specificity`) is marked on it.
    The CNN variants (:data:`bids_stroke.config.VARIANT_NAMES`) are drawn as thin grey
    lines, every other model (ensemble, baselines, clinical models) in its colour.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``desc-loco_predictions.tsv``: ``outcome`` (0/1) and one probability column per model.
    out_file : path-like
        The PNG to write.
    models : sequence of str
        Columns drawn; missing probabilities leave a participant out of that curve.
    reference : str, default="ensemble"
        The model whose specificity the others are matched to.
    threshold : float, default=0.5
        The reference model's decision threshold.
    title : str, default=None
    """
    from sklearn.metrics import roc_auc_score

    from bids_stroke.config import VARIANT_NAMES
    from bids_stroke.stats.comparisons import threshold_for_specificity

    y_all = pd.to_numeric(predictions["outcome"], errors="coerce").to_numpy()
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.75", lw=0.8, ls=":")
    ref_spec = None
    if reference in predictions:
        p = pd.to_numeric(predictions[reference], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        if ok.any() and np.unique(y_all[ok]).size == 2:
            _, ref_spec = _rates(y_all[ok], p[ok], threshold)
    main_models = [m for m in models if m == reference or m not in VARIANT_NAMES]
    others = [m for m in models if m not in main_models]
    other_aucs = []
    for model in [*others, *main_models]:
        if model not in predictions:
            continue
        p = pd.to_numeric(predictions[model], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        y = y_all[ok].astype(int)
        if np.unique(y).size < 2:
            continue
        fpr, tpr = _roc(y, p[ok])
        auc = roc_auc_score(y, p[ok])
        if model in others:
            other_aucs.append(auc)
            ax.plot(fpr, tpr, color="0.6", lw=0.7, alpha=0.7,
                    label=None if len(other_aucs) > 1 else "variants")
            continue
        colour = _main_colour(model, main_models.index(model))
        ax.plot(fpr, tpr, color=colour, lw=2.0 if model == reference else 1.4, label=f"{model} (AUC {auc:.2f})")
        if ref_spec is not None:
            t = threshold if model == reference else threshold_for_specificity(y, p[ok], ref_spec)
            sens, spec = _rates(y, p[ok], t)
            ax.plot(1 - spec, sens, "o", color=colour, ms=6, mec="black", mew=0.6)
    if other_aucs:
        for line in ax.get_lines():
            if line.get_label() == "variants":
                line.set_label(f"{len(other_aucs)} variants (AUC {min(other_aucs):.2f}–{max(other_aucs):.2f})")
    if ref_spec is not None:
        ax.axvline(1 - ref_spec, color="black", ls="--", lw=0.8,
                   label=f"matched specificity = {ref_spec:.2f}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("Sensitivity")
    ax.legend(fontsize=6.5, loc="lower right")
    ax.set_title(title or "Out-of-center ROC curves", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_file)


def plot_calibration(predictions: pd.DataFrame, out_file: str | os.PathLike, *,
                     models: Sequence[str] = ("ensemble",), n_bins: int = 10,
                     title: str | None = None) -> Path:
    """Reliability diagram: observed fraction of poor outcomes per bin of predicted probability.

    The bins are quantiles of each model's probabilities
    (:func:`sklearn.calibration.calibration_curve` with ``strategy="quantile"``), so that
    each holds about the same number of participants.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``outcome`` (0/1) and one probability column per model.
    out_file : path-like
        The PNG to write.
    models : sequence of str, default=("ensemble",)
        Models drawn; a participant without a model's probability is left out of its curve.
    n_bins : int, default=10
        Quantile bins per model (fewer where probabilities tie).
    title : str, default=None
    """
    from sklearn.calibration import calibration_curve

    y_all = pd.to_numeric(predictions["outcome"], errors="coerce").to_numpy()
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="ideal")
    for i, model in enumerate(models):
        if model not in predictions:
            continue
        p = pd.to_numeric(predictions[model], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        if np.unique(y_all[ok]).size < 2:
            continue
        observed, mean_p = calibration_curve(y_all[ok].astype(int), p[ok], n_bins=n_bins, strategy="quantile")
        ax.plot(mean_p, observed, "o-", color=_main_colour(model, i), lw=1.2, ms=4, label=model)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Mean predicted probability of a poor outcome")
    ax.set_ylabel("Observed fraction with a poor outcome")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or f"Calibration ({n_bins} quantile bins, out-of-center predictions)", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_file)


def plot_decision_curve(curve: pd.DataFrame, out_file: str | os.PathLike, *, models: Sequence[str],
                        title: str | None = None) -> Path:
    """Decision curves: net benefit against threshold probability, with "treat all" and "treat none".

    Parameters
    ----------
    curve : pandas.DataFrame
        ``group/desc-decision_curve.tsv``: ``threshold``, ``treat_all``, ``treat_none`` and
        one net-benefit column per model.
    out_file : path-like
        The PNG to write.
    models : sequence of str
        Model columns drawn (those absent from ``curve`` are skipped).
    title : str, default=None
    """
    t = curve["threshold"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    ax.plot(t, curve["treat_all"], color="0.45", lw=1.0, ls="--", label="treat all")
    ax.plot(t, curve["treat_none"], color="black", lw=1.0, label="treat none")
    for i, model in enumerate(m for m in models if m in curve):
        ax.plot(t, curve[model], color=_main_colour(model, i), lw=2.0 if model == "ensemble" else 1.4, label=model)
    prevalence = float(curve["treat_all"].max()) if len(curve) else 0.0
    ax.set_ylim(-0.05, max(0.05, prevalence * 1.1, float(np.nanmax(curve.drop(columns="threshold").to_numpy()))
                           * 1.1))
    ax.set_xlim(float(t.min()), float(t.max()))
    ax.set_xlabel("Threshold probability of a poor outcome")
    ax.set_ylabel("Net benefit")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(title or "Decision curves (out-of-center predictions)", fontsize=9)
    fig.tight_layout()
    return save_png(fig, out_file)
