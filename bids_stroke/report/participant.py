"""The participant report, ``OUTPUT_DIR/sub-<L>.html``, figures in ``sub-<L>/figures/``.

One section per model input of the participant (session, acquisition, run): lesion
measures, the prediction of the ensemble and of its variants, the out-of-center
prediction of the group level, QC figures (brain mask, registration) and the attention
maps, each replaced by a note when its inputs are missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from bids_stroke import __version__
from bids_stroke.bids.naming import (
    ANY,
    derivative_path,
    find_derivatives,
    parse_derivative,
    participant_id,
    report_path,
    sidecar_path,
    subject_label,
)
from bids_stroke.bids.writers import write_text
from bids_stroke.model.spec import SCALES
from bids_stroke.report.common import (
    environment,
    fmt,
    group_dir,
    load_image,
    loco_predictions_path,
    model_inputs,
    read_json,
    read_tsv,
    rel,
    table,
    template_images,
)
from bids_stroke.report.figures import plot_attention_overlays, plot_dwi_qc, plot_registration
from bids_stroke.report.plots import plot_variant_probabilities
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

__all__ = ["write_participant_report", "write_participant_reports"]

_MODEL_INPUT = "Model input (normalised trace, 96×96×24)"
_BRAIN_MASK = "Brain mask (native grid)"
_LESION_MASK = "Lesion mask (model grid)"
_AUTO_MASK = "Automatic lesion mask (native grid)"


# ---------------------------------------------------------------------------------------
# Finding a participant's outputs
# ---------------------------------------------------------------------------------------
def _runs(output_dir: Path, subject: str, session: str | None) -> list[dict[str, str]]:
    """Entity sets (subject, session, acquisition, run) of a participant's outputs."""
    wanted = {"subject": subject} if session is None else {"subject": subject, "session": session}
    return model_inputs(output_dir, **wanted) or [wanted]


def _space_of(output_dir: Path, entities: dict[str, str], measures: dict[str, Any] | None) -> str | None:
    """Template space of a run: its lesion measures', else that of a b0 in its folder."""
    if measures and measures.get("TemplateSpace"):
        return str(measures["TemplateSpace"])
    for path in find_derivatives(output_dir, subject=entities["subject"], session=entities.get("session"),
                                 datatype="dwi", space=ANY, res=DEFAULT_RESOLUTION, hemi=None, label=None,
                                 desc="b0", suffix="dwiref", extension=".nii.gz"):
        return parse_derivative(path, output_dir)["space"]
    return None


def _files(output_dir: Path, entities: dict[str, str], space: str | None) -> dict[str, Path]:
    """Label -> path of the outputs a section links to (and draws from), found or not."""
    def path(**kwargs: Any) -> Path:
        return derivative_path(output_dir, entities, **kwargs)

    files = {
        _MODEL_INPUT: path(space="model", desc="preproc", suffix="dwi", extension=".nii.gz"),
        _BRAIN_MASK: path(desc="brain", suffix="mask", extension=".nii.gz"),
        _LESION_MASK: path(space="model", label="lesion", suffix="mask", extension=".nii.gz"),
        _AUTO_MASK: path(label="lesion", desc="auto", suffix="mask", extension=".nii.gz"),
        "Lesion measures": path(desc="lesion", suffix="measures", extension=".json"),
        "Predictions": path(desc="ensemble", suffix="predictions", extension=".tsv"),
    }
    if space:
        res = DEFAULT_RESOLUTION
        files.update({
            f"b0 in {space}": path(space=space, res=res, desc="b0", suffix="dwiref", extension=".nii.gz"),
            f"Lesion mask in {space}": path(space=space, res=res, label="lesion", suffix="mask",
                                            extension=".nii.gz"),
        })
        for scale in SCALES:
            files[f"Attention {scale} in {space}"] = path(space=space, res=res, desc=scale, suffix="attention",
                                                          extension=".nii.gz")
    return files


def _figure_path(output_dir: Path, entities: dict[str, str], **kwargs: Any) -> Path:
    return derivative_path(output_dir, entities, datatype="figures", extension=".png", **kwargs)


# ---------------------------------------------------------------------------------------
# The parts of a section
# ---------------------------------------------------------------------------------------
#: ``LesionSource`` of the lesion measures -> how the report names it.
_SOURCE_TEXT = {"given": "given (a lesion dataset)", "auto": "automatic (trace + ADC)"}


def _add_measures(section: dict[str, Any], measures: dict[str, Any] | None) -> None:
    if measures is None:
        section["notes"].append("No lesion measures were found for this participant.")
        return
    volume = measures.get("LesionVolume")
    source = measures.get("LesionSource") or ("given" if volume is not None else None)
    section["measures"] = [
        ("Lesion mask", _SOURCE_TEXT.get(source, "none")),
        ("Lesion volume", "n/a" if volume is None else f"{float(volume):.2f} mL"),
        ("Lesion side", fmt(measures.get("LesionSide"))),
        ("Template space", fmt(measures.get("TemplateSpace"))),
    ]
    if measures.get("AutoLesionVolume") is not None:
        section["measures"] += [
            ("Automatic mask's volume", f"{float(measures['AutoLesionVolume']):.2f} mL"),
            ("Dice of the automatic and the given mask", fmt(measures.get("AutoLesionDice"))),
        ]
    if source == "auto":
        section["badges"].append("automatic lesion mask (trace + ADC): not checked by an expert")
    if measures.get("Note"):
        section["notes"].append(str(measures["Note"]))


def _add_brain_mask_figure(section: dict[str, Any], output_dir: Path, entities: dict[str, str],
                           files: dict[str, Path]) -> None:
    preproc = load_image(files[_MODEL_INPUT])
    brain = load_image(files[_BRAIN_MASK])
    lesion_model = load_image(files[_LESION_MASK])
    if preproc is None:
        section["notes"].append("The model input image was not found: no brain-mask figure.")
        return
    out = _figure_path(output_dir, entities, desc="brainmask", suffix="dwi")
    plot_dwi_qc(preproc, out, brain_mask=brain, lesion=lesion_model,
                title=f"{section['title']}: model input with brain mask (cyan) and lesion (red)")
    section["figures"].append({
        "title": "Brain mask and lesion",
        "src": rel(output_dir, out),
        "caption": "Normalised trace image on the model grid; brain mask in cyan"
                   + ("" if brain is not None else " (not found)") + ", lesion in red"
                   + ("" if lesion_model is not None else " (no lesion mask)") + ".",
    })


def _add_auto_mask_figure(section: dict[str, Any], output_dir: Path, entities: dict[str, str],
                          files: dict[str, Path], measures: dict[str, Any] | None) -> None:
    """The automatic mask over the model input, beside the given one's figure when both exist."""
    preproc, auto = load_image(files[_MODEL_INPUT]), load_image(files[_AUTO_MASK])
    if preproc is None or auto is None:
        return
    out = _figure_path(output_dir, entities, label="lesion", desc="auto", suffix="dwi")
    plot_dwi_qc(preproc, out, lesion=auto, title=f"{section['title']}: automatic lesion mask (red)")
    dice = (measures or {}).get("AutoLesionDice")
    section["figures"].append({
        "title": "Automatic lesion mask",
        "src": rel(output_dir, out),
        "caption": "Normalised trace image on the model grid with the automatic lesion mask (trace + ADC) "
                   "in red" + (f"; its Dice with the given mask (previous figure) is {float(dice):.2f}"
                               if dice is not None else "") + ".",
    })


def _add_registration_figure(section: dict[str, Any], output_dir: Path, entities: dict[str, str],
                             space: str | None, b0_tpl: Any, lesion_tpl: Any, template: Any) -> None:
    if b0_tpl is not None and template is not None:
        out = _figure_path(output_dir, entities, space=space, desc="registration", suffix="dwiref")
        plot_registration(b0_tpl, template, out, lesion=lesion_tpl,
                          title=f"{section['title']}: b0 in {space} with the template's edges")
        section["figures"].append({
            "title": "Registration to the template",
            "src": rel(output_dir, out),
            "caption": f"b0 warped into {space} (grey) with the edges of the template's T2w image (yellow) "
                       "and the warped lesion (red). Edges should follow the ventricles and the brain's outline.",
        })
    elif b0_tpl is None:
        section["notes"].append("The b0 image in template space was not found: no registration check.")
    else:
        section["notes"].append(f"The template {space} is unavailable: no registration check.")


def _prediction_rows(preds: pd.DataFrame) -> list[tuple[str, str]] | None:
    """The ensemble's probability, threshold and prediction, and the spread of the variants."""
    ens = preds[preds["model"].astype(str) == "ensemble"]
    var = preds[preds["model"].astype(str) != "ensemble"]
    p_var = pd.to_numeric(var["probability_poor"], errors="coerce").dropna()
    if not len(ens):
        return None
    row = ens.iloc[0]
    p = float(row["probability_poor"])
    thr = float(row["threshold"]) if "threshold" in row and pd.notna(row["threshold"]) else float("nan")
    pred = row.get("prediction")
    return [
        ("Probability of a poor outcome (ensemble)", f"{p:.3f}"),
        ("Decision threshold", fmt(thr)),
        ("Prediction", "poor (mRS ≥ 3)" if (int(pred) == 1 if pd.notna(pred) else p >= thr)
         else "good (mRS ≤ 2)"),
        ("Spread across variants (min – max)",
         f"{p_var.min():.3f} – {p_var.max():.3f}" if len(p_var) else "n/a"),
        ("Standard deviation across variants", f"{p_var.std(ddof=0):.3f}" if len(p_var) else "n/a"),
    ]


def _add_attention_figure(section: dict[str, Any], output_dir: Path, entities: dict[str, str],
                          files: dict[str, Path], space: str | None, background: Any, lesion_tpl: Any) -> None:
    attention = {}
    if space:
        for scale in SCALES:
            img = load_image(files[f"Attention {scale} in {space}"])
            if img is not None:
                attention[scale] = img
    if not attention:
        section["notes"].append("No attention maps in template space were found for this participant.")
        return
    out = _figure_path(output_dir, entities, space=space, desc="overlay", suffix="attention")
    plot_attention_overlays(attention, out, background=background, lesion=lesion_tpl,
                            title=f"{section['title']}: attention in {space}")
    section["figures"].append({
        "title": "Attention maps",
        "src": rel(output_dir, out),
        "caption": "Attention a1–a3 (mean over the variants) in template space, in % of each map's "
                   "maximum, over the warped b0; lesion outlined in white.",
    })


def _add_predictions(section: dict[str, Any], output_dir: Path, entities: dict[str, str],
                     files: dict[str, Path], space: str | None, background: Any, lesion_tpl: Any) -> None:
    preds = read_tsv(files["Predictions"])
    if preds is None or "model" not in preds or "probability_poor" not in preds:
        section["notes"].append("No prediction for this participant: the participant level was run without "
                                "a trained ensemble (--model), so there are no predictions or attention maps.")
        return
    section["prediction"] = _prediction_rows(preds)
    card = (read_json(sidecar_path(files["Predictions"])) or {}).get("ModelCard")
    if section["prediction"] is not None and card:
        section["prediction"].append(("Model (its card's summary)", str(card)))
    section["variants"] = table(preds)
    out = _figure_path(output_dir, entities, desc="ensemble", suffix="predictions")
    plot_variant_probabilities(preds, out, title=f"{section['title']}: probability of a poor outcome")
    section["figures"].append({"title": "Probabilities of the variants", "src": rel(output_dir, out),
                               "caption": "Each variant's probability (bars), the ensemble (mean, solid "
                                          "line) and the decision threshold (dashed)."})
    _add_attention_figure(section, output_dir, entities, files, space, background, lesion_tpl)


def _loco_rows(loco: pd.DataFrame | None, subject: str) -> list[tuple[str, str]] | None:
    """The participant's row of the group level's out-of-center predictions."""
    if loco is None:
        return None
    row = loco[loco["participant_id"].astype(str) == participant_id(subject)]
    if not len(row):
        return None
    r = row.iloc[0]
    return [
        ("Site (held out in its fold)", fmt(r.get("site"))),
        ("Outcome", "poor" if r.get("outcome") == 1 else "good" if r.get("outcome") == 0 else "n/a"),
        ("Out-of-center ensemble probability", fmt(r.get("ensemble"))),
    ]


def _participant_section(output_dir: Path, entities: dict[str, str], loco: pd.DataFrame | None,
                         template_cache: dict[str, Any]) -> dict[str, Any]:
    """Data of one section of the participant report (one model input)."""
    label = " ".join(f"{k[:3] if k != 'acquisition' else 'acq'}-{v}" for k, v in entities.items())
    section: dict[str, Any] = {"title": label, "notes": [], "badges": [], "figures": [], "files": [], "measures": None,
                               "prediction": None, "variants": None, "loco": None}
    measures_file = derivative_path(output_dir, entities, desc="lesion", suffix="measures", extension=".json")
    measures = read_json(measures_file)
    space = _space_of(output_dir, entities, measures)
    files = _files(output_dir, entities, space)
    section["files"] = [{"label": k, "href": rel(output_dir, v)} for k, v in files.items() if v.is_file()]
    _add_measures(section, measures)
    _add_brain_mask_figure(section, output_dir, entities, files)
    _add_auto_mask_figure(section, output_dir, entities, files, measures)

    b0_tpl = load_image(files[f"b0 in {space}"]) if space else None
    lesion_tpl = load_image(files[f"Lesion mask in {space}"]) if space else None
    if space and space not in template_cache:
        template_cache[space] = template_images(space)
    template = template_cache.get(space, (None, None))[0] if space else None
    _add_registration_figure(section, output_dir, entities, space, b0_tpl, lesion_tpl, template)
    _add_predictions(section, output_dir, entities, files, space,
                     b0_tpl if b0_tpl is not None else template, lesion_tpl)
    section["loco"] = _loco_rows(loco, entities["subject"])
    return section


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------
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
    subject = subject_label(subject)
    if session is not None and session.startswith("ses-"):
        session = session[4:]
    loco = read_tsv(loco_predictions_path(out))
    if loco is not None and "participant_id" not in loco:
        loco = None
    cache: dict[str, Any] = {}
    sections = [_participant_section(out, ents, loco, cache) for ents in _runs(out, subject, session)]
    group_report = report_path(out)
    html = environment().get_template("participant.html").render(
        title=f"bids-stroke: {participant_id(subject)}", subject=subject, sections=sections, version=__version__,
        group_report=rel(out, group_report) if group_report.is_file() or group_dir(out).is_dir() else None,
    )
    return write_text(report_path(out, subject), html)


def write_participant_reports(output_dir: str | os.PathLike, runs, *, n_procs: int = 1,
                              initializer=None) -> list[Path]:
    """:func:`write_participant_report` for many participants, on ``n_procs`` processes.

    Each report takes about half a second (mostly its figures); a cohort's reports are
    drawn in parallel by fresh worker processes (``forkserver``: the caller may have
    loaded TensorFlow, which a forked child must not inherit).

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    runs : iterable of (str, str or None)
        ``(subject, session)`` pairs (see :func:`write_participant_report`).
    n_procs : int, default=1
        Worker processes; 1 writes the reports in this process.
    initializer : callable, optional
        Run once in each worker process first (e.g. to set up logging).

    Returns
    -------
    list of pathlib.Path
        The reports, in the order of ``runs``.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    runs = list(runs)
    n_procs = max(1, min(int(n_procs), len(runs)))
    subjects = [subject for subject, _ in runs]
    sessions = [session for _, session in runs]
    if n_procs == 1:
        return list(map(write_participant_report, [output_dir] * len(runs), subjects, sessions))
    with ProcessPoolExecutor(n_procs, mp_context=multiprocessing.get_context("forkserver"),
                             initializer=initializer) as pool:
        return list(pool.map(write_participant_report, [output_dir] * len(runs), subjects, sessions))
