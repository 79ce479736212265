"""Benchmark of a reduced group level: wall time, peak memory, projected full protocol.

Simulates a cohort, runs the participant level, then the group level with a few variants
and epochs, and prints one line per measurement:

- the group level's wall time and peak resident memory (all processes, sampled from /proc);
- the training throughput it achieved (images seen per second of job time), next to the
  plain reference measured in the same run: ``model.fit`` of the same variant on the same
  in-memory arrays, without augmentation;
- the projected time of the full protocol (every site as a fold + the final ensemble,
  all eight variants, 150 epochs at most) on this machine, from the measured throughput.

Usage::

    python benchmarks/group_small.py --n-subjects 96 --n-sites 4 --epochs 10 \
        --lesions /data/soop/lesions --participants /data/soop/participants.tsv
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from participant import ROOT, _run_and_watch  # noqa: E402  (benchmarks/participant.py)


def _reference_fit(npz: Path, variant: str, epochs: int) -> float:
    """Images/s of plain ``model.fit`` on the cohort arrays (batch 16, no augmentation)."""
    import keras
    import numpy as np

    from bids_stroke.model.variants import build_variant

    data = np.load(npz)
    x = data["volumes"][..., None].astype("float32")
    y = data["outcomes"].astype("float32")
    model = build_variant(variant, seed=0)
    trainable = keras.Model(model.input, model.output["probability"])
    trainable.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    trainable.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0)  # warm-up
    start = time.perf_counter()
    trainable.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return epochs * len(x) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=96)
    parser.add_argument("--n-sites", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=["f8-g1.5", "f16-g2"])
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--downsample", type=int, default=2, help="simulator's in-plane downsampling")
    parser.add_argument("--lesions", type=Path, help="folder of SOOP masks (more than the 40 shipped)")
    parser.add_argument("--participants", type=Path, help="the SOOP participants.tsv that goes with --lesions")
    parser.add_argument("--keep", type=Path, help="folder to keep everything in")
    args = parser.parse_args(argv)

    from bids_stroke.simulate import simulate_cohort

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        bids = simulate_cohort(root / "bids", n_subjects=args.n_subjects, n_sites=args.n_sites, seed=0,
                               downsample=args.downsample, lesions_dir=args.lesions,
                               participants_tsv=args.participants)
        out, work = root / "out", root / "work"
        code, part_wall, _, _ = _run_and_watch(
            [sys.executable, str(ROOT / "run.py"), str(bids), str(out), "participant", "-w", str(work),
             "--nprocs", str(args.nprocs), "--skip-bids-validation"])
        if code:
            print(f"participant level failed ({code})", file=sys.stderr)
            return code
        code, wall, peak_total, peak_single = _run_and_watch(
            [sys.executable, str(ROOT / "run.py"), str(bids), str(out), "group", "-w", str(work),
             "--nprocs", str(args.nprocs), "--variants", *args.variants, "--max-epochs", str(args.epochs),
             "--patience", str(args.epochs), "--bootstrap", "1000"])
        if code:
            print(f"group level failed ({code})", file=sys.stderr)
            return code
        from bids_stroke.interfaces.train import TIMING

        done = sorted(out.glob("models/**/done.json"))
        jobs = [json.loads(p.read_text()) for p in done]
        images = sum((j["n_train_seen"] if "n_train_seen" in j else j["n_train"]) * j["epochs_run"] for j in jobs)
        # a job's wall time is beside its done-marker (which holds no timing: it is byte-reproducible)
        job_seconds = sum(json.loads((p.parent / TIMING).read_text())["seconds"] for p in done)
        throughput = images / job_seconds
        reference = _reference_fit(work / "group" / "cohort.npz", args.variants[0], min(args.epochs, 3))
        n_folds = args.n_sites + 1
    full_images = n_folds * 8 * 150 * 0.75 * args.n_subjects * (args.n_sites - 1) / args.n_sites
    print(f"participant level: {args.n_subjects} subjects in {part_wall:.0f} s wall")
    print(f"group level: {len(jobs)} jobs ({n_folds} folds x {len(args.variants)} variants, {args.epochs} epochs): "
          f"{wall:.0f} s wall, peak memory {peak_total:.0f} MB in all processes, {peak_single:.0f} MB in the largest")
    print(f"training throughput in the jobs: {throughput:.1f} images/s per job ({images} images in "
          f"{job_seconds:.0f} s of job time); reference model.fit {args.variants[0]}: {reference:.1f} images/s; "
          f"ratio {throughput / reference:.2f}x")
    print(f"projected full protocol ({n_folds} folds x 8 variants x 150 epochs, {args.n_subjects} subjects, "
          f"--nprocs {args.nprocs}): {full_images / throughput / args.nprocs / 3600:.1f} h at the measured "
          f"throughput (upper bound: early stopping ends most jobs sooner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
