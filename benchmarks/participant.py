"""Benchmark of the participant level: wall seconds and peak memory per subject, by step.

Simulates a cohort (or takes a BIDS dataset), runs ``bids-stroke ... participant`` with
``--nprocs`` processes, and prints one line per measurement:

- the whole level's wall time, per subject;
- the steps' own time per subject (from nipype's records), split into preprocessing
  (b0/trace, brain mask, model grid, lesion measures) and registration (ANTs and warps);
- the plain reference measured in the same run: antspyx's ``ants.registration`` with its
  default ``SyN`` settings on one subject's b0, against the tuned registration;
- peak memory (resident) of the level's processes together and of the largest one,
  sampled every 0.2 s from /proc.

Usage::

    python benchmarks/participant.py --n-subjects 8 --nprocs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PREPROCESS = ("prepare_dwi", "brain_mask", "model_input", "lesion_measures")
REGISTRATION = ("registration", "b0_to_template", "lesion_to_template")


def _node_seconds(work: Path) -> dict[str, dict[str, float]]:
    """Seconds of each step of each participant, from nipype's result files."""
    from nipype.utils.filemanip import loadpkl

    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    for result in work.glob("participant_wf/sub_*_wf/*/result_*.pklz"):
        step, subject = result.parent.name, result.parent.parent.name
        runtime = loadpkl(result).runtime
        seconds[subject][step] = float(getattr(runtime, "duration", 0.0) or 0.0)
    return seconds


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _run_and_watch(command: list[str]) -> tuple[int, float, float, float]:
    """Run ``command``; return (exit code, wall s, peak total RSS MB, peak single-process RSS MB)."""
    peaks = {"total": 0.0, "single": 0.0}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def watch():
        while proc.poll() is None:
            sizes = [_rss_mb(pid) for pid in _descendants(proc.pid)]
            peaks["total"] = max(peaks["total"], sum(sizes))
            peaks["single"] = max(peaks["single"], max(sizes, default=0.0))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    watcher.join()
    if proc.returncode:
        print(err[-2000:], file=sys.stderr)
    return proc.returncode, wall, peaks["total"], peaks["single"]


def _reference_registration(bids: Path, out: Path) -> float:
    """Seconds of ants.registration(type_of_transform="SyN") with its defaults, one subject."""
    import ants
    import nibabel as nib
    import numpy as np

    from bids_stroke.spatial.registration import to_ants
    from bids_stroke.spatial.templates import get_template_set

    first = sorted(p for p in out.glob("sub-*") if p.is_dir())[0].name
    work_b0 = sorted(Path(out).parent.glob(f"work/participant_wf/sub_{first[4:]}_wf/prepare_dwi/*.nii.gz"))
    reference = next(p for p in work_b0 if p.name in ("b0.nii.gz", "trace.nii.gz"))
    mask = nib.load(next(out.glob(f"{first}/**/*_desc-brain_mask.nii.gz")))
    img = nib.load(reference)
    stripped = nib.Nifti1Image(np.asarray(img.dataobj, np.float32) * (np.asarray(mask.dataobj) > 0), img.affine)
    fixed = ants.image_read(str(get_template_set().t2w_brain.path))
    start = time.perf_counter()
    ants.registration(fixed=fixed, moving=to_ants(stripped), type_of_transform="SyN", random_seed=0)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=8)
    parser.add_argument("--n-sites", type=int, default=4)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bids", type=Path, help="an existing BIDS dataset instead of a simulated one")
    parser.add_argument("--keep", type=Path, help="folder to keep the outputs in (default: a temporary one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        bids = args.bids
        if bids is None:
            from bids_stroke.simulate import simulate_cohort

            bids = simulate_cohort(root / "bids", n_subjects=args.n_subjects, n_sites=args.n_sites,
                                   seed=args.seed)
        n = len(list(bids.glob("sub-*")))
        out, work = root / "out", root / "work"
        code, wall, peak_total, peak_single = _run_and_watch(
            [sys.executable, str(ROOT / "run.py"), str(bids), str(out), "participant", "-w", str(work),
             "--nprocs", str(args.nprocs), "--skip-bids-validation"])
        if code != 0:
            print(f"participant level failed with exit code {code}", file=sys.stderr)
            return code
        steps = _node_seconds(work)
        per_subject = {
            kind: sum(sum(s.get(step, 0.0) for step in names) for s in steps.values()) / len(steps)
            for kind, names in (("preprocess", PREPROCESS), ("registration", REGISTRATION))
        }
        reg_only = sum(s.get("registration", 0.0) for s in steps.values()) / len(steps)
        reference = _reference_registration(bids, out)

    print(f"participant level: {n} subjects, --nprocs {args.nprocs}: {wall:.1f} s wall, "
          f"{wall / n:.1f} s per subject")
    print(f"step preprocess: {per_subject['preprocess']:.1f} s per subject (step time, all nodes)")
    print(f"step registration: {per_subject['registration']:.1f} s per subject (ANTs {reg_only:.1f} s + warps); "
          f"reference ants.registration SyN defaults {reference:.1f} s; ratio {reference / reg_only:.1f}x faster")
    print(f"peak memory of the participant level: {peak_total:.0f} MB in all processes together, "
          f"{peak_single:.0f} MB in the largest one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
