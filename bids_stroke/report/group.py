"""The group report, ``OUTPUT_DIR/group.html``, figures in ``OUTPUT_DIR/group/``.

Cross-validated performance (metrics with calibration, comparisons, ROC, calibration and
decision curves), the model card's summary and limitations, the cohort table (one column
per site), the group attention and lesion-probability maps, links to the participant
reports, and the methods boilerplate with its references (also written to
``logs/CITATION.md``). Numbers are rounded for reading; the TSV files keep full
precision. Without group-level outputs the report says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from bids_stroke import __version__
from bids_stroke.bids.naming import derivative_path, report_path, run_path, sidecar_path
from bids_stroke.bids.writers import write_text
from bids_stroke.maps import ALL_GROUP, CLASSIFICATION_GROUPS, HEMISPHERES, group_map_path, summary_path
from bids_stroke.config import VARIANT_NAMES
from bids_stroke.model.spec import DECISION_THRESHOLD, MANIFEST, MODEL_CARD, SCALES
from bids_stroke.report.citation import cited, methods_text, trained_variants, write_citation
from bids_stroke.report.common import (
    environment,
    find_subjects,
    fmt,
    group_space,
    load_image,
    lesion_source_counts,
    loco_predictions_path,
    read_json,
    read_tsv,
    rel,
    software_versions,
    table,
    template_images,
)
from bids_stroke.report.figures import plot_montage
from bids_stroke.report.plots import plot_calibration, plot_decision_curve, plot_roc
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

__all__ = ["ID_COLUMNS", "write_group_report"]

#: Columns of the LOCO predictions table that are not models.
ID_COLUMNS = ("participant_id", "site", "fold", "outcome")

#: How the metrics table's headers name the metrics of :data:`bids_stroke.stats.metrics.METRIC_NAMES`.
_METRIC_HEADERS = {"auc": "AUC", "ppv": "PPV", "npv": "NPV", "brier": "Brier", "calibration_intercept": "cal. intercept",
                   "calibration_slope": "cal. slope"}


def _group_path(output_dir: Path, desc: str, suffix: str, extension: str) -> Path:
    return derivative_path(output_dir, None, datatype="group", desc=desc, suffix=suffix, extension=extension)


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------
def _metrics_view(metrics: pd.DataFrame) -> dict[str, Any]:
    from bids_stroke.stats.metrics import METRIC_NAMES

    columns = ["model", "n"] + [m for m in METRIC_NAMES if m in metrics]
    rows = []
    for _, r in metrics.iterrows():
        row = [fmt(r["model"]), fmt(r.get("n"))]
        for m in columns[2:]:
            lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
            text = f"{float(r[m]):.2f}" if pd.notna(r[m]) else "n/a"
            if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
                text += f" [{float(lo):.2f}–{float(hi):.2f}]"
            row.append(text)
        rows.append(row)
    return {"columns": [_METRIC_HEADERS.get(c, c) for c in columns], "rows": rows}


def _p_text(value: Any) -> str:
    p = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return "n/a" if pd.isna(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


#: How the cohort table's ``summary`` column reads in the report.
_SUMMARY_TEXT = {"mean_sd": "mean ± SD", "median_iqr": "median [IQR]", "n_percent": "n (%)"}


def _cohort_view(cohort: pd.DataFrame) -> tuple[dict[str, Any], list[str]]:
    """The cohort table for reading: a row per characteristic (and level), a column per site, p.

    Returns the table and the significant post-hoc pairs as sentences.
    """
    sites = [c for c in cohort.columns if c.startswith("site_")]
    main = cohort[cohort["comparison"].astype(str) == "all"]
    rows = []
    for _, r in main.iterrows():
        level = r.get("level")
        label = str(r["characteristic"])
        header = pd.isna(level) or str(level) == "n/a"
        if header:
            label += f", {_SUMMARY_TEXT.get(str(r.get('summary')), str(r.get('summary')))}"
        else:
            label = f"  {label} = {level}"
        # a categorical characteristic's first row holds its test only: its levels follow
        values = [fmt(r.get(c)) if pd.notna(r.get(c)) or not header else "" for c in ["all", *sites]]
        rows.append([label, *values, _p_text(r.get("p_value")) if pd.notna(r.get("test")) else ""])
    posthoc = [f"{r['characteristic']}: {r['comparison']} (p adjusted {_p_text(r.get('p_adjusted'))}, {r['test']})"
               for _, r in cohort[cohort["comparison"].astype(str) != "all"].iterrows()]
    header = ["characteristic", "all", *(c[len("site_"):] for c in sites), "p"]
    return {"columns": header, "rows": rows}, posthoc


def _model_card(output_dir: Path, links: list[dict[str, str]]) -> dict[str, Any] | None:
    """The final ensemble's model card (summary, limitations, clinical models), linked."""
    bundle = run_path(output_dir, "ensemble")
    card = (read_json(bundle / MANIFEST) or {}).get("model_card")
    if not isinstance(card, dict):
        return None
    if (bundle / MODEL_CARD).is_file():
        links.append({"label": "Model card", "href": rel(output_dir, bundle / MODEL_CARD)})
    clinical = card.get("clinical_models") or {}
    return {"summary": card.get("summary"), "limitations": list(card.get("limitations") or []),
            "clinical_note": clinical.get("note"), "intended_use": card.get("intended_use")}


def _comparisons_view(comparisons: pd.DataFrame) -> dict[str, Any]:
    wanted = ["reference", "model", "n", "auc_reference", "auc_model", "delong_p", "reference_specificity",
              "reference_sensitivity", "model_specificity", "model_sensitivity", "mcnemar_p", "cutoff",
              "cutoff_units"]
    return table(comparisons[[c for c in wanted if c in comparisons]])


def _read_group_tables(output_dir: Path, links: list[dict[str, str]]) -> dict[str, pd.DataFrame | None]:
    """The group level's tables (None where missing); a link to each one found."""
    files = {
        "predictions": ("Leave-one-center-out predictions", loco_predictions_path(output_dir)),
        "metrics": ("Metrics", _group_path(output_dir, "loco", "metrics", ".tsv")),
        "comparisons": ("Comparisons", _group_path(output_dir, "comparisons", "stats", ".tsv")),
        "cohort": ("Cohort table", _group_path(output_dir, "cohort", "table", ".tsv")),
        "decision": ("Decision curve", _group_path(output_dir, "decision", "curve", ".tsv")),
    }
    frames = {}
    for key, (label, path) in files.items():
        frames[key] = read_tsv(path)
        if frames[key] is not None:
            links.append({"label": label, "href": rel(output_dir, path)})
    return frames


def _threshold(metrics: pd.DataFrame | None) -> float:
    """The ensemble's decision threshold in the metrics table, else the default."""
    if metrics is not None and "model" in metrics and "threshold" in metrics:
        ens = metrics[metrics["model"].astype(str) == "ensemble"]
        if len(ens) and pd.notna(ens["threshold"].iloc[0]):
            return float(ens["threshold"].iloc[0])
    return DECISION_THRESHOLD


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def _performance(output_dir: Path, predictions: pd.DataFrame | None, threshold: float,
                 notes: list[str], decision: pd.DataFrame | None = None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Cohort summary, ROC, calibration and decision-curve figures of the LOCO predictions."""
    if predictions is None or not {"outcome", "participant_id"} <= set(predictions.columns):
        return {}, []
    models = [c for c in predictions.columns if c not in ID_COLUMNS]
    y = pd.to_numeric(predictions["outcome"], errors="coerce")
    summary = {"n": len(predictions), "n_poor": int((y == 1).sum()),
               "n_sites": int(predictions["site"].nunique()) if "site" in predictions else None}
    if y.dropna().nunique() != 2 or not models:
        notes.append("The predictions table holds one outcome class only: no ROC or calibration plot.")
        return summary, []
    reference = "ensemble" if "ensemble" in models else models[0]
    roc = _group_path(output_dir, "roc", "metrics", ".png")
    plot_roc(predictions, roc, models=models, reference=reference, threshold=threshold)
    main = [m for m in models if m not in VARIANT_NAMES]
    cal = _group_path(output_dir, "calibration", "predictions", ".png")
    plot_calibration(predictions, cal, models=main)
    figures = [
        {"title": "ROC curves", "src": rel(output_dir, roc),
         "caption": f"Out-of-center ROC curves of every model. Dots: operating points at the "
                    f"{reference}'s specificity (threshold {threshold:.2f}; dashed line); thin "
                    "lines: the individual variants."},
        {"title": "Calibration", "src": rel(output_dir, cal),
         "caption": "Observed fraction of poor outcomes against the mean predicted probability, in 10 "
                    "quantile bins of each model's probabilities (equal numbers of participants); the "
                    "dotted line is perfect calibration. Brier score, calibration intercept and slope "
                    "with their CIs are in the metrics table."},
    ]
    if decision is not None and {"threshold", "treat_all", "treat_none"} <= set(decision.columns):
        dca = _group_path(output_dir, "decision", "curve", ".png")
        plot_decision_curve(decision, dca, models=[m for m in main if m in decision])
        figures.append({"title": "Decision curves", "src": rel(output_dir, dca),
                        "caption": "Net benefit (true positives minus false positives weighted by the "
                                   "threshold's odds, per participant) of using each model to flag a poor "
                                   "outcome at threshold probabilities 0.05–0.95, against flagging everyone "
                                   "(treat all) or no one (treat none); a model helps where its curve lies "
                                   "above both."})
    return summary, figures


def _map_rows(output_dir: Path, space: str, hemi: str, group: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """The lesion-probability and attention maps of one group, and their participant counts."""
    rows, counts = [], []
    for scale in (None, *SCALES):
        path = group_map_path(output_dir, space=space, hemi=hemi, group=group, scale=scale)
        img = load_image(path)
        if img is None:
            continue
        n = (read_json(sidecar_path(path)) or {}).get("NumberOfParticipants")
        rows.append(("lesion probability" if scale is None else f"attention {scale}", img))
        counts.append(f"lesion n = {fmt(n)}" if scale is None else f"{scale} n = {fmt(n)}")
    return rows, counts


def _group_maps(output_dir: Path, space: str, template: Any) -> list[dict[str, Any]]:
    """One montage per lesion hemisphere and group (all, TP, FP, FN, TN)."""
    maps = []
    for hemi, side in HEMISPHERES.items():
        for group in (ALL_GROUP, *CLASSIFICATION_GROUPS):
            rows, counts = _map_rows(output_dir, space, hemi, group)
            name = "all participants" if group == ALL_GROUP else group
            title = f"{side.capitalize()} lesions, {name}"
            if not rows:
                maps.append({"title": title, "src": None, "caption": "No participant in this group."})
                continue
            png = derivative_path(output_dir, None, datatype="group", space=space, res=DEFAULT_RESOLUTION,
                                  hemi=hemi, desc=group, suffix="attention", extension=".png")
            plot_montage(rows, png, background=template,
                         cmaps=["Blues" if r[0].startswith("lesion") else "hot" for r in rows],
                         title=f"{title} ({space})")
            maps.append({"title": title, "src": rel(output_dir, png),
                         "caption": "; ".join(counts) + ". Each row in % of its map's maximum; axial "
                                    "slices at MNI z = −26 … 64 mm; left hemisphere on the left."})
    return maps


def _attention_table(output_dir: Path, space: str, links: list[dict[str, str]]) -> dict[str, Any] | None:
    """The attention summary table (without its map columns), linked when found."""
    stats_file = summary_path(output_dir, space=space)
    stats = read_tsv(stats_file)
    if stats is None:
        return None
    links.append({"label": "Attention summary", "href": rel(output_dir, stats_file)})
    return table(stats.drop(columns=[c for c in ("attention_map", "lesion_map") if c in stats]), 3)


#: ``lesion_source`` values of the LOCO predictions -> how the report names them.
_SOURCE_NAMES = {"given": "given", "auto": "automatic (trace + ADC)", "none": "none"}


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
def write_group_report(output_dir: str | os.PathLike) -> Path:
    """Write ``group.html``, its figures and ``logs/CITATION.md`` from the existing outputs.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.

    Returns
    -------
    pathlib.Path
        The report, ``OUTPUT_DIR/group.html``. Without group-level outputs it says so and
        lists the participant reports.
    """
    out = Path(output_dir)
    notes: list[str] = []
    links: list[dict[str, str]] = []
    frames = _read_group_tables(out, links)
    group_run = any(frame is not None for frame in frames.values())
    if not group_run:
        notes.append("The group level has not been run in this OUTPUT_DIR (no group/desc-loco_predictions.tsv, "
                     "metrics, comparisons or cohort table): run 'bids-stroke BIDS_DIR OUTPUT_DIR group' to add "
                     "cross-validated performance, statistics and group maps.")
    metrics, comparisons, cohort = frames["metrics"], frames["comparisons"], frames["cohort"]
    threshold = _threshold(metrics)
    summary, figs = _performance(out, frames["predictions"], threshold, notes, frames["decision"])
    cohort_view, posthoc = _cohort_view(cohort) if cohort is not None and "comparison" in cohort else (None, [])
    tables: dict[str, Any] = {
        "metrics": _metrics_view(metrics) if metrics is not None and "model" in metrics else None,
        "comparisons": _comparisons_view(comparisons) if comparisons is not None else None,
        "cohort": cohort_view,
        "attention": None,
    }
    card = _model_card(out, links)

    space = group_space(out)
    maps: list[dict[str, Any]] = []
    if space is None:
        if group_run:
            notes.append("No group attention or lesion-probability maps were found (the participants' "
                         "template-space attention maps may be missing).")
    else:
        template, _ = template_images(space)
        tables["attention"] = _attention_table(out, space, links)
        maps = _group_maps(out, space, template)

    participants = [{"label": s, "href": rel(out, report_path(out, s))} for s in find_subjects(out)
                    if report_path(out, s).is_file()]
    versions = software_versions()
    citation = write_citation(out)
    sources = lesion_source_counts(frames["predictions"])
    html = environment().get_template("group.html").render(
        title="bids-stroke: group report", version=__version__, notes=notes, summary=summary, tables=tables,
        figures=figs, maps=maps, links=links, participants=participants, versions=versions,
        methods=methods_text(versions, space, trained_variants(out), auto_masks=sources.get("auto", 0)),
        citations=cited(out),
        citation_files=[rel(out, citation), *(rel(out, run_path(out, kind)) for kind in ("citation_html",
                                                                                           "citation_bib"))],
        threshold=threshold,
        lesion_sources=[(_SOURCE_NAMES[k], n) for k, n in sources.items()],
        auto_masks=sources.get("auto", 0), card=card, posthoc=posthoc,
    )
    return write_text(report_path(out), html)
