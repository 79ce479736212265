"""Image figures of the reports: montages of maps and QC slices (matplotlib, Agg, PNG).

Every function draws from images already in memory (loaded from OUTPUT_DIR by the report
pages), writes one PNG (:func:`bids_stroke.report.canvas.save_png`) and returns its path.
The statistical plots are in :mod:`bids_stroke.report.plots`.

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
from matplotlib.colors import ListedColormap  # noqa: E402
from scipy import ndimage  # noqa: E402

from bids_stroke.report.canvas import save_png  # noqa: E402
from bids_stroke.spatial.resample import resample  # noqa: E402

__all__ = [
    "MONTAGE_Z_MM",
    "plot_attention_overlays",
    "plot_dwi_qc",
    "plot_montage",
    "plot_registration",
    "resample_to",
    "slice_indices",
]

#: Axial slices of the montages (MNI z, mm), as in Moulton et al. 2022.
MONTAGE_Z_MM = (-26, -16, -6, 4, 14, 24, 34, 44, 54, 64)

#: Percentile of the template's gradient magnitude (inside the head) above which a voxel is an edge.
EDGE_PERCENTILE = 90


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
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
    return resample(data, img.affine, ref_affine, ref_shape, order=order, mode="constant",
                    cval=0.0).astype(np.float32)


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


def _grey(data: np.ndarray, vmax: float) -> np.ndarray:
    grey = np.clip(data / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(data)
    return np.repeat(grey[..., None], 3, axis=-1)


def _tile(panels: Sequence[np.ndarray], gap: int = 1) -> tuple[np.ndarray, list[float]]:
    """Place 2D (or RGB) panels side by side; return the mosaic and each panel's centre x."""
    height = max(p.shape[0] for p in panels)
    parts, centres, x = [], [], 0
    for i, p in enumerate(panels):
        pad = [(0, height - p.shape[0]), (0, 0)] + [(0, 0)] * (p.ndim - 2)
        parts.append(np.pad(p, pad))
        centres.append(x + (p.shape[1] - 1) / 2)
        x += p.shape[1]
        if i < len(panels) - 1:
            parts.append(np.zeros((height, gap) + p.shape[2:], dtype=p.dtype))
            x += gap
    return np.concatenate(parts, axis=1), centres


def _vmax(data: np.ndarray, mask: np.ndarray | None = None) -> float:
    inside = data[mask] if mask is not None and mask.any() else data[data > 0]
    return float(np.percentile(inside, 99.5)) if inside.size else 1.0


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
    row_h, top = 1.45, (0.55 if title else 0.3)
    fig = plt.figure(figsize=(13.0, row_h * len(rows) + top))
    fig.patch.set_facecolor("black")
    height = row_h * len(rows) + top
    cached: dict[tuple, tuple] = {}
    for r, ((label, img), cmap_name) in enumerate(zip(rows, cmaps)):
        cmap = matplotlib.colormaps[cmap_name]
        data, affine = _canonical(img)
        values = _percent(data)
        key = (tuple(np.round(affine, 4).ravel()), data.shape)
        if key not in cached:
            bg = resample_to(nib.as_closest_canonical(background), affine, data.shape) \
                if background is not None else None
            outline = (resample_to(nib.as_closest_canonical(contour), affine, data.shape, order=0) > 0
                       if contour is not None else None)
            cached[key] = (bg, outline, _vmax(bg) if bg is not None else 1.0)
        bg, outline, bg_max = cached[key]
        panels, outlines = [], []
        for k in slice_indices(affine, data.shape, z_mm):
            if k is None:
                panels.append(np.zeros((data.shape[1], data.shape[0], 3)))
                outlines.append(np.zeros((data.shape[1], data.shape[0])))
                continue
            base = _grey(_axial(bg, k), bg_max) if bg is not None else np.zeros((data.shape[1], data.shape[0], 3))
            val = _axial(values, k)
            alpha = np.where(val >= 1.0, 0.9, 0.0)[..., None]
            panels.append(base * (1 - alpha) + cmap(val / 100.0)[..., :3] * alpha)
            outlines.append(_axial(outline, k).astype(float) if outline is not None
                            else np.zeros(val.shape))
        mosaic, centres = _tile(panels)
        bottom = (height - top - row_h * (r + 1)) / height
        ax = fig.add_axes((0.06, bottom + 0.02 / height, 0.88, (row_h - 0.1) / height))
        ax.set_facecolor("black")
        ax.imshow(mosaic, origin="lower", interpolation="nearest", aspect="equal")
        lines, _ = _tile(outlines)
        if lines.any():
            ax.contour(lines, levels=[0.5], colors="white", linewidths=0.5)
        _no_axes(ax)
        ax.set_ylabel(label, color="white", fontsize=8)
        ax.text(2, mosaic.shape[0] / 2, "L", color="white", fontsize=6, va="center")
        if r == 0:
            for z, cx in zip(z_mm, centres):
                ax.text(cx, mosaic.shape[0] + 2, f"z = {z:g} mm", color="white", fontsize=7, ha="center",
                        va="bottom")
        cax = fig.add_axes((0.955, bottom + 0.12 / height, 0.008, (row_h - 0.35) / height))
        bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 100)), cax=cax)
        bar.set_ticks([0, 50, 100])
        bar.ax.tick_params(colors="white", labelsize=6)
        bar.set_label("% of max", color="white", fontsize=6)
    if title:
        fig.suptitle(title, color="white", fontsize=9, y=1 - 0.1 / height)
    return save_png(fig, out_file)


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
def _slice_strip(fig_title: str | None, base: list[np.ndarray], labels: list[str],
                 outlines: Sequence[tuple[list[np.ndarray], str]], out_file, *, overlay: list[np.ndarray] | None = None,
                 ncol: int | None = None) -> Path:
    ncol = ncol or len(base)
    lines_of_panels = [list(range(i, min(i + ncol, len(base)))) for i in range(0, len(base), ncol)]
    aspect = base[0].shape[0] / base[0].shape[1]
    width = 12.0
    panel_w = width / ncol
    row_h = panel_w * aspect + 0.25
    top = 0.4 if fig_title else 0.1
    height = row_h * len(lines_of_panels) + top
    fig = plt.figure(figsize=(width, height))
    fig.patch.set_facecolor("black")
    for r, idx in enumerate(lines_of_panels):
        mosaic, centres = _tile([base[i] for i in idx])
        ax = fig.add_axes((0.0, (height - top - row_h * (r + 1)) / height, len(idx) / ncol, (row_h - 0.22) / height))
        ax.set_facecolor("black")
        ax.imshow(mosaic, origin="lower", interpolation="nearest", aspect="equal")
        if overlay is not None:
            over, _ = _tile([overlay[i] for i in idx])
            ax.imshow(np.ma.masked_equal(over, 0), cmap=ListedColormap(["#ffd400"]), vmin=0, vmax=1, origin="lower",
                      interpolation="nearest", alpha=0.85, aspect="equal")
        for panels, colour in outlines:
            lines, _ = _tile([panels[i] for i in idx])
            if lines.any():
                ax.contour(lines, levels=[0.5], colors=colour, linewidths=0.7)
        for i, cx in zip(idx, centres):
            ax.text(cx, mosaic.shape[0] + 1, labels[i], color="white", fontsize=7, ha="center", va="bottom")
        _no_axes(ax)
    if fig_title:
        fig.suptitle(fig_title, color="white", fontsize=9, y=1 - 0.08 / height)
    return save_png(fig, out_file)


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
    vmax = _vmax(data, mask)
    base = [_grey(_axial(data, k), vmax) for k in ks]
    labels = [f"z = {float((affine @ np.array([0, 0, k, 1.0]))[2]):.0f} mm" for k in ks]
    outlines = []
    if mask is not None:
        outlines.append(([_axial(mask, k).astype(float) for k in ks], "cyan"))
    if les is not None:
        outlines.append(([_axial(les, k).astype(float) for k in ks], "red"))
    return _slice_strip(title, base, labels, outlines, out_file)


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
        The template (T2w); its edges (in-plane gradient magnitude of the template smoothed
        by a 1-voxel Gaussian, above its :data:`EDGE_PERCENTILE` th percentile inside the
        head) are drawn in yellow.
    out_file : path-like
        The PNG to write.
    lesion : nibabel image, default=None
        The template-space lesion mask, outlined in red.
    z_mm : sequence of float, default=MONTAGE_Z_MM
    title : str, default=None
    """
    data, affine = _canonical(moving)
    tpl = resample_to(nib.as_closest_canonical(template), affine, data.shape)
    smooth = ndimage.gaussian_filter(tpl, 1.0)
    grad = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
    head = tpl > (0.1 * tpl.max() if tpl.max() > 0 else 0)
    edges = grad > (np.percentile(grad[head], EDGE_PERCENTILE) if head.any() else np.inf)
    les = resample_to(nib.as_closest_canonical(lesion), affine, data.shape, order=0) > 0 \
        if lesion is not None else None
    ks = [(z, k) for z, k in zip(z_mm, slice_indices(affine, data.shape, z_mm)) if k is not None]
    if not ks:
        ks = [(float((affine @ np.array([0, 0, data.shape[2] // 2, 1.0]))[2]), data.shape[2] // 2)]
    vmax = _vmax(data)
    base = [_grey(_axial(data, k), vmax) for _, k in ks]
    overlay = [_axial(edges, k).astype(float) for _, k in ks]
    outlines = [([_axial(les, k).astype(float) for _, k in ks], "red")] if les is not None else []
    return _slice_strip(title, base, [f"z = {z:g} mm" for z, _ in ks], outlines, out_file, overlay=overlay,
                        ncol=min(5, len(ks)))
