"""Benchmark on real lesion topographies: does the ensemble beat lesion volume?

Simulates N patients from a folder of real SOOP lesion masks with their real outcomes
(``bids-stroke-simulate --lesions/--participants``) on K sites, runs the participant level,
then the group level with a stated protocol, and prints one line per model: its LOCO AUC
with the bootstrap 95 % CI (from the group level's own ``desc-loco_metrics.tsv``), the
DeLong test against ``lr_volume`` (:func:`bids_stroke.stats.delong.delong_test` on the
merged out-of-center predictions) and the Spearman correlation of its probabilities with
lesion volume; then the wall time of each stage.

Everything lives under ``--root`` and is reused: the simulated dataset, the participant
level (its outputs and work folder) and each protocol's group level (``--tag``: its own
OUTPUT_DIR, made of hard links to the participant-level outputs, and its own work folder;
finished training jobs are not retrained). A run killed or stopped by a time limit resumes
where it was when started again with the same arguments; the wall time of each stage is
accumulated over the runs in ``ROOT/timings.json``.

``--outcome`` swaps the real outcome for a synthetic one defined from the same images, the
control that separates a pipeline that cannot learn from data that do not say more:
``volume`` (lesion volume above the cohort median) or ``left`` (lesion in the left
hemisphere). The simulated dataset is shared; the control's participants.tsv lives in a
BIDS folder of links (``bids-<outcome>``).

Usage::

    python benchmarks/real_lesions.py --root /data/bench/rl240 --n-subjects 240 --n-sites 5 \\
        --lesions ../shared/data/soop/lesions --participants ../shared/data/soop/participants.tsv \\
        --tag mean-e40 --size-branch mean --max-epochs 40 --patience 10 --clinical-columns age nihss
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, str(ROOT / "run.py")]


def _timed(root: Path, stage: str, command: list[str]) -> float:
    """Run ``command``, add its wall time to ``ROOT/timings.json``; exit on failure."""
    timings_path = root / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {stage}: {' '.join(command)}", file=sys.stderr, flush=True)
    code = subprocess.call(command)
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
    timings_path.write_text(json.dumps(timings, indent=1))
    if code:
        sys.exit(f"{stage} failed with exit code {code}")
    return timings[stage]


def _simulate(args) -> Path:
    bids = args.root / "bids"
    spec = {k: str(getattr(args, k)) for k in ("n_subjects", "n_sites", "seed", "downsample", "lesions",
                                               "participants")}
    marker = args.root / "simulation.json"
    if marker.is_file():
        if json.loads(marker.read_text()) != spec:
            sys.exit(f"{args.root} holds another simulation ({marker}); use another --root")
        return bids
    if bids.exists():
        shutil.rmtree(bids)
    _timed(args.root, "simulate", [sys.executable, "-m", "bids_stroke.simulate", str(bids),
                                   "--n-subjects", str(args.n_subjects), "--n-sites", str(args.n_sites),
                                   "--seed", str(args.seed), "--downsample", str(args.downsample),
                                   "--lesions", str(args.lesions), "--participants", str(args.participants),
                                   "--n-jobs", str(args.nprocs)])
    marker.write_text(json.dumps(spec))
    return bids


def _participant(args, bids: Path) -> Path:
    out = args.root / "out"
    done = out / "participant.done"
    if not done.is_file():
        _timed(args.root, "participant", [*RUN, str(bids), str(out), "participant", "-w", str(args.root / "work"),
                                          "--nprocs", str(args.nprocs), "--skip-bids-validation",
                                          ])
        done.write_text("")
    return out


def _control_bids(args, bids: Path, out: Path) -> Path:
    """A BIDS folder of links to ``bids`` whose participants.tsv holds the synthetic outcome."""
    if args.outcome == "real":
        return bids
    from bids_stroke.bids.naming import find_derivatives, subject_label

    control = args.root / f"bids-{args.outcome}"
    control.mkdir(exist_ok=True)
    for entry in bids.iterdir():
        if entry.name != "participants.tsv" and not (control / entry.name).exists():
            (control / entry.name).symlink_to(entry.resolve())
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype={"participant_id": str})
    feature = []
    for pid in table["participant_id"]:
        measures = find_derivatives(out, subject=subject_label(pid), desc="lesion", suffix="measures",
                                    extension=".json")
        info = json.loads(measures[0].read_text()) if measures else {}
        feature.append(info.get("LesionVolume", np.nan) if args.outcome == "volume"
                       else float(info.get("LesionSide") == "left"))
    feature = np.asarray(feature, dtype=float)
    poor = feature > np.nanmedian(feature) if args.outcome == "volume" else feature > 0.5
    table["mrs"] = np.where(np.isnan(feature), np.nan, np.where(poor, 5, 0))
    table.to_csv(control / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    return control


def _group(args, bids: Path, out: Path) -> Path:
    group_out = args.root / f"group-{args.tag}"
    if not group_out.exists():
        tmp = group_out.with_name(group_out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # hard links: the group level replaces files atomically (write + rename), so the
        # participant-level outputs shared with other protocols are never modified
        subprocess.check_call(["cp", "-al", str(out), str(tmp)])
        tmp.rename(group_out)
    command = [*RUN, str(bids), str(group_out), "group", "-w", str(args.root / f"work-{args.tag}"),
               "--nprocs", str(args.nprocs), "--omp-nthreads", str(args.omp_nthreads), "--variants", *args.variants, "--max-epochs", str(args.max_epochs),
               "--patience", str(args.patience), "--bootstrap", str(args.bootstrap),
               "--random-seed", str(args.seed), "--size-branch", args.size_branch,
               "--train-precision", args.train_precision, "--learning-rate", str(args.learning_rate)]
    if args.clinical_columns:
        command += ["--clinical-columns", *args.clinical_columns]
    _timed(args.root, f"group {args.tag}", command)
    return group_out


def report(group_out: Path, timings: dict, tag: str) -> list[str]:
    """The benchmark's lines, from the group level's own tables."""
    from scipy.stats import spearmanr

    from bids_stroke.bids.naming import find_derivatives
    from bids_stroke.stats.delong import delong_test

    def table(desc, suffix):
        return pd.read_csv(find_derivatives(group_out, datatype="group", desc=desc, suffix=suffix,
                                            extension=".tsv")[0], sep="\t")

    predictions = table("loco", "predictions")
    metrics = table("loco", "metrics").set_index("model")
    volume = predictions["participant_id"].map(_volumes(group_out))
    lines = []
    for model in metrics.index:
        row = metrics.loc[model]
        pair = predictions[["outcome", model, "lr_volume"]].dropna()
        line = (f"{tag} {model}: LOCO AUC {row['auc']:.3f} [{row['auc_ci_low']:.3f}-{row['auc_ci_high']:.3f}] "
                f"(n {int(row['n'])}, {int(row['n_poor'])} poor)")
        if model != "lr_volume":
            test = delong_test(pair["outcome"].to_numpy(), pair[model].to_numpy(), pair["lr_volume"].to_numpy())
            line += f"; vs lr_volume: difference {test.difference:+.3f}, DeLong z {test.z:.2f}, p {test.p_value:.4f}"
        known = predictions[model].notna() & volume.notna()
        rho = spearmanr(predictions.loc[known, model], volume[known]).statistic
        lines.append(line + f"; Spearman with lesion volume {rho:.2f}")
    comparisons = table("comparisons", "stats")
    for _, row in comparisons[comparisons["reference"] != "ensemble"].iterrows():
        lines.append(f"{tag} {row['reference']} vs {row['model']}: AUC {row['auc_reference']:.3f} vs "
                     f"{row['auc_model']:.3f}, DeLong p {row['delong_p']:.4f}")
    lines += [f"wall time {stage}: {seconds / 60:.1f} min" for stage, seconds in timings.items()]
    return lines


def _volumes(out: Path) -> dict[str, float]:
    from bids_stroke.bids.naming import find_derivatives, parse_derivative

    volumes = {}
    for path in find_derivatives(out, desc="lesion", suffix="measures", extension=".json"):
        volumes[f"sub-{parse_derivative(path, out)['subject']}"] = json.loads(path.read_text()).get("LesionVolume")
    return volumes


def main(argv=None) -> int:
    from bids_stroke.config import PAPER_LEARNING_RATE, SIZE_BRANCHES, TRAIN_PRECISIONS, VARIANT_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder of everything, reused across runs")
    parser.add_argument("--n-subjects", type=int, default=240)
    parser.add_argument("--n-sites", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42, help="seed of the simulation and of both levels")
    parser.add_argument("--downsample", type=int, default=2, help="the simulator's in-plane downsampling")
    parser.add_argument("--lesions", type=Path, required=True, help="folder of SOOP lesion masks")
    parser.add_argument("--participants", type=Path, required=True, help="the SOOP participants.tsv")
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--omp-nthreads", type=int, default=1,
                        help="threads per training job: 1 runs --nprocs jobs side by side")
    parser.add_argument("--tag", default="default", help="name of this group-level protocol (its folders)")
    parser.add_argument("--outcome", choices=("real", "volume", "left"), default="real",
                        help="the real outcome, or a synthetic control defined from the images")
    parser.add_argument("--variants", nargs="+", choices=VARIANT_NAMES, default=list(VARIANT_NAMES))
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--size-branch", choices=SIZE_BRANCHES, default="none")
    parser.add_argument("--learning-rate", type=float, default=PAPER_LEARNING_RATE)
    parser.add_argument("--train-precision", choices=TRAIN_PRECISIONS, default="auto")
    parser.add_argument("--clinical-columns", nargs="*", default=[])
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--report-only", action="store_true", help="print the lines of a finished run")
    args = parser.parse_args(argv)
    args.root = args.root.absolute()
    args.root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    if not args.report_only:
        bids = _simulate(args)
        out = _participant(args, bids)
        group_out = _group(args, _control_bids(args, bids, out), out)
    else:
        group_out = args.root / f"group-{args.tag}"
    timings = json.loads((args.root / "timings.json").read_text())
    print(f"protocol {args.tag}: {args.n_subjects} patients from {args.lesions} on {args.n_sites} sites, seed "
          f"{args.seed}, --downsample {args.downsample}; outcome {args.outcome}; variants {' '.join(args.variants)}; "
          f"--max-epochs {args.max_epochs} --patience {args.patience} --learning-rate {args.learning_rate:g} "
          f"--size-branch {args.size_branch} "
          f"--train-precision {args.train_precision}"
          + (f" --clinical-columns {' '.join(args.clinical_columns)}" if args.clinical_columns else ""))
    for line in report(group_out, timings, args.tag):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
