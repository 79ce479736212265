"""Thin nipype interface over :mod:`bids_stroke.preprocess.lesion_auto`: the automatic
lesion mask of one participant, on the native DWI grid."""

from __future__ import annotations

import logging

import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits

from bids_stroke.bids.nifti import check_nifti
from bids_stroke.errors import BadInputError
from bids_stroke.interfaces.dwi import _load, _save
from bids_stroke.preprocess import lesion_auto

LOGGER = logging.getLogger("bids_stroke")


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
