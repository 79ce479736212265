"""The demo: ``bids-stroke-demo OUT_DIR [--quick]``, the main job end to end, offline.

It runs the documented commands one after the other and prints each before it runs:

1. ``bids-stroke-simulate``: a small multi-site cohort from the lesion masks shipped with
   the package (real SOOP lesions with their real outcome);
2. ``bids-stroke ... participant``: preprocessing, lesion measures, registration;
3. ``bids-stroke ... group``: leave-one-center-out training with a *quick* protocol
   (a few light variants, a few epochs, few bootstrap resamples), statistics, maps,
   reports and the final ensemble;
4. ``bids-stroke-simulate`` again, on another seed, for new patients whose lesions the
   ensemble has never seen (the shipped masks not used in step 1);
5. ``bids-stroke ... participant --model``: their predictions and attention maps.

It ends with the paths of the group report and of one new patient's report. The quick
protocol is recorded in the bundle's ``manifest.json`` (``extra.protocol``): the model is
for demonstration only.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bids_stroke.bids.naming import TRUTH_DIR, find_derivatives, parse_derivative, report_path, run_path
from bids_stroke.bids.writers import write_bytes, write_tsv
from bids_stroke.config import training_protocol
from bids_stroke.simulate.sources import shipped_dir

__all__ = ["PROFILES", "DemoProfile", "build_parser", "main", "run_demo"]


@dataclass(frozen=True)
class DemoProfile:
    """Sizes of one demo run."""

    n_subjects: int
    n_sites: int
    downsample: int
    n_new: int
    variants: tuple[str, ...]
    max_epochs: int
    patience: int
    bootstrap: int


#: ``default``: about 10 minutes on 2 cores; ``quick`` (``--quick``): the smallest run
#: that exercises every step (a few minutes; what the test suite runs).
PROFILES = {
    "default": DemoProfile(n_subjects=24, n_sites=3, downsample=2, n_new=3,
                           variants=("f8-g1.5", "f8-g1.5-bn", "f8-g2", "f8-g2-bn"),
                           max_epochs=5, patience=3, bootstrap=500),
    "quick": DemoProfile(n_subjects=12, n_sites=3, downsample=4, n_new=2,
                         variants=("f8-g1.5", "f8-g2"), max_epochs=2, patience=1, bootstrap=100),
}


class DemoError(RuntimeError):
    """A step of the demo failed; ``exit_code`` is that command's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _say(message: str) -> None:
    print(message, flush=True)  # before the output of the command that follows


def _command(name: str) -> list[str]:
    """The console script ``name`` installed beside this Python, else ``python -m``."""
    script = Path(sys.executable).with_name(name)
    if script.is_file():
        return [str(script)]
    module = {"bids-stroke": "bids_stroke", "bids-stroke-simulate": "bids_stroke.simulate"}[name]
    return [sys.executable, "-m", module]


def _run(name: str, *args: str | Path, log=_say) -> None:
    shown = " ".join(shlex.quote(str(a)) for a in (name, *args))
    log(f"\n$ {shown}")
    start = time.perf_counter()
    code = subprocess.call([*_command(name), *map(str, args)])
    if code != 0:
        raise DemoError(f"this step failed with exit code {code}: {shown}", code)
    log(f"  ({time.perf_counter() - start:.0f} s)")


def unseen_sources(cohort: Path, dest: Path) -> tuple[Path, Path]:
    """The shipped lesion masks that the simulated ``cohort`` did not use.

    Writes ``dest/lesions/`` (copies of those masks) and ``dest/participants.tsv`` (their
    rows of the shipped table), for ``bids-stroke-simulate --lesions --participants``.

    Returns
    -------
    tuple of pathlib.Path
        The lesion folder and the participants table.
    """
    used = set(pd.read_csv(cohort / TRUTH_DIR / "subjects.tsv", sep="\t", dtype=str)["soop_id"])
    shipped = shipped_dir()
    table = pd.read_csv(shipped / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table = table[~table["participant_id"].isin(used)]
    lesions = dest / "lesions"
    for pid in table["participant_id"]:
        for mask in sorted((shipped / "lesions").glob(f"{pid}_*.nii*")):
            write_bytes(lesions / mask.name, mask.read_bytes())
    return lesions, write_tsv(dest / "participants.tsv", table)


def run_demo(out_dir, *, profile: str = "default", seed: int = 1, nprocs: int = 2,
             log=_say) -> dict:
    """Run the demo into ``out_dir`` (absent or empty); return the paths it made.

    Parameters
    ----------
    out_dir : path-like
    profile : {"default", "quick"}, default="default"
        Sizes of the run (:data:`PROFILES`).
    seed : int, default=1
        Seed of the training cohort (the new patients use ``seed + 1``) and of the
        training (``--random-seed``).
    nprocs : int, default=2
        ``--nprocs`` of both levels.
    log : callable, default=print (flushed)

    Returns
    -------
    dict
        ``group_report``, ``patient_report`` and ``patient_predictions`` (paths),
        ``probability`` (float) and ``seconds``.

    Raises
    ------
    DemoError
        A step failed (its exit code) or ``out_dir`` is not empty (exit code 64).
    """
    p = PROFILES[profile]
    out = Path(out_dir).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DemoError(f"{out} exists and is not an empty folder; choose a new one.", 64)
    start = time.perf_counter()
    bids, derivatives, work = out / "bids", out / "derivatives", out / "work"
    new_bids, new_derivatives = out / "new_patients" / "bids", out / "new_patients" / "derivatives"
    log(f"bids-stroke demo ({profile} profile) in {out}: {p.n_subjects} simulated patients on "
        f"{p.n_sites} sites, then {p.n_new} new patients.")
    deviations = training_protocol(p.variants, p.max_epochs, p.patience)["deviations"]
    log(f"QUICK PROTOCOL, for demonstration only: {'; '.join(deviations)}; {p.bootstrap} bootstrap resamples.")

    _run("bids-stroke-simulate", bids, "--n-subjects", p.n_subjects, "--n-sites", p.n_sites,
         "--seed", seed, "--downsample", p.downsample, log=log)
    _run("bids-stroke", bids, derivatives, "participant", "-w", work, "--nprocs", nprocs, log=log)
    _run("bids-stroke", bids, derivatives, "group", "-w", work, "--nprocs", nprocs,
         "--variants", *p.variants, "--max-epochs", p.max_epochs, "--patience", p.patience,
         "--bootstrap", p.bootstrap, "--random-seed", seed, log=log)

    lesions, participants = unseen_sources(bids, out / "new_patients" / "sources")
    log(f"\nNew patients: lesions of the shipped masks not used for training ({lesions}).")
    _run("bids-stroke-simulate", new_bids, "--n-subjects", p.n_new, "--n-sites", 1,
         "--seed", seed + 1, "--downsample", p.downsample, "--lesions", lesions,
         "--participants", participants, log=log)
    model = run_path(derivatives, "ensemble")
    _run("bids-stroke", new_bids, new_derivatives, "participant", "-w", out / "new_patients" / "work",
         "--nprocs", nprocs, "--model", model, log=log)

    predictions = find_derivatives(new_derivatives, desc="ensemble", suffix="predictions",
                                   extension=".tsv")
    if not predictions:
        raise DemoError(f"no predictions were written in {new_derivatives}.", 1)
    first = predictions[0]
    with first.open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh, delimiter="\t") if r["model"] == "ensemble")
    subject = parse_derivative(first, new_derivatives)["subject"]
    result = {
        "group_report": report_path(derivatives),
        "patient_report": report_path(new_derivatives, subject),
        "patient_predictions": first,
        "probability": float(row["probability_poor"]),
        "seconds": time.perf_counter() - start,
    }
    log(f"\nDemo finished in {result['seconds'] / 60:.1f} min.")
    log(f"  group report (LOCO performance, comparison with lesion volume, maps): {result['group_report']}")
    log(f"  a new patient's report (prediction, attention maps): {result['patient_report']}")
    log(f"    P(poor outcome) by the ensemble: {result['probability']:.2f} ({first})")
    log("The ensemble was trained with a quick protocol on a few simulated patients: it is for "
        "demonstration only; do not use its predictions.")
    return result


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="bids-stroke-demo",
        description="Run bids-stroke end to end on a simulated cohort, offline: simulate, "
                    "participant level, group level (a quick protocol), then predict new "
                    "patients with the trained ensemble. Prints every command it runs.",
        epilog="Exit codes: those of the step that failed; 64 when OUT_DIR is not empty.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder; must be absent or empty")
    parser.add_argument("--quick", action="store_true",
                        help="the smallest run that shows every step: "
                             f"{PROFILES['quick'].n_subjects} patients at 1/"
                             f"{PROFILES['quick'].downsample} in-plane resolution, "
                             f"{len(PROFILES['quick'].variants)} variants, "
                             f"{PROFILES['quick'].max_epochs} epochs (default: "
                             f"{PROFILES['default'].n_subjects} patients, "
                             f"{len(PROFILES['default'].variants)} variants, "
                             f"{PROFILES['default'].max_epochs} epochs)")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="seed of the cohort and the training; new patients use S+1 "
                             "(default: %(default)s)")
    parser.add_argument("--nprocs", type=int, default=2, metavar="N",
                        help="parallel processes of both levels (default: %(default)s)")
    return parser


def main(argv=None) -> int:
    """Run the demo; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        run_demo(args.out_dir, profile="quick" if args.quick else "default", seed=args.seed,
                 nprocs=args.nprocs)
    except DemoError as exc:
        print(f"bids-stroke-demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
