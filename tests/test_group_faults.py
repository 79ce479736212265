"""Fault injection at the group level: ``kill -9`` of the whole run mid-training, then a rerun.

The rerun with the same OUTPUT_DIR and work folder resumes the unfinished jobs and must
give the same bytes as an uninterrupted run, under ``OUTPUT_DIR/models`` and
``OUTPUT_DIR/group``, except the files named in :data:`RUN_TIME_FILES`.

The cohort is the smallest the group level accepts (two sites of four participants, two
of each outcome), one variant, one epoch: about four minutes in all, most of it the
participant level (once) and three starts of the group level.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bids_stroke.cli import main
from bids_stroke.errors import ExitCode
from bids_stroke.simulate import simulate_cohort

GROUP_OPTIONS = ["--variants", "f8-g1.5-bn", "--max-epochs", "1", "--patience", "1", "--bootstrap", "100",
                 "--nprocs", "2", "--random-seed", "7"]

#: Files that legitimately differ between two runs, by name: each job's wall time
#: (``timing.json`` beside its ``done.json``). Nothing else under models/ and group/ may.
RUN_TIME_FILES = frozenset({"timing.json"})

#: Seconds to wait for the first finished job before giving up on the kill.
KILL_DEADLINE = 300


@pytest.fixture(scope="module")
def participant_outputs(tmp_path_factory):
    """The participant level of a two-site cohort of eight: BIDS_DIR and an OUTPUT_DIR to copy."""
    tmp = tmp_path_factory.mktemp("faults")
    bids = simulate_cohort(tmp / "bids", n_subjects=8, n_sites=2, seed=11, downsample=4)
    out = tmp / "participant_out"
    code = main([str(bids), str(out), "participant", "-w", str(tmp / "participant_work"), "--nprocs", "2",
                 "--skip-bids-validation"])
    assert code == ExitCode.SUCCESS
    return bids, out


def _group_command(bids: Path, out: Path, work: Path) -> list[str]:
    return [sys.executable, "-m", "bids_stroke", str(bids), str(out), "group", "-w", str(work), *GROUP_OPTIONS]


def _environment() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _start_group(bids: Path, out: Path, work: Path, log: Path, **options) -> subprocess.Popen:
    with log.open("a") as handle:
        return subprocess.Popen(_group_command(bids, out, work), stdout=handle, stderr=subprocess.STDOUT,
                                env=_environment(), **options)


def _finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait() == 0, log.read_text(errors="replace")[-3000:]


def _start_and_kill(bids: Path, out: Path, work: Path, log: Path) -> None:
    """Start the group level in its own process group; SIGKILL the group once the first job is
    done and the next has started (the run is then mid-training)."""
    process = _start_group(bids, out, work, log, start_new_session=True)
    deadline = time.monotonic() + KILL_DEADLINE
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if list(out.glob("models/**/done.json")) and log.read_text(errors="replace").count(": started") >= 2:
                break
            time.sleep(0.2)
        assert process.poll() is None, f"the group level ended before the kill:\n{log.read_text()[-3000:]}"
        assert list(out.glob("models/**/done.json")), f"no job finished in {KILL_DEADLINE} s"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the pgid is the pid: start_new_session
        process.wait()


def _digests(out: Path) -> dict[str, str]:
    """SHA-256 of every file under models/ and group/, by relative path, but RUN_TIME_FILES."""
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("models", "group")
        for path in sorted((out / folder).rglob("*"))
        if path.is_file() and path.name not in RUN_TIME_FILES
    }


def test_killed_group_run_reruns_to_the_bytes_of_an_uninterrupted_run(participant_outputs, tmp_path_factory):
    bids, participant_out = participant_outputs
    # a short folder: the work folder holds multiprocessing's socket, whose path has ~100 characters at most
    tmp_path = tmp_path_factory.mktemp("rerun")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    for out in (reference, resumed):
        shutil.copytree(participant_out, out, symlinks=True)
    # the uninterrupted run goes on beside the killed one and its rerun (the runs wait more than they compute)
    uninterrupted = _start_group(bids, reference, tmp_path / "reference_work", tmp_path / "reference.log",
                                 start_new_session=True)
    try:
        _start_and_kill(bids, resumed, tmp_path / "resumed_work", tmp_path / "killed.log")
        assert not (resumed / "models" / "ensemble" / "manifest.json").exists()  # killed before the end
        finished = {done.parent / "model.keras": done.parent.joinpath("model.keras").stat().st_mtime_ns
                    for done in resumed.glob("models/**/done.json")}
        _finish(_start_group(bids, resumed, tmp_path / "resumed_work", tmp_path / "rerun.log"), tmp_path / "rerun.log")
    except BaseException:
        os.killpg(uninterrupted.pid, signal.SIGKILL)
        uninterrupted.wait()
        raise
    _finish(uninterrupted, tmp_path / "reference.log")

    assert {path: path.stat().st_mtime_ns for path in finished} == finished  # reused, not retrained
    want, got = _digests(reference), _digests(resumed)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
    assert "models/ensemble/manifest.json" in want and len(list(resumed.glob("models/**/timing.json"))) == 3
