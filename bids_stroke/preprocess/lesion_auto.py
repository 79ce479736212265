"""Automatic segmentation of the acute infarct from the trace image and the ADC map.

The classical two-condition rule of acute stroke imaging: a voxel is infarcted when its
diffusion is restricted (ADC below :data:`ADC_THRESHOLD`, 620 × 10⁻⁶ mm²/s, the
threshold of the RAPID software; Straka et al., J Magn Reson Imaging 2010; Purushotham et
al., Int J Stroke 2015) **and** it is hyperintense on the trace image relative to the
brain (a ratio to the median trace of the brain, :data:`TRACE_RATIO`). The rule is applied
inside the brain mask, away from its edge (:data:`EDGE_MM`; susceptibility artefacts and
partial volume with the skull), cerebrospinal fluid being excluded by the ADC condition;
connected components smaller than :data:`MIN_COMPONENT_ML` are removed, and so is a
component that is not brighter than the mirror region of the other hemisphere
(:data:`ASYMMETRY_RATIO`): a lesion is one-sided signal, a symmetric bright region is
anatomy or artefact.

ADC maps come in mm²/s (computed here), 10⁻³ mm²/s or 10⁻⁶ mm²/s (vendor exports):
:func:`adc_unit` recognises the unit from the median ADC of the brain (about 0.8 × 10⁻³
mm²/s in parenchyma) and :func:`segment_lesion` converts to 10⁻⁶ mm²/s.

Pure numpy/scipy on arrays and 4 × 4 affines (mm); no file I/O.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import BadInputError
from .brainmask import as_mask, voxel_sizes

__all__ = [
    "ADC_THRESHOLD",
    "ADC_UNITS",
    "ASYMMETRY_RATIO",
    "EDGE_MM",
    "METHOD",
    "MIN_COMPONENT_ML",
    "TRACE_RATIO",
    "adc_unit",
    "dice",
    "segment_lesion",
]

#: Restricted diffusion: ADC below this (10⁻⁶ mm²/s), the RAPID threshold.
ADC_THRESHOLD = 620.0
#: Hyperintensity: trace at least this times the median trace of the brain.
TRACE_RATIO = 1.5
#: Voxels closer than this to the edge of the brain mask (mm) are not lesion.
EDGE_MM = 4.0
#: Connected components (26-connected) smaller than this (mL) are removed.
MIN_COMPONENT_ML = 0.2
#: A component's median trace must exceed its mirror region's (other hemisphere) by this factor.
ASYMMETRY_RATIO = 1.15

#: Unit name -> (factor to 10⁻⁶ mm²/s, range of the median brain ADC in that unit).
ADC_UNITS = {
    "mm^2/s": (1e6, (1e-4, 5e-3)),
    "1e-3 mm^2/s": (1e3, (0.1, 5.0)),
    "1e-6 mm^2/s": (1.0, (100.0, 5000.0)),
}

#: One line naming the method, for sidecars and reports.
METHOD = (f"ADC < {ADC_THRESHOLD:g} x 1e-6 mm^2/s (RAPID) and trace >= {TRACE_RATIO:g} x the "
          f"brain median, inside the brain mask eroded by {EDGE_MM:g} mm, components >= "
          f"{MIN_COMPONENT_ML:g} mL brighter than their mirror region by {ASYMMETRY_RATIO:g}x")


def adc_unit(adc, brain) -> tuple[str, float, float]:
    """The unit of an ADC map, from the median ADC of the brain.

    Parameters
    ----------
    adc : ndarray of shape (X, Y, Z)
    brain : ndarray of bool, shape (X, Y, Z)

    Returns
    -------
    unit : str
        A key of :data:`ADC_UNITS`.
    factor : float
        Multiply the map by this to get 10⁻⁶ mm²/s.
    median : float
        The median brain ADC, in the map's unit.

    Raises
    ------
    BadInputError
        When the median fits none of the units (the message gives it).
    """
    values = np.asarray(adc, dtype=np.float64)[as_mask(brain, name="brain mask", shape=np.shape(adc))]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise BadInputError("'adc' must have positive values inside the brain. Got none.")
    median = float(np.median(values))
    for unit, (factor, (low, high)) in ADC_UNITS.items():
        if low <= median <= high:
            return unit, factor, median
    raise BadInputError(
        f"The ADC map's median in the brain is {median:.4g}, which fits none of the units "
        f"{', '.join(ADC_UNITS)} (brain tissue is about 0.8 x 1e-3 mm^2/s)."
    )


def _mirror_trace(trace, affine, brain) -> np.ndarray:
    """The trace at each voxel's mirror position across the brain's mid-sagittal plane.

    The plane is x = the x of the brain mask's centroid in world (RAS) coordinates; the
    mirrored position is interpolated linearly (0 outside the image).
    """
    ijk = np.indices(trace.shape, dtype=np.float64).reshape(3, -1)
    world = affine[:3, :3] @ ijk + affine[:3, 3:4]
    centre = (affine[:3, :3] @ np.argwhere(brain).mean(axis=0) + affine[:3, 3])[0]
    world[0] = 2.0 * centre - world[0]
    mirrored = np.linalg.solve(affine[:3, :3], world - affine[:3, 3:4])
    return ndimage.map_coordinates(trace, mirrored, order=1, mode="constant", cval=0.0).reshape(trace.shape)


def segment_lesion(trace, adc, brain, affine, *, adc_threshold=ADC_THRESHOLD,
                   trace_ratio=TRACE_RATIO, edge_mm=EDGE_MM, min_component_ml=MIN_COMPONENT_ML,
                   asymmetry_ratio=ASYMMETRY_RATIO):
    """Segment the acute infarct on the native grid.

    Parameters
    ----------
    trace : ndarray of shape (X, Y, Z)
        Trace-weighted image (b = 1000–2000 s/mm²).
    adc : ndarray of shape (X, Y, Z)
        ADC map on the same grid, in any unit of :data:`ADC_UNITS`.
    brain : ndarray of bool, shape (X, Y, Z)
        Brain mask.
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine (mm).
    adc_threshold : float, default=620
        10⁻⁶ mm²/s.
    trace_ratio, edge_mm, min_component_ml, asymmetry_ratio : float
        See the module constants.

    Returns
    -------
    mask : ndarray of bool, shape (X, Y, Z)
        The lesion (may be empty: a lesion can be too small to see).
    info : dict
        For the mask's sidecar: ``Method``, the thresholds (``AdcThreshold`` in 10⁻⁶
        mm²/s, ``TraceRatio``, ``EdgeDistance`` in mm, ``MinComponentVolume`` in mL,
        ``AsymmetryRatio``), the ADC unit found (``AdcUnitFound``), ``AdcMedianBrain``
        (in that unit) and ``TraceMedianBrain``, ``ComponentsKept`` and
        ``ComponentsRemoved`` (``TooSmall``, ``Symmetric``), ``LesionVolume`` (mL).
    """
    trace = np.nan_to_num(np.asarray(trace, dtype=np.float64))
    if trace.ndim != 3:
        raise BadInputError(f"'trace' must be a 3D image. Got shape {trace.shape} instead.")
    adc = np.nan_to_num(np.asarray(adc, dtype=np.float64))
    if adc.shape != trace.shape:
        raise BadInputError(f"'adc' must be on the trace's grid {trace.shape}. Got shape {adc.shape} instead.")
    brain = as_mask(brain, name="brain mask", shape=trace.shape)
    affine = np.asarray(affine, dtype=np.float64)
    zooms = voxel_sizes(affine)
    unit, factor, adc_median = adc_unit(adc, brain)
    adc_um = adc * factor
    trace_median = float(np.median(trace[brain]))

    inner = ndimage.distance_transform_edt(brain, sampling=zooms) > edge_mm
    candidate = inner & (adc_um > 0) & (adc_um < adc_threshold) & (trace >= trace_ratio * trace_median)
    labels, n = ndimage.label(candidate, structure=np.ones((3, 3, 3), bool))
    voxel_ml = float(np.prod(zooms)) / 1000.0
    mask = np.zeros(trace.shape, bool)
    small = symmetric = 0
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:] * voxel_ml
        mirror = _mirror_trace(trace, affine, brain)
        for index in range(1, n + 1):
            if sizes[index - 1] < min_component_ml:
                small += 1
                continue
            voxels = labels == index
            if np.median(trace[voxels]) < asymmetry_ratio * np.median(mirror[voxels]):
                symmetric += 1
                continue
            mask |= voxels
    info = {
        "Method": METHOD,
        "AdcThreshold": float(adc_threshold),
        "AdcThresholdUnits": "1e-6 mm^2/s",
        "TraceRatio": float(trace_ratio),
        "EdgeDistance": float(edge_mm),
        "MinComponentVolume": float(min_component_ml),
        "AsymmetryRatio": float(asymmetry_ratio),
        "AdcUnitFound": unit,
        "AdcMedianBrain": adc_median,
        "TraceMedianBrain": trace_median,
        "ComponentsKept": int(n - small - symmetric),
        "ComponentsRemoved": {"TooSmall": int(small), "Symmetric": int(symmetric)},
        "LesionVolume": float(mask.sum()) * voxel_ml,
    }
    return mask, info


def dice(a, b) -> float:
    """Dice coefficient of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)
