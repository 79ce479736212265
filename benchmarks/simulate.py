"""Benchmark of the cohort simulator: seconds and peak memory per simulated subject.

Prints one line per measurement, each with a ratio against a plain reference measured in
the same run: loading a SOOP mask and resampling it onto the template grid by affine
(nibabel + scipy), the least any simulator of these subjects must do.

Usage::

    python benchmarks/simulate.py --n-subjects 4 \
        --lesions /work/shared/data/soop/lesions \
        --participants /work/shared/data/soop/participants.tsv
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_stroke.simulate import simulate_cohort
from bids_stroke.simulate.anatomy import load_anatomy
from bids_stroke.simulate.sources import read_sources, shipped_dir


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reference(paths, anatomy) -> float:
    """Seconds per subject to load a mask and resample it (order 1) onto the template."""
    start = time.perf_counter()
    for path in paths:
        img = nib.load(str(path))
        vox = np.linalg.inv(img.affine) @ anatomy.affine
        ndimage.affine_transform(np.asarray(img.dataobj, np.float32), vox[:3, :3],
                                 offset=vox[:3, 3], output_shape=anatomy.shape, order=1)
    return (time.perf_counter() - start) / len(paths)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=4)
    parser.add_argument("--n-sites", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lesions", default=None, help="folder of SOOP masks")
    parser.add_argument("--participants", default=None, help="SOOP participants.tsv")
    args = parser.parse_args(argv)
    lesions = args.lesions or str(shipped_dir() / "lesions")
    table = args.participants or str(shipped_dir() / "participants.tsv")

    t0 = time.perf_counter()
    anatomy = load_anatomy()
    t_anatomy = time.perf_counter() - t0
    mem_anatomy = _peak_mb()
    srcs = read_sources(lesions, table)
    t_ref = _reference([s.mask_path for s in srcs[: args.n_subjects]], anatomy)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        simulate_cohort(Path(tmp) / "cohort", n_subjects=args.n_subjects,
                        n_sites=args.n_sites, seed=args.seed, lesions_dir=args.lesions,
                        participants_tsv=args.participants)
        t_sub = (time.perf_counter() - t0) / args.n_subjects
    mem = _peak_mb()
    print(f"anatomy build (once per process): {t_anatomy:.2f} s, peak {mem_anatomy:.0f} MB")
    print(f"simulate: {t_sub:.2f} s/subject over {args.n_subjects} subjects on "
          f"{args.n_sites} sites ({len(srcs)} masks available); reference load+resample "
          f"mask {t_ref:.3f} s/subject; ratio {t_sub / t_ref:.1f}x")
    print(f"simulate: peak memory {mem:.0f} MB (process); above anatomy "
          f"{mem - mem_anatomy:.0f} MB; ratio to anatomy {mem / mem_anatomy:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
