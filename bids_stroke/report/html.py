"""Participant and group HTML reports, and the citation boilerplate.

Reports are built only from files that already exist in OUTPUT_DIR, so that they can be
regenerated at any time (``--reports-only``) without recomputing anything: figures are
redrawn from the saved images and tables, and the HTML is rendered from jinja2 templates
shipped in ``bids_stroke/data/report_templates/``. What is missing (no ``--model`` at the
participant level, group level not run, ...) is said in the report instead of failing.

Each report is self-contained within OUTPUT_DIR: it refers to its figures and tables by
paths relative to OUTPUT_DIR's root (where the ``.html`` files are), and loads no script,
font or style sheet from elsewhere. The same outputs give byte-identical reports (no time
stamps; PNGs without metadata).

Layout
------
- ``OUTPUT_DIR/sub-<L>.html``, figures in ``OUTPUT_DIR/sub-<L>/figures/``;
- ``OUTPUT_DIR/group.html``, figures in ``OUTPUT_DIR/group/``;
- ``OUTPUT_DIR/logs/CITATION.md``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import nibabel as nib
import numpy as np
import pandas as pd

from bids_stroke import __version__
from bids_stroke.bids.naming import derivative_path, report_path
from bids_stroke.bids.writers import write_text
from bids_stroke.maps import (
    ALL_GROUP,
    CLASSIFICATION_GROUPS,
    HEMISPHERES,
    group_map_path,
    summary_path,
)
from bids_stroke.model.spec import DECISION_THRESHOLD, SCALES
from bids_stroke.report import figures
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE

LOGGER = logging.getLogger(__name__)

__all__ = [
    "CITATIONS",
    "citation_markdown",
    "citation_path",
    "find_subjects",
    "software_versions",
    "write_citation",
    "write_group_report",
    "write_participant_report",
    "write_reports",
]

#: Columns of the LOCO predictions table that are not models.
ID_COLUMNS = ("participant_id", "site", "fold", "outcome")

#: References cited by the reports and ``logs/CITATION.md`` (key -> text).
CITATIONS = {
    "moulton2022": "Moulton E, Valabregue R, Piotin M, et al. Interpretable deep learning for the prognosis "
                   "of long-term functional outcome post-stroke using acute diffusion weighted imaging. "
                   "J Cereb Blood Flow Metab. 2022. doi:10.1177/0271678X221129230",
    "jetley2018": "Jetley S, Lord NA, Lee N, Torr PHS. Learn to pay attention. International Conference on "
                  "Learning Representations (ICLR) 2018. arXiv:1804.02391",
    "ants": "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image registration with "
            "cross-correlation: evaluating automated labeling of elderly and neurodegenerative brain. "
            "Med Image Anal. 2008;12(1):26-41. doi:10.1016/j.media.2007.06.004",
    "dipy": "Garyfallidis E, Brett M, Amirbekian B, et al. Dipy, a library for the analysis of diffusion "
            "MRI data. Front Neuroinform. 2014;8:8. doi:10.3389/fninf.2014.00008",
    "nipype": "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and extensible "
              "neuroimaging data processing framework in Python. Front Neuroinform. 2011;5:13. "
              "doi:10.3389/fninf.2011.00013",
    "keras": "Chollet F, et al. Keras. 2015. Software available from keras.io",
    "tensorflow": "Abadi M, et al. TensorFlow: large-scale machine learning on heterogeneous systems. 2015. "
                  "Software available from tensorflow.org",
    "delong": "DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated "
              "receiver operating characteristic curves: a nonparametric approach. Biometrics. "
              "1988;44(3):837-845. doi:10.2307/2531595",
    "bids": "Gorgolewski KJ, Auer T, Calhoun VD, et al. The brain imaging data structure, a format for "
            "organizing and describing outputs of neuroimaging experiments. Sci Data. 2016;3:160044. "
            "doi:10.1038/sdata.2016.44",
    "fonov": "Fonov VS, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased average "
             "age-appropriate atlases for pediatric studies. NeuroImage. 2011;54(1):313-327. "
             "doi:10.1016/j.neuroimage.2010.07.033",
    "soop": "Absher J, et al. The stroke outcome optimization project: acute ischemic strokes from a "
            "comprehensive stroke center. Sci Data. 2024. (OpenNeuro ds004889)",
    "isles": "Hernandez Petzsche MR, de la Rosa E, Hanning U, et al. ISLES 2022: a multi-center magnetic "
             "resonance imaging stroke lesion segmentation dataset. Sci Data. 2022;9:762. "
             "doi:10.1038/s41597-022-01875-5",
}

#: Distributions whose versions the methods paragraph reports (label -> distribution).
SOFTWARE = {
    "bids-stroke": "bids-stroke", "Python NumPy": "numpy", "SciPy": "scipy", "nibabel": "nibabel",
    "nipype": "nipype", "dipy": "dipy", "ANTsPy": "antspyx", "Keras": "keras",
    "TensorFlow": "tensorflow-cpu", "scikit-learn": "scikit-learn", "statsmodels": "statsmodels",
    "pandas": "pandas", "nilearn": "nilearn", "matplotlib": "matplotlib", "pybids": "pybids",
}

_FILE_ENTITIES = re.compile(
    r"^sub-(?P<subject>[A-Za-z0-9]+)(?:_ses-(?P<session>[A-Za-z0-9]+))?(?:_acq-(?P<acquisition>[A-Za-z0-9]+))?"
    r"(?:_run-(?P<run>[A-Za-z0-9]+))?_space-model_desc-preproc_dwi\.nii\.gz$"
)
_GROUP_SPACE = re.compile(r"^space-(?P<space>[A-Za-z0-9]+)_res-")
_TEMPLATE_SPACE = re.compile(r"_space-(?P<space>[A-Za-z0-9]+)_res-2_desc-b0_dwiref\.nii\.gz$")

_METRICS = ("accuracy", "auc", "sensitivity", "specificity", "ppv", "npv")


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------
def _environment() -> jinja2.Environment:
    folder = resources.files("bids_stroke") / "data" / "report_templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    return env


def _rel(output_dir: Path, path: Path) -> str:
    return Path(os.path.relpath(path, output_dir)).as_posix()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        if abs(value) < 10 ** -digits and value != 0:
            return f"{float(value):.1e}"
        return f"{float(value):.{digits}f}"
    text = str(value)
    return "n/a" if text in ("nan", "None", "") else text


def _table(frame: pd.DataFrame, digits: int = 3) -> dict[str, Any]:
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[_fmt(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]}


def _read_tsv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        LOGGER.warning("%s: unreadable (%s); left out of the report.", path, exc)
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        LOGGER.warning("%s: unreadable (%s); left out of the report.", path, exc)
        return None


def _load(path: Path) -> nib.spatialimages.SpatialImage | None:
    if not path.is_file():
        return None
    try:
        return nib.load(os.fspath(path))
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        LOGGER.warning("%s: unreadable (%s); left out of the report.", path, exc)
        return None


def _template(space: str | None) -> tuple[Any, Any]:
    """T2w and brain mask of a template space at 2 mm, or (None, None)."""
    if not space:
        return None, None
    try:
        from bids_stroke.spatial.templates import get_template_set

        tset = get_template_set(space, resolution=DEFAULT_RESOLUTION)
        return tset.t2w.load(), tset.mask.load()
    except Exception as exc:  # noqa: BLE001 - the report goes on without a background
        LOGGER.warning("Template %s unavailable (%s): figures are drawn without it.", space, exc)
        return None, None


def software_versions() -> dict[str, str]:
    """Installed version of each package listed in :data:`SOFTWARE` (``n/a`` when absent)."""
    out = {}
    for label, dist in SOFTWARE.items():
        if dist == "bids-stroke":
            out[label] = __version__
            continue
        try:
            out[label] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[label] = "n/a"
    return out


def _figure_path(output_dir: Path, entities: dict[str, str], **kwargs: Any) -> Path:
    return derivative_path(output_dir, entities, datatype="figures", extension=".png", **kwargs)


def _dwi_path(output_dir: Path, entities: dict[str, str], **kwargs: Any) -> Path:
    return derivative_path(output_dir, entities, **kwargs)


# ---------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------
def find_subjects(output_dir: str | os.PathLike) -> list[str]:
    """Participants with participant-level outputs in OUTPUT_DIR (labels without ``sub-``)."""
    out = Path(output_dir)
    labels = set()
    for path in out.glob("sub-*/**/dwi/*_space-model_desc-preproc_dwi.nii.gz"):
        match = _FILE_ENTITIES.match(path.name)
        if match:
            labels.add(match["subject"])
    for path in out.glob("sub-*/**/dwi/*_desc-lesion_measures.json"):
        labels.add(path.name.split("_", 1)[0][4:])
    return sorted(labels)


def _runs(output_dir: Path, subject: str, session: str | None) -> list[dict[str, str]]:
    """Entity sets (subject, session, acquisition, run) of a participant's outputs."""
    found = []
    for path in sorted((output_dir / f"sub-{subject}").glob("**/dwi/*_space-model_desc-preproc_dwi.nii.gz")):
        match = _FILE_ENTITIES.match(path.name)
        if not match or match["subject"] != subject:
            continue
        ents = {k: v for k, v in match.groupdict().items() if v}
        if session is not None and ents.get("session") != session:
            continue
        found.append(ents)
    if not found:
        ents = {"subject": subject}
        if session is not None:
            ents["session"] = session
        found.append(ents)
    return found


def _space_of(output_dir: Path, entities: dict[str, str], measures: dict[str, Any] | None) -> str | None:
    if measures and measures.get("TemplateSpace"):
        return str(measures["TemplateSpace"])
    ref = _dwi_path(output_dir, entities, space="model", desc="preproc", suffix="dwi", extension=".nii.gz")
    for path in sorted(ref.parent.glob("*_res-2_desc-b0_dwiref.nii.gz")):
        match = _TEMPLATE_SPACE.search(path.name)
        if match:
            return match["space"]
    return None


def _group_dir(output_dir: Path) -> Path:
    return derivative_path(output_dir, None, datatype="group", desc="loco", suffix="predictions",
                           extension=".tsv").parent


def _group_space(output_dir: Path) -> str | None:
    for path in sorted(_group_dir(output_dir).glob("space-*_res-2_desc-attention_stats.tsv")):
        match = _GROUP_SPACE.match(path.name)
        if match:
            return match["space"]
    for path in sorted(_group_dir(output_dir).glob("space-*_res-2_*.nii.gz")):
        match = _GROUP_SPACE.match(path.name)
        if match:
            return match["space"]
    return None


# ---------------------------------------------------------------------------------------
# Participant report
# ---------------------------------------------------------------------------------------
def _participant_section(output_dir: Path, entities: dict[str, str], loco: pd.DataFrame | None,
                         template_cache: dict[str, Any]) -> dict[str, Any]:
    def path(**kwargs: Any) -> Path:
        return _dwi_path(output_dir, entities, **kwargs)

    label = " ".join(f"{k[:3] if k != 'acquisition' else 'acq'}-{v}" for k, v in entities.items())
    section: dict[str, Any] = {"title": label, "notes": [], "figures": [], "files": [], "measures": None,
                               "prediction": None, "variants": None, "loco": None}
    measures_file = path(desc="lesion", suffix="measures", extension=".json")
    measures = _read_json(measures_file)
    space = _space_of(output_dir, entities, measures)

    files = {
        "Model input (normalised trace, 96×96×24)": path(space="model", desc="preproc", suffix="dwi",
                                                          extension=".nii.gz"),
        "Brain mask (native grid)": path(desc="brain", suffix="mask", extension=".nii.gz"),
        "Lesion mask (model grid)": path(space="model", label="lesion", suffix="mask", extension=".nii.gz"),
        "Lesion measures": measures_file,
        "Predictions": path(desc="ensemble", suffix="predictions", extension=".tsv"),
    }
    if space:
        files.update({
            f"b0 in {space}": path(space=space, res=DEFAULT_RESOLUTION, desc="b0", suffix="dwiref", extension=".nii.gz"),
            f"Lesion mask in {space}": path(space=space, res=DEFAULT_RESOLUTION, label="lesion", suffix="mask",
                                            extension=".nii.gz"),
        })
        for scale in SCALES:
            files[f"Attention {scale} in {space}"] = path(space=space, res=DEFAULT_RESOLUTION, desc=scale, suffix="attention",
                                                          extension=".nii.gz")
    section["files"] = [{"label": k, "href": _rel(output_dir, v)} for k, v in files.items() if v.is_file()]

    if measures is None:
        section["notes"].append("No lesion measures were found for this participant.")
    else:
        volume = measures.get("LesionVolume")
        section["measures"] = [
            ("Lesion volume", "n/a" if volume is None else f"{float(volume):.2f} mL"),
            ("Lesion side", _fmt(measures.get("LesionSide"))),
            ("Template space", _fmt(measures.get("TemplateSpace"))),
        ]
        if measures.get("Note"):
            section["notes"].append(str(measures["Note"]))

    subject_title = label
    preproc = _load(files["Model input (normalised trace, 96×96×24)"])
    brain = _load(files["Brain mask (native grid)"])
    lesion_model = _load(files["Lesion mask (model grid)"])
    if preproc is not None:
        out = _figure_path(output_dir, entities, desc="brainmask", suffix="dwi")
        figures.plot_dwi_qc(preproc, out, brain_mask=brain, lesion=lesion_model,
                            title=f"{subject_title}: model input with brain mask (cyan) and lesion (red)")
        section["figures"].append({
            "title": "Brain mask and lesion",
            "src": _rel(output_dir, out),
            "caption": "Normalised trace image on the model grid; brain mask in cyan"
                       + ("" if brain is not None else " (not found)") + ", lesion in red"
                       + ("" if lesion_model is not None else " (no lesion mask)") + ".",
        })
    else:
        section["notes"].append("The model input image was not found: no brain-mask figure.")

    b0_tpl = _load(files[f"b0 in {space}"]) if space else None
    lesion_tpl = _load(files[f"Lesion mask in {space}"]) if space else None
    if space and space not in template_cache:
        template_cache[space] = _template(space)
    template = template_cache.get(space, (None, None))[0] if space else None
    if b0_tpl is not None and template is not None:
        out = _figure_path(output_dir, entities, space=space, desc="registration", suffix="dwiref")
        figures.plot_registration(b0_tpl, template, out, lesion=lesion_tpl,
                                  title=f"{subject_title}: b0 in {space} with the template's edges")
        section["figures"].append({
            "title": "Registration to the template",
            "src": _rel(output_dir, out),
            "caption": f"b0 warped into {space} (grey) with the edges of the template's T2w image (yellow) "
                       "and the warped lesion (red). Edges should follow the ventricles and the brain's outline.",
        })
    elif b0_tpl is None:
        section["notes"].append("The b0 image in template space was not found: no registration check.")
    else:
        section["notes"].append(f"The template {space} is unavailable: no registration check.")

    pred_file = files["Predictions"]
    preds = _read_tsv(pred_file)
    if preds is None or "model" not in preds or "probability_poor" not in preds:
        section["notes"].append("No prediction for this participant: the participant level was run without "
                                "a trained ensemble (--model), so there are no predictions or attention maps.")
    else:
        ens = preds[preds["model"].astype(str) == "ensemble"]
        var = preds[preds["model"].astype(str) != "ensemble"]
        p_var = pd.to_numeric(var["probability_poor"], errors="coerce").dropna()
        if len(ens):
            row = ens.iloc[0]
            p = float(row["probability_poor"])
            thr = float(row["threshold"]) if "threshold" in row and pd.notna(row["threshold"]) else float("nan")
            pred = row.get("prediction")
            section["prediction"] = [
                ("Probability of a poor outcome (ensemble)", f"{p:.3f}"),
                ("Decision threshold", _fmt(thr)),
                ("Prediction", "poor (mRS ≥ 3)" if (int(pred) == 1 if pd.notna(pred) else p >= thr)
                 else "good (mRS ≤ 2)"),
                ("Spread across variants (min – max)",
                 f"{p_var.min():.3f} – {p_var.max():.3f}" if len(p_var) else "n/a"),
                ("Standard deviation across variants", f"{p_var.std(ddof=0):.3f}" if len(p_var) else "n/a"),
            ]
        section["variants"] = _table(preds)
        out = _figure_path(output_dir, entities, desc="ensemble", suffix="predictions")
        figures.plot_variant_probabilities(preds, out, title=f"{subject_title}: probability of a poor outcome")
        section["figures"].append({"title": "Probabilities of the variants", "src": _rel(output_dir, out),
                                   "caption": "Each variant's probability (bars), the ensemble (mean, solid "
                                              "line) and the decision threshold (dashed)."})
        attention = {}
        if space:
            for scale in SCALES:
                img = _load(files[f"Attention {scale} in {space}"])
                if img is not None:
                    attention[scale] = img
        if attention:
            out = _figure_path(output_dir, entities, space=space, desc="overlay", suffix="attention")
            figures.plot_attention_overlays(attention, out, background=b0_tpl if b0_tpl is not None else template,
                                            lesion=lesion_tpl, title=f"{subject_title}: attention in {space}")
            section["figures"].append({
                "title": "Attention maps",
                "src": _rel(output_dir, out),
                "caption": "Attention a1–a3 (mean over the variants) in template space, in % of each map's "
                           "maximum, over the warped b0; lesion outlined in white.",
            })
        else:
            section["notes"].append("No attention maps in template space were found for this participant.")

    if loco is not None:
        row = loco[loco["participant_id"].astype(str) == f"sub-{entities['subject']}"]
        if len(row):
            r = row.iloc[0]
            section["loco"] = [
                ("Site (held out in its fold)", _fmt(r.get("site"))),
                ("Outcome", "poor" if r.get("outcome") == 1 else "good" if r.get("outcome") == 0 else "n/a"),
                ("Out-of-center ensemble probability", _fmt(r.get("ensemble"))),
            ]
    return section


def write_participant_report(output_dir: str | os.PathLike, subject: str, session: str | None = None) -> Path:
    """Write ``sub-<L>.html`` and its figures from the participant's existing outputs.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    subject : str
        Participant label, with or without ``sub-``.
    session : str, default=None
        Only this session (label without ``ses-``); None reports every session found.

    Returns
    -------
    pathlib.Path
        The report, ``OUTPUT_DIR/sub-<L>.html``.
    """
    out = Path(output_dir)
    subject = subject[4:] if subject.startswith("sub-") else subject
    if session is not None and session.startswith("ses-"):
        session = session[4:]
    loco = _read_tsv(derivative_path(out, None, datatype="group", desc="loco", suffix="predictions",
                                     extension=".tsv"))
    if loco is not None and "participant_id" not in loco:
        loco = None
    cache: dict[str, Any] = {}
    sections = [_participant_section(out, ents, loco, cache) for ents in _runs(out, subject, session)]
    html = _environment().get_template("participant.html").render(
        title=f"bids-stroke: sub-{subject}", subject=subject, sections=sections, version=__version__,
        group_report=_rel(out, report_path(out)) if report_path(out).is_file() or _group_dir(out).is_dir() else None,
    )
    return write_text(report_path(out, subject), html)


# ---------------------------------------------------------------------------------------
# Group report
# ---------------------------------------------------------------------------------------
def _metrics_view(metrics: pd.DataFrame) -> dict[str, Any]:
    columns = ["model", "n"] + [m for m in _METRICS if m in metrics]
    rows = []
    for _, r in metrics.iterrows():
        row = [_fmt(r["model"]), _fmt(r.get("n"))]
        for m in columns[2:]:
            lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
            text = f"{float(r[m]):.2f}" if pd.notna(r[m]) else "n/a"
            if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
                text += f" [{float(lo):.2f}–{float(hi):.2f}]"
            row.append(text)
        rows.append(row)
    return {"columns": [c.upper() if c in ("auc", "ppv", "npv") else c for c in columns], "rows": rows}


def _comparisons_view(comparisons: pd.DataFrame) -> dict[str, Any]:
    wanted = ["reference", "model", "n", "auc_reference", "auc_model", "delong_p", "reference_specificity",
              "reference_sensitivity", "model_specificity", "model_sensitivity", "mcnemar_p", "cutoff",
              "cutoff_units"]
    return _table(comparisons[[c for c in wanted if c in comparisons]])


def write_group_report(output_dir: str | os.PathLike) -> Path:
    """Write ``group.html`` and its figures from the existing group-level outputs.

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

    def gpath(desc: str, suffix: str, extension: str) -> Path:
        return derivative_path(out, None, datatype="group", desc=desc, suffix=suffix, extension=extension)

    notes: list[str] = []
    tables: dict[str, Any] = {"metrics": None, "comparisons": None, "cohort": None, "attention": None}
    figs: list[dict[str, str]] = []
    links: list[dict[str, str]] = []

    pred_file = gpath("loco", "predictions", ".tsv")
    metrics_file = gpath("loco", "metrics", ".tsv")
    comp_file = gpath("comparisons", "stats", ".tsv")
    cohort_file = gpath("cohort", "table", ".tsv")
    predictions, metrics = _read_tsv(pred_file), _read_tsv(metrics_file)
    comparisons, cohort = _read_tsv(comp_file), _read_tsv(cohort_file)
    for label, path, frame in (("Leave-one-center-out predictions", pred_file, predictions),
                               ("Metrics", metrics_file, metrics), ("Comparisons", comp_file, comparisons),
                               ("Cohort table", cohort_file, cohort)):
        if frame is not None:
            links.append({"label": label, "href": _rel(out, path)})
    group_run = any(f is not None for f in (predictions, metrics, comparisons, cohort))
    if not group_run:
        notes.append("The group level has not been run in this OUTPUT_DIR (no group/desc-loco_predictions.tsv, "
                     "metrics, comparisons or cohort table): run 'bids-stroke BIDS_DIR OUTPUT_DIR group' to add "
                     "cross-validated performance, statistics and group maps.")

    threshold = DECISION_THRESHOLD
    if metrics is not None and "model" in metrics and "threshold" in metrics:
        ens = metrics[metrics["model"].astype(str) == "ensemble"]
        if len(ens) and pd.notna(ens["threshold"].iloc[0]):
            threshold = float(ens["threshold"].iloc[0])

    summary: dict[str, Any] = {}
    if predictions is not None and {"outcome", "participant_id"} <= set(predictions.columns):
        models = [c for c in predictions.columns if c not in ID_COLUMNS]
        y = pd.to_numeric(predictions["outcome"], errors="coerce")
        summary = {"n": len(predictions), "n_poor": int((y == 1).sum()),
                   "n_sites": int(predictions["site"].nunique()) if "site" in predictions else None}
        if y.dropna().nunique() == 2 and models:
            reference = "ensemble" if "ensemble" in models else models[0]
            roc = gpath("roc", "metrics", ".png")
            figures.plot_roc(predictions, roc, models=models, reference=reference, threshold=threshold)
            figs.append({"title": "ROC curves", "src": _rel(out, roc),
                         "caption": f"Out-of-center ROC curves of every model. Dots: operating points at the "
                                    f"{reference}'s specificity (threshold {threshold:.2f}; dashed line); thin "
                                    "lines: the individual variants."})
            cal = gpath("calibration", "predictions", ".png")
            figures.plot_calibration(predictions, cal, models=[m for m in (reference, "lr_volume", "lr_aspects")
                                                                  if m in models])
            figs.append({"title": "Calibration", "src": _rel(out, cal),
                         "caption": "Observed fraction of poor outcomes per bin of predicted probability (10 "
                                    "equal-width bins; marker area ~ participants in the bin)."})
        else:
            notes.append("The predictions table holds one outcome class only: no ROC or calibration plot.")
    if metrics is not None and "model" in metrics:
        tables["metrics"] = _metrics_view(metrics)
    if comparisons is not None:
        tables["comparisons"] = _comparisons_view(comparisons)
    if cohort is not None:
        tables["cohort"] = _table(cohort, 3)

    space = _group_space(out)
    maps: list[dict[str, Any]] = []
    if space is None:
        if group_run:
            notes.append("No group attention or lesion-probability maps were found (the participants' "
                         "template-space attention maps may be missing).")
    else:
        template, brain = _template(space)
        stats_file = summary_path(out, space=space)
        stats = _read_tsv(stats_file)
        if stats is not None:
            links.append({"label": "Attention summary", "href": _rel(out, stats_file)})
            tables["attention"] = _table(stats.drop(columns=[c for c in ("attention_map", "lesion_map")
                                                             if c in stats]), 3)
        for hemi, side in HEMISPHERES.items():
            for group in (ALL_GROUP, *CLASSIFICATION_GROUPS):
                rows = []
                counts = []
                lesion_file = group_map_path(out, space=space, hemi=hemi, group=group)
                lesion = _load(lesion_file)
                if lesion is not None:
                    n = (_read_json(lesion_file.with_name(lesion_file.name.replace(".nii.gz", ".json"))) or {}
                         ).get("NumberOfParticipants")
                    rows.append(("lesion probability", lesion))
                    counts.append(f"lesion n = {_fmt(n)}")
                for scale in SCALES:
                    att_file = group_map_path(out, space=space, hemi=hemi, group=group, scale=scale)
                    img = _load(att_file)
                    if img is not None:
                        n = (_read_json(att_file.with_name(att_file.name.replace(".nii.gz", ".json"))) or {}
                             ).get("NumberOfParticipants")
                        rows.append((f"attention {scale}", img))
                        counts.append(f"{scale} n = {_fmt(n)}")
                name = "all participants" if group == ALL_GROUP else group
                if not rows:
                    maps.append({"title": f"{side.capitalize()} lesions, {name}", "src": None,
                                 "caption": "No participant in this group."})
                    continue
                png = derivative_path(out, None, datatype="group", space=space, res=DEFAULT_RESOLUTION, hemi=hemi, desc=group,
                                      suffix="attention", extension=".png")
                figures.plot_montage(rows, png, background=template,
                                     cmaps=["Blues" if r[0].startswith("lesion") else "hot" for r in rows],
                                     title=f"{side.capitalize()} lesions, {name} ({space})")
                maps.append({"title": f"{side.capitalize()} lesions, {name}", "src": _rel(out, png),
                             "caption": "; ".join(counts) + ". Each row in % of its map's maximum; axial "
                                        "slices at MNI z = −26 … 64 mm; left hemisphere on the left."})

    participants = [{"label": s, "href": _rel(out, report_path(out, s))} for s in find_subjects(out)
                    if report_path(out, s).is_file()]
    versions = software_versions()
    citation = write_citation(out)
    html = _environment().get_template("group.html").render(
        title="bids-stroke: group report", version=__version__, notes=notes, summary=summary, tables=tables,
        figures=figs, maps=maps, links=links, participants=participants, versions=versions,
        methods=_methods_text(versions, space), citations=_cited(out), citation_file=_rel(out, citation),
        threshold=threshold,
    )
    return write_text(report_path(out), html)


# ---------------------------------------------------------------------------------------
# Methods and citations
# ---------------------------------------------------------------------------------------
def citation_path(output_dir: str | os.PathLike) -> Path:
    """``OUTPUT_DIR/logs/CITATION.md``."""
    return Path(output_dir) / "logs" / "CITATION.md"


def _data_sources(output_dir: Path) -> list[str]:
    """Extra citations for the data used: SOOP (simulated cohorts), ISLES."""
    description = _read_json(output_dir / "dataset_description.json") or {}
    text = json.dumps(description.get("SourceDatasets", [])).lower()
    keys = []
    if "simulat" in text or "soop" in text or "ds004889" in text:
        keys.append("soop")
    if "isles" in text:
        keys.append("isles")
    return keys


def _cited(output_dir: Path) -> list[str]:
    keys = ["moulton2022", "jetley2018", "ants", "dipy", "nipype", "keras", "tensorflow", "delong", "bids",
            "fonov", *_data_sources(output_dir)]
    return [CITATIONS[k] for k in keys]


def _methods_text(versions: dict[str, str], space: str | None) -> str:
    tpl = space or DEFAULT_TEMPLATE
    return (
        f"Results were produced by bids-stroke {versions['bids-stroke']}, a BIDS App reimplementing the method "
        "of Moulton et al. (2022). For each participant, the b = 0 and trace (high-b) images were taken from "
        "the diffusion series; the brain was extracted with dipy's median_otsu "
        f"(dipy {versions['dipy']}); intensities were divided by the mean of the non-lesioned parenchyma; the "
        "brain's bounding box was resampled to a 96 × 96 × 24 grid. The b = 0 image was registered to the "
        f"{tpl} T2-weighted template (2 mm) with ANTs (ANTsPy {versions['ANTsPy']}); lesion masks and "
        "attention maps were warped with the same transforms. Workflows ran on nipype "
        f"{versions['nipype']}. Outcome (poor: mRS ≥ 3) was predicted by an ensemble of eight 3D "
        "convolutional networks with trainable attention (Jetley et al., 2018) implemented in Keras "
        f"{versions['Keras']} (TensorFlow {versions['TensorFlow']}), trained with leave-one-center-out "
        "cross-validation. Metrics were computed on the merged out-of-center predictions with 95 % "
        "bootstrap confidence intervals; areas under the ROC curve were compared with DeLong's test and "
        "sensitivities at matched specificity with McNemar's test (scikit-learn "
        f"{versions['scikit-learn']}, statsmodels {versions['statsmodels']}, SciPy {versions['SciPy']}). "
        "Group attention and lesion probability maps are voxel-wise means over the participants of each "
        "lesion hemisphere and classification group."
    )


def citation_markdown(output_dir: str | os.PathLike) -> str:
    """Content of ``logs/CITATION.md``: methods boilerplate, software versions, references."""
    out = Path(output_dir)
    versions = software_versions()
    space = _group_space(out)
    lines = ["# Citing bids-stroke", "",
             "The following boilerplate describes the processing; copy it into your methods section and "
             "cite the references below.", "", "## Methods", "", _methods_text(versions, space), "",
             "## Software versions", ""]
    lines += [f"- {label}: {version}" for label, version in versions.items()]
    lines += ["", "## References", ""]
    lines += [f"{i}. {text}" for i, text in enumerate(_cited(out), start=1)]
    return "\n".join(lines) + "\n"


def write_citation(output_dir: str | os.PathLike) -> Path:
    """Write ``OUTPUT_DIR/logs/CITATION.md`` (:func:`citation_markdown`)."""
    return write_text(citation_path(output_dir), citation_markdown(output_dir))


# ---------------------------------------------------------------------------------------
# Every report
# ---------------------------------------------------------------------------------------
def write_reports(output_dir: str | os.PathLike, *, subjects: Iterable[str] | None = None) -> list[Path]:
    """Write every report that the outputs in OUTPUT_DIR allow, recomputing nothing.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    subjects : iterable of str, default=None
        Participant labels (with or without ``sub-``); None means every participant with
        outputs (:func:`find_subjects`).

    Returns
    -------
    list of pathlib.Path
        The participant reports, then ``logs/CITATION.md`` and ``group.html``.
    """
    out = Path(output_dir)
    labels: Sequence[str] = find_subjects(out) if subjects is None else \
        [s[4:] if s.startswith("sub-") else s for s in subjects]
    written = [write_participant_report(out, label) for label in labels]
    group = write_group_report(out)
    return [*written, citation_path(out), group]
