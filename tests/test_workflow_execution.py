"""Running nipype workflows: the work folder's cache sees changed inputs."""

from __future__ import annotations

import os

import pytest
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.config import Config
from bids_stroke.workflows.execution import run_workflow


def _read(in_file):
    with open(in_file) as handle:
        return handle.read()


def _run(tmp_path, in_file):
    workflow = pe.Workflow(name="wf", base_dir=str(tmp_path / "work"))
    node = pe.Node(niu.Function(input_names=["in_file"], output_names=["text"], function=_read), name="read")
    node.inputs.in_file = str(in_file)
    workflow.add_nodes([node])
    config = Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
                    work_dir=tmp_path / "work", nipype_plugin="Linear")
    run_workflow(workflow, config)
    from nipype.utils.filemanip import loadpkl

    return loadpkl(tmp_path / "work" / "wf" / "read" / "result_read.pklz").outputs.text


def test_rerun_sees_an_input_edited_in_place_with_the_same_size_and_time(tmp_path):
    """A lesion mask edited in place, size and mtime kept, must not give the old result."""
    in_file = tmp_path / "mask.txt"
    in_file.write_text("204 mL")
    stat = in_file.stat()
    assert _run(tmp_path, in_file) == "204 mL"
    in_file.write_text("79 mL!")
    os.utime(in_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert in_file.stat().st_size == stat.st_size and in_file.stat().st_mtime_ns == stat.st_mtime_ns
    assert _run(tmp_path, in_file) == "79 mL!"


# --- what a failing step becomes ---------------------------------------------------------
CRASH = """Node: participant_wf.sub_01_wf.{node}
Working directory: /work/participant_wf/sub_01_wf/{node}

Traceback (most recent call last):
  File "/x/nipype/pipeline/plugins/multiproc.py", line 67, in run_node
    result["result"] = node.run(updatehash=updatehash)
{error}
"""


def _crashes(tmp_path, **errors):
    folder = tmp_path / "crash"
    folder.mkdir(parents=True)
    for i, (node, error) in enumerate(errors.items()):
        (folder / f"crash-{i}-{node}.txt").write_text(CRASH.format(node=node, error=error))
    return folder


def test_a_full_disk_in_a_worker_is_exit_73_and_an_unforeseen_error_names_the_input(tmp_path):
    from bids_stroke.errors import ExitCode
    from bids_stroke.workflows.participant_run import crashed_participants

    names = {"sub_01_wf": ("01", None)}
    full = _crashes(tmp_path / "a", ds_preproc="OSError: [Errno 28] No space left on device: '/out/sub-01/x.nii.gz'")
    (failure,) = crashed_participants(full, names).values()
    assert failure.exit_code == ExitCode.CANNOT_CREATE_OUTPUT
    assert str(failure) == "ds_preproc: [Errno 28] No space left on device: '/out/sub-01/x.nii.gz'"
    odd = _crashes(tmp_path / "b", registration="ZeroDivisionError: float division by zero")
    (failure,) = crashed_participants(odd, names, {("01", None): "/bids/sub-01/dwi/sub-01_dwi.nii.gz"}).values()
    assert failure.exit_code == ExitCode.FAILURE
    assert str(failure).startswith("registration: ZeroDivisionError: float division by zero "
                                   "(input /bids/sub-01/dwi/sub-01_dwi.nii.gz; crash file ")


def _sigint_handler():
    import signal

    return str(signal.getsignal(signal.SIGINT))


def test_workers_leave_ctrl_c_to_the_main_process(tmp_path):
    """A worker taking the terminal's SIGINT printed its own traceback after 'interrupted'."""
    import signal

    workflow = pe.Workflow(name="wf", base_dir=str(tmp_path / "work"))
    workflow.add_nodes([pe.Node(niu.Function(output_names=["handler"], function=_sigint_handler), name="ask")])
    config = Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
                    work_dir=tmp_path / "work", nprocs=2)
    run_workflow(workflow, config)
    from nipype.utils.filemanip import loadpkl

    assert loadpkl(tmp_path / "work/wf/ask/result_ask.pklz").outputs.handler == str(signal.SIG_IGN)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the main process keeps it


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from bids_stroke.workflows.execution import RUN_TMP_PREFIX, run_tmp

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    left = tmp_path / f"{RUN_TMP_PREFIX}{dead}" / "bids-stroke-reg-abc"  # what kill -9 left
    left.mkdir(parents=True)
    (left / "Composite.h5").write_bytes(b"x")
    alive = tmp_path / f"{RUN_TMP_PREFIX}1"  # another process's (pid 1 exists)
    alive.mkdir()
    before = os.environ.get("TMPDIR")
    with run_tmp() as tmp:
        assert tmp == tmp_path / f"{RUN_TMP_PREFIX}{os.getpid()}" and os.environ["TMPDIR"] == str(tmp)
        with tempfile.TemporaryDirectory(prefix="bids-stroke-reg-") as inside:
            assert inside.startswith(str(tmp))
        assert len(str(tmp)) < len(str(tmp_path)) + 30  # short enough for a socket path inside
    assert not left.parent.exists() and alive.exists()
    assert os.environ.get("TMPDIR") == before and tempfile.tempdir == str(tmp_path)


def _freeze_count():
    import gc

    return gc.get_freeze_count()


def test_the_heap_is_frozen_only_while_a_workflow_runs(tmp_path):
    """MultiProc's gc.collect() calls walk only what the run creates; everything is unfrozen after."""
    import gc

    from nipype.utils.filemanip import loadpkl

    workflow = pe.Workflow(name="wf", base_dir=str(tmp_path / "work"))
    workflow.add_nodes([pe.Node(niu.Function(output_names=["count"], function=_freeze_count), name="count")])
    run_workflow(workflow, Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
                                  work_dir=tmp_path / "work", nipype_plugin="Linear"))
    assert loadpkl(tmp_path / "work" / "wf" / "count" / "result_count.pklz").outputs.count > 1000

    from bids_stroke.workflows.execution import _frozen_heap

    assert gc.get_freeze_count() == 0
    with _frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules, the layout, the graph: everything alive before
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), _frozen_heap():
        raise RuntimeError("a failed run")
    assert gc.get_freeze_count() == 0


def test_dependency_counts_equal_scipys():
    """The scheduler's fast column sum gives scipy's answer, also after jobs finish."""
    import networkx as nx
    import numpy as np
    from nipype.pipeline.plugins.base import _graph_to_lil_matrix

    from bids_stroke.workflows.execution import _ColumnCounts

    rng = np.random.default_rng(0)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(300))
    graph.add_edges_from((i, int(j)) for i in range(299) for j in rng.integers(i + 1, 300, 3))
    plain = _graph_to_lil_matrix(graph, list(range(300)))
    fast = _ColumnCounts(plain)
    for finished in (None, 0, 5, 17, 120):
        if finished is not None:  # as nipype's _task_finished_cb clears a finished job's row
            for matrix in (plain, fast):
                row = matrix.getrowview(finished)
                row[row.nonzero()] = 0
        expected, got = plain.sum(axis=0), fast.sum(axis=0)
        assert type(got) is type(expected) and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    assert fast.sum(axis=0).max() > 0 and fast.sum() == plain.sum()


def test_parent_references_follow_nipypes_as_jobs_finish():
    """The scheduler's column-kept step-to-parent references change as nipype's do."""
    import networkx as nx
    import numpy as np
    from nipype.pipeline.plugins.multiproc import MultiProcPlugin

    from bids_stroke.workflows.execution import _MultiProcPlugin

    rng = np.random.default_rng(1)
    graph = nx.DiGraph()
    graph.add_nodes_from(f"step{i:03d}" for i in range(200))
    graph.add_edges_from((f"step{i:03d}", f"step{int(j):03d}") for i in range(199)
                         for j in rng.integers(i + 1, 200, 2))
    plugins = [cls(plugin_args={"n_procs": 1}) for cls in (MultiProcPlugin, _MultiProcPlugin)]
    for plugin in plugins:
        plugin._generate_dependency_list(graph)
        plugin.mapnodesubids = {}
    assert plugins[0].procs == plugins[1].procs
    for jobid in [0, 3, 10, 57, 120, 199]:
        for plugin in plugins:
            plugin._task_finished_cb(jobid)
        np.testing.assert_array_equal(plugins[1].refidx.toarray(), plugins[0].refidx.toarray())
        np.testing.assert_array_equal(plugins[1].depidx.toarray(), plugins[0].depidx.toarray())
        np.testing.assert_array_equal(plugins[1].refidx.sum(axis=1), plugins[0].refidx.sum(axis=1))
    assert 0 < plugins[1].refidx.count_nonzero() < graph.number_of_edges()  # some references cleared
    for plugin in plugins:
        plugin.pool.shutdown()


def test_the_schedulers_pause_ends_when_a_job_ends():
    """MultiProc's pause between rounds is cut short by a job's end, and only while it runs."""
    import threading
    import time as time_module
    from concurrent.futures import Future

    from nipype.pipeline.plugins import base

    from bids_stroke.workflows.execution import _MultiProcPlugin

    plugin = _MultiProcPlugin(plugin_args={"n_procs": 1})
    ended = Future()
    ended.set_result({"taskid": 7, "result": None, "traceback": None})
    plugin._async_callback(ended)
    assert plugin._get_result(7)["taskid"] == 7
    pause = threading.Thread(target=plugin._pause, args=(600,), daemon=True)
    pause.start()
    pause.join(timeout=60)
    assert not pause.is_alive()  # the job that ended before the pause ended it
    assert not plugin._job_ended.is_set()  # and the next pause waits for the next job
    plugin.pool.shutdown()
    assert base.sleep is time_module.sleep  # nipype's own pause outside a run
