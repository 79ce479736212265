"""Figures of the participant and group reports (matplotlib, Agg backend, PNG).

Every function draws from images and tables already in memory (loaded from OUTPUT_DIR by
:mod:`bids_stroke.report.html`), writes one PNG atomically and returns its path. PNGs are
written without a time stamp or software tag, so the same inputs give the same bytes.

Images are shown in RAS orientation, axial slices with the participant's left on the
left of each panel (neurological convention).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import ndimage  # noqa: E402

from bids_stroke.bids.derivatives import atomic_output  # noqa: E402

__all__ = [
    "MONTAGE_Z_MM",
    "plot_attention_overlays",
    "plot_calibration",
    "plot_dwi_qc",
    "plot_montage",
    "plot_registration",
    "plot_roc",
    "plot_variant_probabilities",
    "resample_to",
    "slice_indices",
]

#: Axial slices of the montages (MNI z, mm), as in Moulton et al. 2022.
MONTAGE_Z_MM = (-26, -16, -6, 4, 14, 24, 34, 44, 54, 64)

#: Resolution of the PNG files (dots per inch).
DPI = 100

_MODEL_COLOURS = {"ensemble": "#1f4e9c", "lr_volume": "#d95f02", "lr_aspects": "#1b9e77"}


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
def _save(fig: Figure, out_file: str | os.PathLike) -> Path:
    out_file = Path(out_file)
    with atomic_output(out_file) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return out_file


def _canonical(img: nib.spatialimages.SpatialImage) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(img)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    return np.nan_to_num(data), img.affine


def resample_to(img: nib.spatialimages.SpatialImage, ref_affine: np.ndarray, ref_shape: Sequence[int], *,
                order: int = 1) -> np.ndarray:
    """Resample an image onto another grid by its affine.

    Parameters
    ----------
    img : nibabel image
        The image (3D; the first volume of a 4D image).
    ref_affine : ndarray of shape (4, 4)
        Voxel-to-world affine of the target grid (mm).
    ref_shape : sequence of 3 int
        Shape of the target grid.
    order : int, default=1
        Spline order (0: nearest neighbour, for masks).

    Returns
    -------
    ndarray of shape ``ref_shape``, float32
        Zero outside the image's field of view.
    """
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    data = np.nan_to_num(data)
    if tuple(data.shape) == tuple(ref_shape) and np.allclose(img.affine, ref_affine, atol=1e-4):
        return data
    vox = np.linalg.inv(img.affine) @ np.asarray(ref_affine, dtype=float)
    return ndimage.affine_transform(data, vox[:3, :3], offset=vox[:3, 3], output_shape=tuple(ref_shape),
                                    order=order, mode="constant", cval=0.0).astype(np.float32)


def slice_indices(affine: np.ndarray, shape: Sequence[int], z_mm: Sequence[float] = MONTAGE_Z_MM) -> list[int | None]:
    """Index along the third (axial, RAS) axis of each world z coordinate.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine of a grid in RAS orientation (:func:`nibabel.as_closest_canonical`).
    shape : sequence of 3 int
        Shape of the grid.
    z_mm : sequence of float, default=MONTAGE_Z_MM
        World z coordinates (mm).

    Returns
    -------
    list of int or None
        The nearest slice index, or None when ``z`` lies outside the grid.

    Examples
    --------
    >>> slice_indices(np.diag([2.0, 2.0, 2.0, 1.0]), (10, 10, 10), [0, 4, 40])
    [0, 2, None]
    """
    inv = np.linalg.inv(np.asarray(affine, dtype=float))
    out: list[int | None] = []
    for z in z_mm:
        k = int(np.rint((inv @ np.array([0.0, 0.0, float(z), 1.0]))[2]))
        out.append(k if 0 <= k < shape[2] else None)
    return out


def _axial(data: np.ndarray, k: int) -> np.ndarray:
    return data[:, :, k].T


def _percent(data: np.ndarray) -> np.ndarray:
    peak = float(np.nanmax(data)) if data.size else 0.0
    return data / peak * 100.0 if peak > 0 else np.zeros_like(data)


def _no_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# ---------------------------------------------------------------------------------------
# Montages
# ---------------------------------------------------------------------------------------
def plot_montage(
    rows: Sequence[tuple[str, nib.spatialimages.SpatialImage]],
    out_file: str | os.PathLike,
    *,
    background: nib.spatialimages.SpatialImage | None = None,
    contour: nib.spatialimages.SpatialImage | None = None,
    z_mm: Sequence[float] = MONTAGE_Z_MM,
    cmaps: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Axial montage of one or more maps over a background, in % of each map's maximum.

    Parameters
    ----------
    rows : sequence of (str, nibabel image)
        One row per map: its label and image. Every map is drawn on its own grid (RAS),
        scaled to 0-100 % of its maximum; voxels under 1 % are transparent.
    out_file : path-like
        The PNG to write.
    background : nibabel image, default=None
        Drawn in grey under each map (e.g. the template's T2w), resampled to the map's grid.
    contour : nibabel image, default=None
        A mask outlined in white over every row (e.g. the lesion).
    z_mm : sequence of float, default=MONTAGE_Z_MM
        World z coordinates of the slices (mm); slices outside a map's grid are left blank.
    cmaps : sequence of str, default=None
        Colour map of each row (default ``hot``).
    title : str, default=None
        Figure title.

    Returns
    -------
    pathlib.Path
        ``out_file``.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("'rows' must hold at least one map. Got none instead.")
    cmaps = list(cmaps) if cmaps is not None else ["hot"] * len(rows)
    ncol = len(z_mm)
    fig, axes = plt.subplots(len(rows), ncol + 1, figsize=(1.25 * ncol + 1.2, 1.55 * len(rows) + 0.5),
                             gridspec_kw={"width_ratios": [1] * ncol + [0.12]}, squeeze=False)
    fig.patch.set_facecolor("black")
    for r, ((label, img), cmap) in enumerate(zip(rows, cmaps)):
        data, affine = _canonical(img)
        values = _percent(data)
        bg = resample_to(nib.as_closest_canonical(background), affine, data.shape) if background is not None else None
        outline = (resample_to(nib.as_closest_canonical(contour), affine, data.shape, order=0) > 0
                   if contour is not None else None)
        ks = slice_indices(affine, data.shape, z_mm)
        image = None
        for c, (z, k) in enumerate(zip(z_mm, ks)):
            ax = axes[r, c]
            ax.set_facecolor("black")
            _no_axes(ax)
            if r == 0:
                ax.set_title(f"z = {z:g} mm", color="white", fontsize=7)
            if k is None:
                continue
            if bg is not None:
                ax.imshow(_axial(bg, k), cmap="gray", origin="lower", interpolation="nearest")
            shown = np.ma.masked_less(_axial(values, k), 1.0)
            image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=100, origin="lower", interpolation="nearest",
                              alpha=0.9)
            if outline is not None and _axial(outline, k).any():
                ax.contour(_axial(outline, k).astype(float), levels=[0.5], colors="white", linewidths=0.6)
            if c == 0:
                ax.text(0.02, 0.5, "L", color="white", fontsize=6, transform=ax.transAxes, va="center")
        axes[r, 0].set_ylabel(label, color="white", fontsize=8)
        cax = axes[r, ncol]
        if image is None:
            image = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 100))
        bar = fig.colorbar(image, cax=cax)
        bar.set_ticks([0, 50, 100])
        bar.ax.tick_params(colors="white", labelsize=6)
        bar.set_label("% of max", color="white", fontsize=6)
    if title:
        fig.suptitle(title, color="white", fontsize=9)
    fig.subplots_adjust(left=0.04, right=0.95, bottom=0.02, top=0.86 if title else 0.9, wspace=0.04, hspace=0.08)
    return _save(fig, out_file)


def plot_attention_overlays(
    attention: Mapping[str, nib.spatialimages.SpatialImage],
    out_file: str | os.PathLike,
    *,
    background: nib.spatialimages.SpatialImage | None = None,
    lesion: nib.spatialimages.SpatialImage | None = None,
    z_mm: Sequence[float] = MONTAGE_Z_MM,
    title: str | None = None,
) -> Path:
    """One participant's attention maps (a1-a3) over its warped b0, lesion outlined.

    Parameters
    ----------
    attention : mapping of str to nibabel image
        Scale (``a1``, ``a2``, ``a3``) -> template-space attention map.
    out_file : path-like
        The PNG to write.
    background : nibabel image, default=None
        The template-space b0 (or the template).
    lesion : nibabel image, default=None
        The template-space lesion mask, outlined.
    z_mm : sequence of float, default=MONTAGE_Z_MM
    title : str, default=None
    """
    rows = [(scale, img) for scale, img in attention.items()]
    return plot_montage(rows, out_file, background=background, contour=lesion, z_mm=z_mm, title=title)


# ---------------------------------------------------------------------------------------
# Participant QC
# ---------------------------------------------------------------------------------------
def plot_dwi_qc(
    image: nib.spatialimages.SpatialImage,
    out_file: str | os.PathLike,
    *,
    brain_mask: nib.spatialimages.SpatialImage | None = None,
    lesion: nib.spatialimages.SpatialImage | None = None,
    n_slices: int = 8,
    title: str | None = None,
) -> Path:
    """Axial slices of a DWI (b0 or trace) with brain-mask and lesion contours.

    Parameters
    ----------
    image : nibabel image
        The image shown in grey (e.g. the model-grid trace).
    out_file : path-like
        The PNG to write.
    brain_mask : nibabel image, default=None
        Outlined in cyan, resampled by its affine onto ``image``'s grid.
    lesion : nibabel image, default=None
        Outlined in red, resampled likewise.
    n_slices : int, default=8
        Slices shown, evenly spaced over the brain mask's extent (the image's without a mask).
    title : str, default=None
    """
    data, affine = _canonical(image)
    mask = resample_to(nib.as_closest_canonical(brain_mask), affine, data.shape, order=0) > 0 \
        if brain_mask is not None else None
    les = resample_to(nib.as_closest_canonical(lesion), affine, data.shape, order=0) > 0 \
        if lesion is not None else None
    extent = np.flatnonzero(mask.any(axis=(0, 1))) if mask is not None and mask.any() else np.arange(data.shape[2])
    ks = np.unique(np.linspace(extent[0], extent[-1], min(n_slices, extent.size) + 2)[1:-1].round().astype(int))
    if ks.size == 0:
        ks = np.array([data.shape[2] // 2])
    inside = data[mask] if mask is not None and mask.any() else data[data > 0]
    vmax = float(np.percentile(inside, 99.5)) if inside.size else 1.0
    fig, axes = plt.subplots(1, ks.size, figsize=(1.6 * ks.size, 2.1), squeeze=False)
    fig.patch.set_facecolor("black")
    for ax, k in zip(axes[0], ks):
        _no_axes(ax)
        ax.imshow(_axial(data, k), cmap="gray", vmin=0, vmax=vmax or 1.0, origin="lower", interpolation="nearest")
        if mask is not None and _axial(mask, k).any():
            ax.contour(_axial(mask, k).astype(float), levels=[0.5], colors="cyan", linewidths=0.7)
        if les is not None and _axial(les, k).any():
            ax.contour(_axial(les, k).astype(float), levels=[0.5], colors="red", linewidths=0.7)
        z = float((affine @ np.array([0, 0, k, 1.0]))[2])
        ax.set_title(f"z = {z:.0f} mm", color="white", fontsize=7)
    if title:
        fig.suptitle(title, color="white", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.8, wspace=0.03)
    return _save(fig, out_file)


def plot_registration(
    moving: nib.spatialimages.SpatialImage,
    template: nib.spatialimages.SpatialImage,
    out_file: str | os.PathLike,
    *,
    lesion: nib.spatialimages.SpatialImage | None = None,
    z_mm: Sequence[float] = MONTAGE_Z_MM,
    title: str | None = None,
) -> Path:
    """Registration check: the template's edges over the b0 warped into template space.

    Parameters
    ----------
    moving : nibabel image
        The b0 warped into template space.
    template : nibabel image
        The template (T2w); its edges (gradient magnitude above its 85th percentile inside
        the head) are drawn in yellow.
    out_file : path-like
        The PNG to write.
    lesion : nibabel image, default=None
        The template-space lesion mask, outlined in red.
    z_mm : sequence of float, default=MONTAGE_Z_MM
    title : str, default=None
    """
    data, affine = _canonical(moving)
    tpl = resample_to(nib.as_closest_canonical(template), affine, data.shape)
    grad = np.hypot(ndimage.sobel(tpl, axis=0), ndimage.sobel(tpl, axis=1))
    head = tpl > (0.1 * tpl.max() if tpl.max() > 0 else 0)
    edges = grad > (np.percentile(grad[head], 85) if head.any() else np.inf)
    les = resample_to(nib.as_closest_canonical(lesion), affine, data.shape, order=0) > 0 \
        if lesion is not None else None
    ks = [(z, k) for z, k in zip(z_mm, slice_indices(affine, data.shape, z_mm)) if k is not None]
    if not ks:
        ks = [(float((affine @ np.array([0, 0, data.shape[2] // 2, 1.0]))[2]), data.shape[2] // 2)]
    vmax = float(np.percentile(data[data > 0], 99.5)) if (data > 0).any() else 1.0
    ncol = min(5, len(ks))
    nrow = int(np.ceil(len(ks) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.7 * ncol, 2.0 * nrow + 0.3), squeeze=False)
    fig.patch.set_facecolor("black")
    for ax in axes.ravel():
        _no_axes(ax)
        ax.set_facecolor("black")
    for ax, (z, k) in zip(axes.ravel(), ks):
        ax.imshow(_axial(data, k), cmap="gray", vmin=0, vmax=vmax, origin="lower", interpolation="nearest")
        ax.imshow(np.ma.masked_equal(_axial(edges, k).astype(float), 0), cmap="autumn_r", vmin=0, vmax=1,
                  origin="lower", interpolation="nearest", alpha=0.8)
        if les is not None and _axial(les, k).any():
            ax.contour(_axial(les, k).astype(float), levels=[0.5], colors="red", linewidths=0.7)
        ax.set_title(f"z = {z:g} mm", color="white", fontsize=7)
    if title:
        fig.suptitle(title, color="white", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88, wspace=0.03, hspace=0.12)
    return _save(fig, out_file)


def plot_variant_probabilities(predictions: pd.DataFrame, out_file: str | os.PathLike, *,
                               title: str | None = None) -> Path:
    """Each variant's probability of a poor outcome, with the ensemble and the threshold.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The participant's ``desc-ensemble_predictions.tsv``: ``model``,
        ``probability_poor``, ``threshold`` (one row per variant plus ``ensemble``).
    out_file : path-like
        The PNG to write.
    title : str, default=None
    """
    table = predictions.reset_index(drop=True)
    is_ens = table["model"].astype(str) == "ensemble"
    variants = table[~is_ens]
    fig, ax = plt.subplots(figsize=(6.0, 0.32 * (len(variants) + 1) + 1.2))
    y = np.arange(len(variants))
    ax.barh(y, variants["probability_poor"].astype(float), color="#9bb7d4", height=0.6)
    ax.set_yticks(y, variants["model"].astype(str).tolist(), fontsize=8)
    ax.invert_yaxis()
    if is_ens.any():
        p = float(table.loc[is_ens, "probability_poor"].iloc[0])
        ax.axvline(p, color=_MODEL_COLOURS["ensemble"], lw=2, label=f"ensemble = {p:.2f}")
    thr = pd.to_numeric(table.get("threshold"), errors="coerce") if "threshold" in table else None
    if thr is not None and thr.notna().any():
        ax.axvline(float(thr.dropna().iloc[0]), color="black", ls="--", lw=1,
                   label=f"threshold = {float(thr.dropna().iloc[0]):.2f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Probability of a poor outcome (mRS ≥ 3)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, out_file)


# ---------------------------------------------------------------------------------------
# Group figures
# ---------------------------------------------------------------------------------------
def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    return fpr, tpr


def _rates(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = p >= threshold
    sens = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
    spec = float((~pred[y == 0]).mean()) if (y == 0).any() else float("nan")
    return sens, spec


def plot_roc(predictions: pd.DataFrame, out_file: str | os.PathLike, *, models: Sequence[str],
             reference: str = "ensemble", threshold: float = 0.5, title: str | None = None) -> Path:
    """ROC curves of the ensemble and the baselines, with the matched-specificity line.

    The reference model's operating point (its specificity at ``threshold``) is marked and
    a vertical line drawn at its false-positive rate; each other model's point at the
    lowest threshold reaching that specificity
    (:func:`bids_stroke.stats.comparisons.threshold_for_specificity`) is marked on it.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``desc-loco_predictions.tsv``: ``outcome`` (0/1) and one probability column per model.
    out_file : path-like
        The PNG to write.
    models : sequence of str
        Columns drawn; missing probabilities leave a participant out of that curve.
    reference : str, default="ensemble"
        The model whose specificity the others are matched to.
    threshold : float, default=0.5
        The reference model's decision threshold.
    title : str, default=None
    """
    from sklearn.metrics import roc_auc_score

    from bids_stroke.stats.comparisons import threshold_for_specificity

    y_all = pd.to_numeric(predictions["outcome"], errors="coerce").to_numpy()
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.75", lw=0.8, ls=":")
    ref_spec = None
    if reference in predictions:
        p = pd.to_numeric(predictions[reference], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        if ok.any() and np.unique(y_all[ok]).size == 2:
            _, ref_spec = _rates(y_all[ok], p[ok], threshold)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(models):
        if model not in predictions:
            continue
        p = pd.to_numeric(predictions[model], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        y = y_all[ok].astype(int)
        if np.unique(y).size < 2:
            continue
        fpr, tpr = _roc(y, p[ok])
        auc = roc_auc_score(y, p[ok])
        colour = _MODEL_COLOURS.get(model, cycle[i % len(cycle)])
        main = model in (reference, "lr_volume", "lr_aspects")
        ax.plot(fpr, tpr, color=colour, lw=2.0 if model == reference else (1.4 if main else 0.7),
                alpha=1.0 if main else 0.5, label=f"{model} (AUC {auc:.2f})")
        if ref_spec is not None:
            if model == reference:
                sens, spec = _rates(y, p[ok], threshold)
            else:
                t = threshold_for_specificity(y, p[ok], ref_spec)
                sens, spec = _rates(y, p[ok], t)
            if main:
                ax.plot(1 - spec, sens, "o", color=colour, ms=6, mec="black", mew=0.6)
    if ref_spec is not None:
        ax.axvline(1 - ref_spec, color="black", ls="--", lw=0.8,
                   label=f"matched specificity = {ref_spec:.2f}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity")
    ax.set_ylabel("Sensitivity")
    ax.legend(fontsize=6.5, loc="lower right")
    ax.set_title(title or "Out-of-center ROC curves", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_file)


def plot_calibration(predictions: pd.DataFrame, out_file: str | os.PathLike, *,
                     models: Sequence[str] = ("ensemble",), n_bins: int = 10,
                     title: str | None = None) -> Path:
    """Reliability diagram: observed fraction of poor outcomes per bin of predicted probability.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``outcome`` (0/1) and one probability column per model.
    out_file : path-like
        The PNG to write.
    models : sequence of str, default=("ensemble",)
    n_bins : int, default=10
        Equal-width bins over [0, 1]; empty bins are skipped. Marker area ~ bin count.
    title : str, default=None
    """
    y_all = pd.to_numeric(predictions["outcome"], errors="coerce").to_numpy()
    edges = np.linspace(0, 1, n_bins + 1)
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="perfect calibration")
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(models):
        if model not in predictions:
            continue
        p = pd.to_numeric(predictions[model], errors="coerce").to_numpy()
        ok = np.isfinite(p) & np.isfinite(y_all)
        bins = np.clip(np.digitize(p[ok], edges[1:-1]), 0, n_bins - 1)
        mean_p, frac, count = [], [], []
        for b in range(n_bins):
            sel = bins == b
            if sel.any():
                mean_p.append(p[ok][sel].mean())
                frac.append(y_all[ok][sel].mean())
                count.append(sel.sum())
        colour = _MODEL_COLOURS.get(model, cycle[i % len(cycle)])
        ax.plot(mean_p, frac, "-", color=colour, lw=1.2, label=model)
        ax.scatter(mean_p, frac, s=np.asarray(count, dtype=float) * 8 + 10, color=colour, edgecolor="black",
                   linewidth=0.5, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Mean predicted probability of a poor outcome")
    ax.set_ylabel("Observed fraction with a poor outcome")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or "Calibration (out-of-center predictions)", fontsize=9)
    fig.tight_layout()
    return _save(fig, out_file)
