"""Running a nipype workflow with the configured plugin, and reading its crash files.

The plugin (``MultiProc`` on one machine, ``SLURM``/``SGE``/... on a cluster) spreads
the workflow's steps over the resources given. The working folder (``--work-dir``) keeps
every finished step: a rerun recomputes nothing whose inputs have not changed (by
content, not by size and time stamp). A failing step
does not stop the run; its crash file tells which node failed and why.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nipype.pipeline.plugins.multiproc import MultiProcPlugin
from scipy import sparse

from bids_stroke.bids.writers import write_text
from bids_stroke.config import Config

LOGGER = logging.getLogger("bids_stroke")

_ERROR_LINE = re.compile(r"^\s*(?:[\w.]*\.)?(\w+(?:Error|Stage|Failed)): (.+)$", re.MULTILINE)


def run_workflow(workflow, config: Config, status_callback=None) -> Path:
    """Run a nipype workflow with the configured plugin; return this run's crash folder.

    A failing step does not raise here: the caller reads the crash files
    (:func:`read_crashes`, :func:`crashed_jobs`).
    """
    crash_dir = Path(config.work_dir) / "crash" / config.run_id
    workflow.config["execution"] = {
        "crashdump_dir": str(crash_dir),
        "crashfile_format": "txt",
        "stop_on_first_crash": config.stop_on_first_crash,
        # a finished step is reused only if its input files have the same content: an
        # input edited in place with its size and time stamp kept is seen
        "hash_method": "content",
        "remove_unnecessary_outputs": False,
        # the longest pause of the scheduler between rounds; MultiProc's pause ends when a
        # job ends (_MultiProcPlugin), other plugins' workers may wait this long for the next
        # step (0.5 s left the two workers of a 16-subject run idle for a quarter of it)
        "poll_sleep_duration": 0.1,
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
        with _quiet_workers(), _frozen_heap():
            # the plugin starts its worker pool when made, with the initializer set above
            plugin = _MultiProcPlugin(plugin_args=plugin_args) if config.nipype_plugin == "MultiProc" \
                else config.nipype_plugin
            workflow.run(plugin=plugin, plugin_args=plugin_args)
    except RuntimeError as exc:  # nipype: "Workflow did not execute cleanly"
        LOGGER.debug("nipype: %s", exc)
    except KeyboardInterrupt:
        # the workers ignore Ctrl-C (no tracebacks of theirs after "interrupted"): stop them,
        # without the pool's report of each future its stopped workers broke
        logging.getLogger("concurrent.futures").disabled = True
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    return crash_dir


def _worker_initializer(cwd: str) -> None:
    """nipype's MultiProc worker set-up, and Ctrl-C left to the main process.

    A worker that took the terminal's SIGINT would print its own KeyboardInterrupt
    traceback; the main process stops the workers instead (:func:`run_workflow`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(cwd)
    os.environ["NIPYPE_NO_ET"] = "1"


class _ColumnCounts(sparse.lil_matrix):
    """nipype's dependency matrix (row i: the jobs waiting for job i), with a fast column sum.

    nipype's schedulers compute ``depidx.sum(axis=0)`` (how many unfinished steps each
    step waits for) twice per poll; scipy sums a LIL matrix by converting it, which with
    the 6,000 steps of 300 participants kept the main process at 100 % of one of two
    cores (most of it in that sum). The sum here reads the matrix's row lists directly.
    """

    def sum(self, axis=None, dtype=None, out=None):
        if axis not in (0, -2) or dtype is not None or out is not None:
            return super().sum(axis=axis, dtype=dtype, out=out)
        columns = np.fromiter(itertools.chain.from_iterable(self.rows), dtype=np.intp)
        values = np.fromiter(itertools.chain.from_iterable(self.data), dtype=np.float64, count=len(columns))
        return np.asmatrix(np.bincount(columns, weights=values, minlength=self.shape[1]).astype(self.dtype))


class _MultiProcPlugin(MultiProcPlugin):
    """nipype's MultiProc for cohorts of thousands of steps.

    What its main process does for each step was made cheaper, because on two cores it
    takes its time from the workers:

    * the dependency counts are read from :class:`_ColumnCounts`;
    * the step-to-parent references (``refidx``, whose columns are read and cleared as each
      step finishes) are kept by column (CSC), not by row;
    * before each round of submissions the objects created since the last round are
      frozen (see :func:`_frozen_heap`), so that the ``gc.collect()`` that MultiProc calls
      in each round walks only what that round created;
    * its pause between rounds (``poll_sleep_duration``) ends as soon as a job ends, so a
      worker that finished a step gets the next without waiting for the pause's end.
    """

    def __init__(self, plugin_args=None):
        super().__init__(plugin_args=plugin_args)
        self._job_ended = threading.Event()

    def run(self, graph, config, updatehash=False):
        from nipype.pipeline.plugins import base

        pause, base.sleep = base.sleep, self._pause
        try:
            return super().run(graph, config, updatehash=updatehash)
        finally:
            base.sleep = pause

    def _pause(self, seconds: float) -> None:
        """The scheduler's pause between rounds (nipype's ``sleep``), cut short by a job's end."""
        self._job_ended.wait(seconds)
        self._job_ended.clear()

    def _async_callback(self, args):  # in the pool's thread, as each job ends
        super()._async_callback(args)
        self._job_ended.set()

    def _generate_dependency_list(self, graph):
        super()._generate_dependency_list(graph)
        self.depidx = _ColumnCounts(self.depidx)
        self.refidx = sparse.csc_matrix(self.refidx)

    def _send_procs_to_workers(self, updatehash=False, graph=None):
        gc.freeze()
        return super()._send_procs_to_workers(updatehash=updatehash, graph=graph)


@contextlib.contextmanager
def _frozen_heap():
    """Exclude the objects alive now from Python's garbage collections within the block.

    MultiProc's scheduler calls ``gc.collect()`` before each round of submissions and
    after each step it runs itself (the sinks); each call walked the whole heap (the
    BIDS layout, the graph of every participant's steps), which took most of the main
    process's time and left the workers waiting: 33 s of a 115 s run of 16 subjects.
    Frozen objects are never collected, so only what the run itself creates is walked.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _quiet_workers():
    """Start nipype's MultiProc workers with :func:`_worker_initializer`.

    The pool pickles its initializer by reference, so the workers (fresh processes)
    import it from this module.
    """
    from nipype.pipeline.plugins import multiproc

    original = multiproc.process_initializer
    multiproc.process_initializer = _worker_initializer
    try:
        yield
    finally:
        multiproc.process_initializer = original


#: Prefix of a run's temporary folder in the system's (``bids-stroke-<pid>``).
RUN_TMP_PREFIX = "bids-stroke-"


@contextlib.contextmanager
def run_tmp():
    """Give this process and its workers a temporary folder of their own, for a run.

    ANTs' and multiprocessing's temporary folders (``bids-stroke-reg-*``, ``pymp-*``) go
    into ``<system temp>/bids-stroke-<pid>/``. A run killed with kill -9 cannot remove
    them; the next run removes the folders of processes that no longer exist. The folder
    sits in the system's temporary folder, not in the work folder, because a UNIX socket
    of multiprocessing lives in it and such paths may not exceed about 100 characters.
    The previous temporary folder is restored when the run ends.

    Yields
    ------
    pathlib.Path
        The temporary folder.
    """
    system = Path(tempfile.gettempdir())
    for stale in system.glob(RUN_TMP_PREFIX + "*"):
        pid = stale.name.removeprefix(RUN_TMP_PREFIX)
        if pid.isdigit() and not _alive(int(pid)) and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = system / f"{RUN_TMP_PREFIX}{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    try:
        yield tmp
    finally:
        if before[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before[0]
        tempfile.tempdir = before[1]


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (possibly another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




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


@dataclass(frozen=True)
class Crash:
    """What one of nipype's text crash files tells.

    Attributes
    ----------
    path : pathlib.Path
        The crash file.
    node : str or None
        Full name of the node that failed (``workflow.sub_workflow.node``), when given.
    errors : tuple of (str, str)
        (exception class, message) of every error line of the traceback, in order.
    last_line : str
        The last non-blank line of the file ("crashed" when it has none).
    """

    path: Path
    node: str | None
    errors: tuple
    last_line: str


def read_crashes(crash_dir: Path) -> list[Crash]:
    """nipype's text crash files in ``crash_dir`` (``crash-*.txt``), sorted by name."""
    crashes = []
    for path in sorted(Path(crash_dir).glob("crash-*.txt")):
        text = path.read_text(errors="replace")
        node = re.search(r"^Node: (\S+)", text, re.MULTILINE)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        crashes.append(Crash(path=path, node=node.group(1) if node else None,
                             errors=tuple(_ERROR_LINE.findall(text)),
                             last_line=lines[-1] if lines else "crashed"))
    return crashes


def crashed_jobs(crash_dir: Path) -> dict[str, str]:
    """Node name -> last error line, from nipype's text crash files in ``crash_dir``."""
    failures = {}
    for crash in read_crashes(crash_dir):
        reason = f"{crash.errors[-1][0]}: {crash.errors[-1][1].strip()}" if crash.errors else "crashed"
        failures[crash.node or crash.path.name] = reason
    return failures


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
