"""Benchmark of the participant level: wall seconds per subject by step, accuracy, memory.

Simulates a cohort at full resolution (or takes a BIDS dataset) and runs
``bids-stroke ... participant --nprocs N`` twice on it, in the same run: with this
checkout's code, and with the code of a reference revision (``--reference-rev``, the last
revision before the participant level's speed-ups by default; its sources are taken with
``git archive`` and put first on ``PYTHONPATH``). For each, one line per measurement:

- the whole level's wall time, per subject, and its ratio to the reference;
- the steps' own time per subject (from nipype's records): brain mask, registration (ANTs),
  everything else, and the overhead: wall / (sum of the step times / processes);
- accuracy against the simulator's truth: the pooled Dice of the brain masks with the
  simulated brain on each native grid, and the pooled Dice of the template-space lesions
  (2 mm) with the simulated lesion (subjects with >= 5 mL);
- peak memory (resident) of the level's processes together and of the largest one,
  sampled every 0.2 s from /proc.

And the plain reference of the registration alone: antspyx's ``ants.registration`` with
its default ``SyN`` settings on one subject's skull-stripped b0, against ours.

Usage::

    python benchmarks/participant.py --n-subjects 16 --nprocs 2
    python benchmarks/participant.py --n-subjects 300 --n-sites 8 --reference-rev none \
        --lesions /data/soop/lesions --participants /data/soop/participants.tsv --keep /data/p300
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: The last revision before the participant level's speed-ups (brain mask on a coarse grid,
#: cropped and shorter registration, fewer nipype steps).
REFERENCE_REV = "92cc92b"

BRAIN, REGISTRATION = "brain_mask", "registration"


def _node_seconds(work: Path) -> tuple[dict[str, dict[str, float]], tuple[float, float]]:
    """Seconds of each step of each participant, from nipype's result files (sinks excluded),
    and the (POSIX) times the first step started and the last one ended."""
    import datetime

    from nipype.utils.filemanip import loadpkl

    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    span = [np.inf, -np.inf]
    for result in work.glob("participant_wf/sub_*_wf/*/result_*.pklz"):
        step, subject = result.parent.name, result.parent.parent.name
        runtime = loadpkl(result).runtime
        span[0] = min(span[0], datetime.datetime.fromisoformat(runtime.startTime).timestamp())
        span[1] = max(span[1], datetime.datetime.fromisoformat(runtime.endTime).timestamp())
        if not step.startswith("ds_"):
            seconds[subject][step] = float(getattr(runtime, "duration", 0.0) or 0.0)
    return seconds, (span[0], span[1])


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


def _run_and_watch(command: list[str], env: dict | None = None) -> tuple[int, float, float, float]:
    """Run ``command``; return (exit code, wall s, peak total RSS MB, peak single-process RSS MB)."""
    peaks = {"total": 0.0, "single": 0.0}
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)

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


def _sources(rev: str, into: Path) -> Path:
    """This repository's sources at ``rev``, extracted into ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _accuracy(bids: Path, out: Path) -> tuple[float, float]:
    """Pooled brain-mask Dice (native grids) and template-lesion Dice (>= 5 mL) with the truth."""
    import nibabel as nib

    from bids_stroke.simulate.truth import load_truth, native_brain, template_lesion

    sums = {"brain": [0, 0], "lesion": [0, 0]}
    for sub_dir in sorted(p for p in out.glob("sub-*") if p.is_dir()):
        truth = load_truth(bids, sub_dir.name[4:])
        (brain_file,) = sub_dir.glob("dwi/*_desc-brain_mask.nii.gz")
        (lesion_file,) = sub_dir.glob("dwi/*_space-*_res-2_label-lesion_mask.nii.gz")
        pairs = {"brain": (np.asarray(nib.load(brain_file).dataobj) > 0, native_brain(truth))}
        lesion = nib.load(lesion_file)
        true_lesion = template_lesion(truth, lesion.affine, lesion.shape)
        if true_lesion.sum() * 8 / 1000 >= 5:  # 2 mm voxels: 8 uL each
            pairs["lesion"] = (np.asarray(lesion.dataobj) > 0, true_lesion)
        for key, (ours, true) in pairs.items():
            sums[key][0] += 2 * np.count_nonzero(ours & true)
            sums[key][1] += np.count_nonzero(ours) + np.count_nonzero(true)
    return tuple(a / b if b else float("nan") for a, b in sums.values())


def _measure(label: str, bids: Path, root: Path, nprocs: int, pythonpath: Path | None) -> dict:
    out, work = root / f"out-{label}", root / f"work-{label}"
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    run = (pythonpath or ROOT) / "run.py"
    started = time.time()
    code, wall, peak_total, peak_single = _run_and_watch(
        [sys.executable, str(run), str(bids), str(out), "participant", "-w", str(work),
         "--nprocs", str(nprocs), "--skip-bids-validation"], env)
    if code != 0:
        raise SystemExit(f"participant level ({label}) failed with exit code {code}")
    steps, (first, last) = _node_seconds(work)
    n = len(steps)
    per_step: dict[str, float] = defaultdict(float)
    for subject in steps.values():
        for step, seconds in subject.items():
            per_step[step] += seconds / n
    total = sum(per_step.values())
    brain, dice_lesion = _accuracy(bids, out)
    return {"label": label, "n": n, "wall": wall, "per_subject": wall / n, "steps": dict(per_step),
            "total": total, "overhead": wall / (total * n / nprocs), "peak_total": peak_total,
            "peak_single": peak_single, "dice_brain": brain, "dice_lesion": dice_lesion, "out": out,
            "work": work, "startup": first - started, "span": last - first, "after": started + wall - last}


def _reference_registration(out: Path, work: Path) -> float:
    """Seconds of ants.registration(type_of_transform="SyN") with its defaults, one subject."""
    import ants
    import nibabel as nib

    from bids_stroke.spatial.registration import to_ants
    from bids_stroke.spatial.templates import get_template_set

    first = sorted(p for p in out.glob("sub-*") if p.is_dir())[0].name
    prepared = sorted(work.glob(f"participant_wf/sub_{first[4:]}_wf/prepare_dwi/*.nii.gz"))
    reference = next(p for p in prepared if p.name in ("b0.nii.gz", "trace.nii.gz"))
    mask = nib.load(next(out.glob(f"{first}/**/*_desc-brain_mask.nii.gz")))
    img = nib.load(reference)
    stripped = nib.Nifti1Image(np.asarray(img.dataobj, np.float32) * (np.asarray(mask.dataobj) > 0), img.affine)
    fixed = ants.image_read(str(get_template_set().t2w_brain.path))
    start = time.perf_counter()
    ants.registration(fixed=fixed, moving=to_ants(stripped), type_of_transform="SyN", random_seed=0)
    return time.perf_counter() - start


def _print(result: dict, nprocs: int, reference: dict | None) -> None:
    steps = result["steps"]
    other = result["total"] - steps.get(BRAIN, 0.0) - steps.get(REGISTRATION, 0.0)
    ratio = f"; {reference['per_subject'] / result['per_subject']:.2f}x faster than {reference['label']}" \
        if reference else ""
    print(f"participant level, {result['label']}: {result['n']} subjects, --nprocs {nprocs}: "
          f"{result['wall']:.1f} s wall, {result['per_subject']:.2f} s per subject{ratio}")
    print(f"  steps, {result['label']}: {result['total']:.2f} s per subject (brain_mask "
          f"{steps.get(BRAIN, 0.0):.2f}, registration {steps.get(REGISTRATION, 0.0):.2f}, other {other:.2f}); "
          f"wall / (steps / processes) = {result['overhead']:.2f}")
    print(f"  where the wall goes, {result['label']}: {result['startup']:.0f} s before the first step (checks, "
          f"workflows), {result['span']:.0f} s from the first step's start to the last one's end (the steps "
          f"/ processes: {result['total'] * result['n'] / nprocs:.0f} s), {result['after']:.0f} s after "
          f"(summary, reports)")
    print(f"  accuracy, {result['label']}: brain-mask Dice with the simulated brain {result['dice_brain']:.3f}, "
          f"template-space lesion Dice with the simulated lesion {result['dice_lesion']:.3f} (pooled)")
    print(f"  peak memory, {result['label']}: {result['peak_total']:.0f} MB in all processes together, "
          f"{result['peak_single']:.0f} MB in the largest one")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=16)
    parser.add_argument("--n-sites", type=int, default=4)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-rev", default=REFERENCE_REV,
                        help=f"git revision measured as the reference (default {REFERENCE_REV}); 'none': skip it")
    parser.add_argument("--lesions", type=Path, help="folder of SOOP masks (more than the 40 shipped)")
    parser.add_argument("--participants", type=Path, help="the SOOP participants.tsv that goes with --lesions")
    parser.add_argument("--bids", type=Path, help="an existing simulated BIDS dataset instead of a new one")
    parser.add_argument("--keep", type=Path, help="folder to keep the outputs in (default: a temporary one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        bids = args.bids
        if bids is None:
            from bids_stroke.simulate import simulate_cohort

            bids = simulate_cohort(root / "bids", n_subjects=args.n_subjects, n_sites=args.n_sites,
                                   seed=args.seed, n_jobs=args.nprocs, lesions_dir=args.lesions,
                                   participants_tsv=args.participants)
        with open(bids / "participants.tsv") as fh:
            sites = sorted({row["site"] for row in csv.DictReader(fh, delimiter="\t")})
        print(f"cohort: {bids}, sites {', '.join(sites)} (full resolution)")
        reference = None
        if args.reference_rev != "none":
            code = _sources(args.reference_rev, Path(tmp) / "reference")
            reference = _measure(f"reference {args.reference_rev}", bids, root, args.nprocs, code)
        current = _measure("this checkout", bids, root, args.nprocs, None)
        plain = _reference_registration(current["out"], current["work"])

    for result in filter(None, (reference, current)):
        _print(result, args.nprocs, reference if result is current else None)
    ours = current["steps"].get(REGISTRATION, 0.0)
    print(f"registration alone: ours {ours:.2f} s per subject (in the run); plain reference ants.registration "
          f"SyN defaults {plain:.2f} s on one subject; ratio {plain / ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
