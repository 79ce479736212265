"""Benchmark of the participant level: wall seconds and peak memory per subject, by step.

Simulates a cohort (or takes a BIDS dataset), runs ``bids-stroke ... participant`` with
``--nprocs`` processes, and prints one line per measurement:

- the whole level's wall time, per subject;
- the steps' own time per subject (from nipype's records), split into preprocessing
  (b0/trace, brain mask, model grid, lesion measures) and registration (ANTs and warps);
- the plain reference measured in the same run: antspyx's ``ants.registration`` with its
  default ``SyN`` settings on one subject's b0, against the tuned registration;
- peak memory of the main process and of the largest worker.

Usage::

    python benchmarks/participant.py --n-subjects 8 --nprocs 2
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

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


def _reference_registration(bids: Path, out: Path) -> float:
    """Seconds of ants.registration(type_of_transform="SyN") with its defaults, one subject."""
    import ants
    import nibabel as nib
    import numpy as np

    from bids_stroke.spatial.registration import to_ants
    from bids_stroke.spatial.templates import get_template_set

    first = sorted(out.glob("sub-*"))[0].name
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

    from bids_stroke.cli import main as bids_stroke

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        bids = args.bids
        if bids is None:
            from bids_stroke.simulate import simulate_cohort

            bids = simulate_cohort(root / "bids", n_subjects=args.n_subjects, n_sites=args.n_sites,
                                   seed=args.seed)
        n = len(list(bids.glob("sub-*")))
        out, work = root / "out", root / "work"
        start = time.perf_counter()
        code = bids_stroke([str(bids), str(out), "participant", "-w", str(work),
                            "--nprocs", str(args.nprocs), "--skip-bids-validation"])
        wall = time.perf_counter() - start
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
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    print(f"participant level: {n} subjects, --nprocs {args.nprocs}: {wall:.1f} s wall, "
          f"{wall / n:.1f} s per subject")
    print(f"step preprocess: {per_subject['preprocess']:.1f} s per subject (step time, all nodes)")
    print(f"step registration: {per_subject['registration']:.1f} s per subject (ANTs {reg_only:.1f} s + warps); "
          f"reference ants.registration SyN defaults {reference:.1f} s; ratio {reference / reg_only:.1f}x faster")
    print(f"peak memory: main process {peak_self:.0f} MB, largest worker {peak_child:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
