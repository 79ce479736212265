"""Benchmark of the group report's montages: the hand-tiled figure against nilearn's.

The group report draws, per lesion hemisphere and classification group, one montage of
four template-space maps (lesion probability, attention a1-a3) at ten axial slices over
the template (:func:`bids_stroke.report.figures.plot_montage`). This script draws the same
figure both ways, on the template grid of the group maps, and prints one line per method
(median seconds per figure over ``--runs``) with the ratio against the hand-tiled one:

* ``plot_montage``: the report's own figure (each map resampled once, slices tiled into
  one image per row);
* ``nilearn plot_stat_map``: one ``nilearn.plotting.plot_stat_map`` per row
  (``display_mode="z"``, the same ``cut_coords``, threshold 1 % and maximum 100 %), all
  rows in one figure, saved the same way.

Usage::

    python benchmarks/montage.py --runs 3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from _timing import median_seconds  # noqa: E402

from bids_stroke.report.canvas import save_png  # noqa: E402
from bids_stroke.report.figures import MONTAGE_Z_MM, plot_montage  # noqa: E402
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, DEFAULT_TEMPLATE, get_template  # noqa: E402


def _maps(template: nib.Nifti1Image, seed: int) -> list[tuple[str, nib.Nifti1Image]]:
    """Four smooth maps on the template grid, in % of their maximum (as the report scales them)."""
    rng = np.random.default_rng(seed)
    shape = template.shape[:3]
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(template.affine, ijk).reshape(*shape, 3)
    brain = np.asarray(template.dataobj) > 0
    rows = []
    for k, label in enumerate(("lesion probability", "attention a1", "attention a2", "attention a3")):
        centre = np.array([-30.0, -10.0, 10.0]) + rng.normal(0, 5, 3)
        width = 10.0 + 6.0 * k
        data = np.exp(-((xyz - centre) ** 2).sum(axis=-1) / (2 * width**2)) * brain
        rows.append((label, nib.Nifti1Image((100 * data / data.max()).astype(np.float32), template.affine)))
    return rows


def _nilearn_montage(rows, out_file: Path, background, cmaps) -> Path:
    from nilearn import plotting

    fig, axes = plt.subplots(len(rows), 1, figsize=(13.0, 1.45 * len(rows) + 0.3))
    fig.patch.set_facecolor("black")
    for ax, (label, img), cmap in zip(axes, rows, cmaps):
        plotting.plot_stat_map(img, bg_img=background, display_mode="z", cut_coords=list(MONTAGE_Z_MM),
                               axes=ax, figure=fig, threshold=1.0, vmax=100.0, cmap=cmap, colorbar=True,
                               annotate=True, black_bg=True, title=label, draw_cross=False)
    return save_png(fig, out_file)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed figures per method (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    template = nib.load(get_template(DEFAULT_TEMPLATE, resolution=DEFAULT_RESOLUTION, suffix="T2w",
                                     desc="brain").path)
    rows = _maps(template, args.seed)
    cmaps = ["Blues", "hot", "hot", "hot"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        hand = median_seconds(lambda: plot_montage(rows, out / "hand.png", background=template, cmaps=cmaps,
                                                    title="montage"), args.runs)
        nilearn = median_seconds(lambda: _nilearn_montage(rows, out / "nilearn.png", template, cmaps), args.runs)
    print(f"montage plot_montage (4 maps x {len(MONTAGE_Z_MM)} slices): {hand:.2f} s/figure (ratio 1.00)")
    print(f"montage nilearn plot_stat_map (same maps and slices): {nilearn:.2f} s/figure "
          f"(ratio {nilearn / hand:.2f} vs plot_montage)")


if __name__ == "__main__":
    main()
