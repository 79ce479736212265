"""Faults at the participant level: reproducible runs, kill -9 and rerun, a read-only
BIDS_DIR, and a participant that fails on a rerun.

One small simulated cohort, run several times with the default options (only the work
folder differs between fresh runs); every comparison is byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.bids.naming import find_derivatives
from bids_stroke.cli import main
from bids_stroke.errors import ExitCode
from bids_stroke.simulate import simulate_cohort


def _hashes(root: Path, *, skip_logs: bool = True) -> dict[str, str]:
    """Relative path -> SHA-256 of every file (``logs/`` holds per-run names: left out)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (skip_logs and p.relative_to(root).parts[0] == "logs")
    }


def _listing(root: Path) -> dict[str, tuple]:
    """Path -> (SHA-256 or None for a folder, mtime in ns, mode) of everything under root."""
    entries = {}
    for p in sorted([root, *root.rglob("*")]):
        info = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        entries[p.relative_to(root).as_posix()] = (digest, info.st_mtime_ns, info.st_mode)
    return entries


def _set_writable(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        os.chmod(p, (mode | stat.S_IWUSR) if writable else (mode & ~bits))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two participants on two sites, read-only, and the first run's outputs.

    The run uses the default options (BIDS validation included); running as root
    ignores the permissions, so the listing (SHA-256, mtime, mode) is the proof that
    nothing was written.
    """
    tmp = tmp_path_factory.mktemp("faults")
    bids = simulate_cohort(tmp / "bids", n_subjects=2, n_sites=2, seed=11, downsample=2)
    _set_writable(bids, False)
    before = _listing(bids)
    out, work = tmp / "out_a", tmp / "work_a"
    code = main([str(bids), str(out), "participant", "-w", str(work)])
    after = _listing(bids)
    yield {"tmp": tmp, "bids": bids, "out": out, "work": work, "code": code, "before": before, "after": after}
    _set_writable(bids, True)


def test_a_read_only_bids_dir_is_left_as_it_was(cohort):
    assert cohort["code"] == ExitCode.SUCCESS
    assert cohort["after"] == cohort["before"]
    assert all(not (mode & 0o222) for _, _, mode in cohort["after"].values())


def test_two_fresh_runs_with_the_default_options_are_identical(cohort):
    """Registration with several ANTs threads changed from run to run (Dice 0.88-0.99)."""
    out = cohort["tmp"] / "out_b"
    code = main([str(cohort["bids"]), str(out), "participant", "-w", str(cohort["tmp"] / "work_b")])
    assert code == ExitCode.SUCCESS
    first, second = _hashes(cohort["out"]), _hashes(out)
    assert any(name.endswith("_xfm.h5") for name in first)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_kill_9_then_rerun_equals_an_uninterrupted_run(cohort):
    """The whole process group killed mid-run; the same command resumes."""
    out, work = cohort["tmp"] / "out_c", cohort["tmp"] / "work_c"
    argv = [str(cohort["bids"]), str(out), "participant", "-w", str(work)]
    process = subprocess.Popen([sys.executable, "-m", "bids_stroke", *argv], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(out.glob("sub-*/dwi/*_desc-brain_mask.nii.gz")) and process.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no output in 300 s"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not list(out.glob("sub-*/dwi/*_from-dwi_to-*_xfm.h5")) or len(_hashes(out)) < len(_hashes(cohort["out"]))
    assert main(argv) == ExitCode.SUCCESS
    assert _hashes(out) == _hashes(cohort["out"])
    assert not [p for p in out.rglob(".tmp-*")]  # no partial file left behind by the killed run
    from bids_stroke.workflows.execution import RUN_TMP_PREFIX

    killed_tmp = Path(tempfile.gettempdir()) / f"{RUN_TMP_PREFIX}{process.pid}"
    assert not killed_tmp.exists()  # the killed run's temporary folder was removed by the rerun


def test_a_participant_failing_on_a_rerun_keeps_no_output(cohort):
    """Its earlier outputs (and this run's partial ones) would be read by the group level."""
    bids = cohort["tmp"] / "bids_d"
    shutil.copytree(cohort["bids"], bids)
    _set_writable(bids, True)
    out, work = cohort["tmp"] / "out_d", cohort["tmp"] / "work_d"
    argv = [str(bids), str(out), "participant", "-w", str(work), "--skip-bids-validation"]
    assert main(argv) == ExitCode.SUCCESS
    kept = _hashes(out)
    mask = next(bids.glob("derivatives/lesions/sub-001/dwi/*_mask.nii.gz"))
    img = nib.load(mask)
    labels = (np.asarray(img.dataobj) > 0).astype(np.int16)
    labels[:2] = 2  # now an integer label map: refused without --lesion-label
    nib.save(nib.Nifti1Image(labels, img.affine), mask)
    assert main(argv) == ExitCode.BAD_INPUT
    assert find_derivatives(out, subject="001") == [] and not (out / "sub-001.html").exists()
    moved = sorted(p.relative_to(out) for p in (out / "logs").glob("failed-*/**/*") if p.is_file())
    assert sorted(Path(*p.parts[2:]).as_posix() for p in moved) == sorted(
        name for name in kept if name.startswith("sub-001"))
    assert {k: v for k, v in _hashes(out).items() if k.startswith("sub-002")} == {
        k: v for k, v in kept.items() if k.startswith("sub-002")}


def test_ctrl_c_ends_with_one_line_and_no_traceback(cohort):
    """A terminal's Ctrl-C reaches the whole process group: the workers used to print their own
    KeyboardInterrupt tracebacks, and the pool one per future they broke, after 'interrupted'."""
    out, work = cohort["tmp"] / "out_i", cohort["tmp"] / "work_i"
    argv = [str(cohort["bids"]), str(out), "participant", "-w", str(work), "--skip-bids-validation"]
    process = subprocess.Popen([sys.executable, "-m", "bids_stroke", *argv], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((work / "participant_wf").glob("*/brain_mask")) and process.poll() is None:
        assert time.monotonic() < deadline, "no step started in 300 s"
        time.sleep(0.1)
    time.sleep(1.0)  # steps running in the workers
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "bids-stroke: interrupted"
    assert "Traceback" not in stderr and "Traceback" not in stdout
