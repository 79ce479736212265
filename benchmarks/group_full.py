"""Benchmark of the group level at the paper's scale: time per variant in the jobs, projected protocol.

Runs the real group level (every site as a left-out fold, plus the final ensemble; every
variant asked for) on a cohort of the paper's size simulated at full resolution from
real SOOP lesions, for a stated number of epochs per job, and prints one line per
measurement:

- per variant, from the jobs' own ``timing.json``: training images per second and seconds
  per epoch of the training pass, seconds of the validation pass, and the job's set-up
  (data, model, graph) before its first epoch;
- the plain reference measured in the same run: ``model.fit`` of the first variant on
  the same in-memory arrays, without augmentation (:mod:`group_small`);
- the group level's wall time and peak memory;
- per variant, the training FLOP/s in the jobs (3 x the forward pass's FLOPs of
  :func:`~bids_stroke.model.variants.model_flops` per image: forward, and the backward
  pass's two products), against the machine's measured peak: TensorFlow's float32 and
  bfloat16 4096² matrix products on all its threads (:mod:`training`);
- the projected wall time of the whole protocol on this machine (as many jobs at a time
  as ``--nprocs`` holds jobs of the group level's threads per job): every job stopping at
  ``--stop-epoch`` (early stopping; by default the paper's patience of 30 after a best
  epoch of 20), and every job running to the 150-epoch bound; and the least time the
  protocol's training FLOPs would take at the measured peak.

The participant level's outputs are reused when ``--keep`` already holds them, so the
cohort is simulated and preprocessed once (with :mod:`participant`'s measurement).

Usage::

    python benchmarks/group_full.py --keep /data/p300 --epochs 2 \\
        --lesions /data/soop/lesions --participants /data/soop/participants.tsv
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from group_small import _reference_fit  # noqa: E402  (benchmarks/group_small.py)
from participant import ROOT, _run_and_watch  # noqa: E402  (benchmarks/participant.py)
from training import _matmul_peak  # noqa: E402  (benchmarks/training.py)

from bids_stroke.config import PAPER_MAX_EPOCHS  # noqa: E402

def _jobs(out: Path) -> list[dict]:
    """Every finished job: its done-marker's options and counts, with its timing."""
    from bids_stroke.interfaces.train import TIMING

    jobs = []
    for done in sorted(out.glob("models/**/done.json")):
        timing = done.parent / TIMING
        if timing.is_file():
            jobs.append({**json.loads(done.read_text()), "timing": json.loads(timing.read_text())})
    return jobs


def _per_variant(jobs: list[dict]) -> dict[str, dict[str, float]]:
    """Per variant: images/s and s/epoch of the training passes, validation s/epoch, set-up s,
    and the seconds of a job after its epochs."""
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        row = rows[job["options"]["variant"]]
        timing = job["timing"]
        images = job.get("n_train_seen", job["n_train"])
        row["images_per_s"] += [images / t for t in timing["train_seconds"][1:] or timing["train_seconds"]]
        row["train"] += timing["train_seconds"]
        row["validation"] += timing["validation_seconds"]
        row["setup"].append(timing["setup_seconds"])
        row["first"].append(timing["train_seconds"][0])
        # after the epochs: the best weights restored, the model and its curve saved
        row["rest"].append(timing["seconds"] - timing["setup_seconds"] - sum(timing["train_seconds"])
                           - sum(timing["validation_seconds"]))
    return {variant: {key: float(np.median(values)) for key, values in row.items()}
            for variant, row in rows.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True, help="folder of the cohort, outputs and work")
    parser.add_argument("--n-subjects", type=int, default=300)
    parser.add_argument("--n-sites", type=int, default=8)
    parser.add_argument("--lesions", type=Path, help="folder of SOOP masks")
    parser.add_argument("--participants", type=Path, help="the SOOP participants.tsv that goes with --lesions")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job (patience the same)")
    parser.add_argument("--variants", nargs="+", help="default: all eight")
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--stop-epoch", type=int, default=50,
                        help="epochs a job runs with early stopping, for the projection (default 50)")
    args = parser.parse_args(argv)

    from bids_stroke.config import VARIANT_NAMES, Config
    from bids_stroke.model.spec import INPUT_SHAPE
    from bids_stroke.model.variants import build_variant, model_flops

    variants = args.variants or list(VARIANT_NAMES)
    root = args.keep
    bids, out, work = root / "bids", root / "out-this checkout", root / "work-this checkout"
    if not (out / "dataset_description.json").is_file():
        import participant

        code = participant.main(["--n-subjects", str(args.n_subjects), "--n-sites", str(args.n_sites),
                                 "--nprocs", str(args.nprocs), "--reference-rev", "none", "--keep", str(root),
                                 *(["--lesions", str(args.lesions)] if args.lesions else []),
                                 *(["--participants", str(args.participants)] if args.participants else [])])
        if code:
            return code
    n = len([p for p in out.glob("sub-*") if p.is_dir()])
    code, wall, peak_total, peak_single = _run_and_watch(
        [sys.executable, str(ROOT / "run.py"), str(bids), str(out), "group", "-w", str(work),
         "--nprocs", str(args.nprocs), "--variants", *variants, "--max-epochs", str(args.epochs),
         "--patience", str(args.epochs), "--bootstrap", "1000"])
    if code:
        print(f"group level failed ({code})", file=sys.stderr)
        return code
    jobs = [job for job in _jobs(out) if job["options"]["variant"] in variants]
    folds = sorted({job["options"]["fold"] for job in jobs})
    stats = _per_variant(jobs)
    reference = _reference_fit(work / "group" / "cohort.npz", variants[0], 2)

    print(f"group level: {n} participants, {len(folds)} folds (with the final ensemble) x {len(variants)} "
          f"variants, {args.epochs} epochs per job, --nprocs {args.nprocs}: {wall:.0f} s wall, peak memory "
          f"{peak_total:.0f} MB in all processes, {peak_single:.0f} MB in the largest")
    for variant in variants:
        s = stats[variant]
        print(f"variant {variant}: {s['images_per_s']:.1f} images/s in the jobs ({s['train']:.1f} s per training "
              f"epoch, first epoch {s['first']:.1f} s), validation {s['validation']:.1f} s per epoch, "
              f"set-up {s['setup']:.1f} s and {s['rest']:.1f} s after the epochs per job")
    first = stats[variants[0]]["images_per_s"]
    print(f"reference model.fit {variants[0]} on the same arrays: {reference:.1f} images/s; jobs/reference "
          f"{first / reference:.2f}")

    threads = Config(bids_dir=bids, output_dir=out, analysis_level="group", nprocs=args.nprocs).resolved_omp_nthreads()
    at_once = max(1, args.nprocs // threads)
    peaks = {dtype: _matmul_peak(dtype) * 1e9 for dtype in ("float32", "bfloat16")}
    print(f"measured peak of the machine (TensorFlow 4096x4096 matmul, all threads): float32 "
          f"{peaks['float32'] / 1e9:.0f} GFLOP/s, bfloat16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s; the jobs ran "
          f"{at_once} at a time on {threads} thread(s) each")
    train_flops = {v: 3 * model_flops(build_variant(v, INPUT_SHAPE)) for v in variants}
    precision = jobs[0]["options"].get("precision", "float32")
    for variant in variants:
        achieved = train_flops[variant] * stats[variant]["images_per_s"] * at_once
        print(f"variant {variant}: {train_flops[variant] / 1e9:.2f} GFLOP per training image, {achieved / 1e9:.0f} "
              f"GFLOP/s in the jobs ({precision}); {achieved / peaks['float32']:.0%} of the float32 peak, "
              f"{achieved / peaks['bfloat16']:.0%} of the bfloat16 peak")
    images = {v: float(np.median([j.get("n_train_seen", j["n_train"]) for j in jobs if j["options"]["variant"] == v]))
              for v in variants}
    for label, epochs in (("early stopping at", args.stop_epoch), ("the bound of", PAPER_MAX_EPOCHS)):
        seconds = sum(len(folds) * (s["setup"] + s["first"] + (epochs - 1) * s["train"] + epochs * s["validation"]
                                    + s["rest"]) for s in (stats[v] for v in variants))
        flops = sum(len(folds) * epochs * images[v] * train_flops[v] for v in variants)
        print(f"projected full protocol ({len(folds)} folds x {len(variants)} variants, {label} {epochs} epochs, "
              f"--nprocs {args.nprocs}, {at_once} job(s) of {threads} thread(s) at a time): "
              f"{seconds / at_once / 3600:.1f} h; its training passes alone at the measured peak: float32 "
              f"{flops / peaks['float32'] / 3600:.1f} h, bfloat16 {flops / peaks['bfloat16'] / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
