"""Command line of the simulator: ``bids-stroke-simulate OUT_DIR ...``."""

from __future__ import annotations

import argparse
import sys

from bids_stroke.errors import BidsStrokeError, UsageError
from bids_stroke.simulate.cohort import simulate_cohort
from bids_stroke.simulate.sites import PROFILES


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option documented in ``--help``)."""
    sites = ", ".join(f"{p.name} ({p.kind}, b={'/'.join(map(str, p.bvals))})"
                      for p in PROFILES)
    parser = _Parser(
        prog="bids-stroke-simulate",
        description="Write a semi-synthetic BIDS dataset of acute stroke DWI: real SOOP "
                    "lesions with their real outcome (mRS at discharge), age, NIHSS and "
                    "sex, on a deformed template head imaged by simulated scanners. "
                    "Also writes derivatives/lesions/ (native lesion masks) and truth/ "
                    "(template-space lesions, transforms, parameters; in .bidsignore).",
        epilog=f"Site profiles, first K used: {sites}. Exit codes: 64 bad arguments or "
               "non-empty OUT_DIR, 65 unusable input file, 66 missing input. Nothing is "
               "written when an input is wrong.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR",
                        help="output folder; must be absent or empty (see --overwrite)")
    parser.add_argument("--n-subjects", "--n_subjects", type=int, required=True,
                        metavar="N", help="number of subjects (at most the masks with an "
                        "mRS: 40 shipped)")
    parser.add_argument("--n-sites", "--n_sites", type=int, default=3, metavar="K",
                        help="number of sites (scanner profiles), <= N; K >= 2 includes "
                        "a trace-only site (default: 3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed >= 0; the same seed gives byte-identical files "
                        "(default: 0)")
    parser.add_argument("--lesions", metavar="DIR", default=None,
                        help="folder of MNI-space lesion masks sub-<id>_*.nii.gz (default: "
                        "the 40 shipped SOOP masks); needs --participants")
    parser.add_argument("--participants", metavar="TSV", default=None,
                        help="table with participant_id and gs_rankin_6isdeath (mRS at "
                        "discharge), optionally age, nihss, sex; needs --lesions")
    parser.add_argument("--session", metavar="LABEL", default=None,
                        help="put every file under ses-LABEL (default: no session)")
    parser.add_argument("--n-jobs", "--n_jobs", type=int, default=1, metavar="J",
                        help="subjects simulated in parallel processes (default: 1)")
    parser.add_argument("--downsample", type=int, default=1, metavar="F",
                        help="divide every site's in-plane matrix by F (1-8) for fast, "
                        "coarse cohorts in tests and demos (default: 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT_DIR if it holds a previous simulated cohort "
                        "(has truth/simulation.json); never deletes other folders")
    return parser


def main(argv=None) -> int:
    """Run the simulator; return the exit code.

    Parameters
    ----------
    argv : list of str or None
        Arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        out = simulate_cohort(
            args.out_dir, n_subjects=args.n_subjects, n_sites=args.n_sites,
            seed=args.seed, session=args.session, lesions_dir=args.lesions,
            participants_tsv=args.participants, n_jobs=args.n_jobs,
            downsample=args.downsample, overwrite=args.overwrite)
    except BidsStrokeError as exc:
        print(f"bids-stroke-simulate: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"bids-stroke-simulate: wrote {out}")
    return 0
