"""Thin nipype interfaces over :mod:`bids_stroke.preprocess.lesion` and
:mod:`~bids_stroke.preprocess.lesion_auto`: a given lesion mask made binary, and the
automatic lesion mask of one participant, both on the native DWI grid."""

from __future__ import annotations

import logging

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits

from bids_stroke.bids.nifti import check_nifti
from bids_stroke.errors import BadInputError
from bids_stroke.interfaces.dwi import _load, _save
from bids_stroke.preprocess import lesion, lesion_auto

LOGGER = logging.getLogger("bids_stroke")


def read_lesion_mask(path, *, label=None):
    """A given lesion mask, binary (:func:`~bids_stroke.preprocess.lesion.binarize_lesion`).

    Returns
    -------
    mask : ndarray of bool
    image : nibabel.Nifti1Image
    info : dict
        How the mask was made binary, for the sidecars.

    Raises
    ------
    BadInputError
        (exit 65) naming ``path`` and why it is not a usable lesion mask.
    """
    image = check_nifti(path)
    try:
        mask, info = lesion.binarize_lesion(np.asanyarray(image.dataobj), label=label)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc}") from None
    return mask, image, info


class _BinaryLesionInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="the given lesion mask (binary, probabilities or labels)")
    label = traits.Int(desc="the lesion's label in a label map (--lesion-label)")


class _BinaryLesionOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="the lesion mask, uint8 0/1, on the same grid")
    info = traits.Dict(desc="how it was made binary (type, threshold or label)")


class BinaryLesion(SimpleInterface):
    """A given lesion mask as 0/1: probabilities thresholded, a label picked (:func:`read_lesion_mask`)."""

    input_spec = _BinaryLesionInputSpec
    output_spec = _BinaryLesionOutputSpec

    def _run_interface(self, runtime):
        label = self.inputs.label if isdefined(self.inputs.label) else None
        mask, image, info = read_lesion_mask(self.inputs.in_file, label=label)
        self._results["out_mask"] = _save("lesion_mask.nii.gz", mask.astype(np.uint8), image.affine)
        self._results["info"] = info
        return runtime


class _AutoLesionInputSpec(BaseInterfaceInputSpec):
    trace = File(exists=True, mandatory=True, desc="trace image on the native grid")
    adc = File(exists=True, mandatory=True, desc="ADC map on the same grid (any unit of lesion_auto.ADC_UNITS)")
    brain_mask = File(exists=True, mandatory=True, desc="brain mask on the same grid")
    sources = traits.List(traits.Str, desc="the input files the trace and ADC come from (for Sources)")


class _AutoLesionOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="automatic lesion mask (uint8, native grid)")
    metadata = traits.Dict(desc="method, thresholds, ADC unit found, volume: the mask's sidecar")


class AutoLesion(SimpleInterface):
    """Segment the acute infarct from the trace and the ADC (:func:`lesion_auto.segment_lesion`)."""

    input_spec = _AutoLesionInputSpec
    output_spec = _AutoLesionOutputSpec

    def _run_interface(self, runtime):
        trace, img = _load(self.inputs.trace, name="trace image")
        adc, _ = _load(self.inputs.adc, name="ADC map")
        if adc.ndim == 4 and adc.shape[3] == 1:
            adc = adc[..., 0]
        brain = np.asarray(check_nifti(self.inputs.brain_mask).dataobj) > 0
        try:
            mask, info = lesion_auto.segment_lesion(trace, adc, brain, img.affine)
        except BadInputError as exc:
            raise BadInputError(f"{self.inputs.adc}: {exc}") from None
        if not mask.any():
            LOGGER.warning("%s: the automatic lesion mask is empty (no lesion large enough to see).",
                           self.inputs.trace)
        self._results["out_mask"] = _save("auto_lesion_mask.nii.gz", mask.astype(np.uint8), img.affine)
        self._results["metadata"] = {
            "Type": "Lesion",
            "LesionSource": "auto",
            "Sources": list(self.inputs.sources) if isdefined(self.inputs.sources) else [],
            **info,
        }
        return runtime
