"""Benchmark of the automatic lesion mask against the simulator's truth, per site profile.

Simulates a cohort from real SOOP lesions on every site profile (or reuses the one in
``--work``), prepares each subject's trace, ADC and brain mask as the participant level
does, segments the lesion (:func:`bids_stroke.preprocess.lesion_auto.segment_lesion`)
and prints one line per measurement:

- Dice with the native-grid truth (median, IQR) and the Pearson correlation of log
  volumes, per site profile and over everyone;
- the seconds per subject of the segmentation, against the brain-mask step of the same
  subjects (the plain reference: a step every participant already runs);
- the LOCO AUC (sites as folds) of the lesion-volume logistic baseline
  (:func:`bids_stroke.stats.baselines.loco_baseline`) with the automatic and with the
  given volumes, compared by DeLong (:func:`bids_stroke.stats.delong.delong_test`).

Usage::

    python benchmarks/auto_lesion.py --lesions ../shared/data/soop/lesions \\
        --participants ../shared/data/soop/participants.tsv --n-subjects 44 --work bench/auto
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bids_stroke.preprocess import brainmask  # noqa: E402
from bids_stroke.preprocess.lesion_auto import METHOD, dice, segment_lesion  # noqa: E402
from bids_stroke.simulate import simulate_cohort  # noqa: E402
from bids_stroke.simulate.sites import PROFILES  # noqa: E402
from bids_stroke.simulate.truth import native_images  # noqa: E402
from bids_stroke.stats.baselines import loco_baseline  # noqa: E402
from bids_stroke.stats.delong import delong_test  # noqa: E402


def _iqr(values) -> str:
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:.3f} [{q1:.3f}-{q3:.3f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=Path, help="folder of MNI lesion masks (default: the shipped 40)")
    parser.add_argument("--participants", type=Path, help="their participants.tsv")
    parser.add_argument("--n-subjects", type=int, default=44)
    parser.add_argument("--n-sites", type=int, default=len(PROFILES), help="default: every profile")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--downsample", type=int, default=1)
    parser.add_argument("--poor-threshold", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("bench-auto-lesion"),
                        help="the simulated cohort is written here once and reused")
    args = parser.parse_args(argv)

    cohort = args.work / "bids"
    if not (cohort / "truth" / "subjects.tsv").is_file():
        start = time.perf_counter()
        simulate_cohort(cohort, n_subjects=args.n_subjects, n_sites=args.n_sites, seed=args.seed,
                        lesions_dir=args.lesions, participants_tsv=args.participants, n_jobs=2,
                        downsample=args.downsample)
        print(f"simulated {args.n_subjects} subjects on {args.n_sites} sites in {time.perf_counter() - start:.0f} s")
    with (cohort / "truth" / "subjects.tsv").open(newline="") as fh:
        truth_rows = list(csv.DictReader(fh, delimiter="\t"))
    with (cohort / "participants.tsv").open(newline="") as fh:
        mrs = {row["participant_id"]: row["mrs"] for row in csv.DictReader(fh, delimiter="\t")}
    print(f"method: {METHOD}")

    rows = []
    for row in truth_rows:
        images = native_images(cohort, row["participant_id"][4:])
        affine, truth = images["affine"], images["lesion"]
        start = time.perf_counter()
        brain = brainmask.brain_mask(images["reference"], brainmask.voxel_sizes(affine))
        mask_seconds = time.perf_counter() - start
        start = time.perf_counter()
        mask, info = segment_lesion(images["trace"], images["adc"], brain, affine)
        seconds = time.perf_counter() - start
        rows.append({"site": row["site"], "dice": dice(mask, truth), "seconds": seconds,
                     "mask_seconds": mask_seconds, "auto_ml": info["LesionVolume"],
                     "given_ml": float(truth.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000),
                     "mrs": mrs[row["participant_id"]]})

    by_site = defaultdict(list)
    for r in rows:
        by_site[r["site"]].append(r)
    for site, group in sorted(by_site.items()) + [("all", rows)]:
        profile = next((p for p in PROFILES if p.name == site), None)
        kind = f" ({profile.kind}, b={'/'.join(map(str, profile.bvals))})" if profile else ""
        given = np.log1p([r["given_ml"] for r in group])
        auto = np.log1p([r["auto_ml"] for r in group])
        corr = np.corrcoef(given, auto)[0, 1] if len(group) > 2 else float("nan")
        print(f"Dice {site}{kind}, n={len(group)}: median [IQR] {_iqr([r['dice'] for r in group])}; "
              f"log-volume correlation r = {corr:.3f}")
    seg = np.array([r["seconds"] for r in rows])
    ref = np.array([r["mask_seconds"] for r in rows])
    print(f"segmentation: {seg.mean():.3f} s per subject; brain mask (reference) {ref.mean():.3f} s per subject; "
          f"ratio {seg.mean() / ref.mean():.2f}x")

    known = [r for r in rows if r["mrs"] not in ("n/a", "")]
    outcome = np.array([int(float(r["mrs"]) >= args.poor_threshold) for r in known])
    folds = np.array([r["site"] for r in known])
    prob = {source: loco_baseline(np.array([r[f"{source}_ml"] for r in known]), outcome, folds,
                                  feature_name=f"{source} lesion volume", units="mL").probability
            for source in ("given", "auto")}
    test = delong_test(outcome, prob["given"], prob["auto"])
    print(f"LOCO lesion-volume baseline, n={len(known)} ({outcome.sum()} poor), {len(set(folds))} folds: "
          f"AUC given masks {test.auc_a:.3f} [{test.ci_a[0]:.3f}-{test.ci_a[1]:.3f}], automatic masks "
          f"{test.auc_b:.3f} [{test.ci_b[0]:.3f}-{test.ci_b[1]:.3f}]; DeLong p = {test.p_value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
