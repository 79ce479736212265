"""Thin nipype interfaces over :mod:`bids_stroke.preprocess`: files in, files out.

Each interface reads its inputs with nibabel, calls the numeric core on arrays and writes
its results (reproducibly gzipped) in the node's working folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_stroke.bids.writers import write_json, write_nifti
from bids_stroke.bids.nifti import check_nifti
from bids_stroke.errors import BadInputError
from bids_stroke.model.spec import MODEL_GRID
from bids_stroke.preprocess import brainmask, dwi, grid, lesion, lesion_auto, normalize
from bids_stroke.spatial.resample import resample

LOGGER = logging.getLogger("bids_stroke")


def _load(path: str, *, name: str, counts: dict | None = None) -> tuple[np.ndarray, nib.Nifti1Image]:
    """Voxel data (float32) and the image of ``path``.

    NaN/Inf voxels are set to 0 with a warning, and counted in ``counts`` (file name ->
    number of voxels) for the sidecars. An all-zero or constant image is refused.
    """
    img = check_nifti(path)
    data, n_bad = dwi.sanitize(np.asarray(img.dataobj, dtype=np.float32))
    if n_bad:
        LOGGER.warning("%s: %d NaN/Inf voxels set to 0.", path, n_bad)
        if counts is not None:
            counts[Path(path).name] = int(n_bad)
    try:
        dwi.check_not_empty(data, name=name)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc}") from None
    return data, img


def _save(name: str, data: np.ndarray, affine: np.ndarray, header=None) -> str:
    img = nib.Nifti1Image(data, affine, header)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return str(write_nifti(Path.cwd() / name, img))


# ---------------------------------------------------------------------------------------
class _PrepareDWIInputSpec(BaseInterfaceInputSpec):
    dwi = File(exists=True, desc="4D DWI series (with bval)")
    bval = File(exists=True, desc="b-values of the 4D series")
    trace = File(exists=True, desc="trace image of a trace-only export (rec-TRACE)")
    trace_b_value = traits.Float(desc="b-value of the trace image (s/mm²)")
    adc = File(exists=True, desc="ADC map of a trace-only export (rec-ADC)")


class _PrepareDWIOutputSpec(TraitedSpec):
    reference = File(exists=True, desc="b0 when available, else the trace: masking and registration")
    trace = File(exists=True, desc="trace (geometric mean of the highest shell)")
    b0 = File(desc="mean of the b≈0 volumes (4D series only)")
    adc = File(desc="ADC map (mm²/s) when b0 and trace exist, or the rec-ADC input as is")
    b_value = traits.Float(desc="b-value of the trace (s/mm²)")
    metadata = traits.Dict(desc="what was done, for the sidecars")


class PrepareDWI(SimpleInterface):
    """b0, trace and ADC from a 4D series (with bval) or a trace-only export."""

    input_spec = _PrepareDWIInputSpec
    output_spec = _PrepareDWIOutputSpec

    def _run_interface(self, runtime):
        meta: dict = {}
        nonfinite: dict = {}
        if isdefined(self.inputs.dwi):
            data, img = _load(self.inputs.dwi, name="DWI series", counts=nonfinite)
            if data.ndim != 4:
                raise BadInputError(f"{self.inputs.dwi}: a 4D series is needed. Got {data.ndim}D instead.")
            bvals = np.atleast_1d(np.loadtxt(self.inputs.bval, dtype=np.float64))
            try:
                b0, trace, b_value = dwi.b0_and_trace(data, bvals)
            except BadInputError as exc:
                raise BadInputError(f"{self.inputs.dwi}: {exc}") from None
            meta["Sources"] = [str(Path(self.inputs.dwi).absolute())]
            meta["TraceBValue"] = b_value
            if b0 is not None:
                self._results["b0"] = _save("b0.nii.gz", b0.astype(np.float32), img.affine)
        else:
            if not isdefined(self.inputs.trace):
                raise BadInputError("Neither a 4D DWI series nor a trace image was given.")
            trace, img = _load(self.inputs.trace, name="trace image", counts=nonfinite)
            if trace.ndim == 4 and trace.shape[3] == 1:
                trace = trace[..., 0]
            if trace.ndim != 3:
                raise BadInputError(f"{self.inputs.trace}: a 3D trace image is needed. Got shape {trace.shape}.")
            b0 = None
            b_value = float(self.inputs.trace_b_value) if isdefined(self.inputs.trace_b_value) else float("nan")
            meta["Sources"] = [str(Path(self.inputs.trace).absolute())]
            meta["TraceBValue"] = b_value
        affine = img.affine
        self._results["trace"] = _save("trace.nii.gz", trace.astype(np.float32), affine)
        self._results["reference"] = self._results["b0"] if b0 is not None else self._results["trace"]
        if b0 is not None:
            adc = dwi.compute_adc(b0, trace, b_value)
            self._results["adc"] = _save("adc.nii.gz", adc.astype(np.float32), affine)
            meta["ADC"] = "computed from b0 and trace (mm^2/s)"
        elif isdefined(self.inputs.adc):
            self._results["adc"] = self.inputs.adc
            meta["ADC"] = "the rec-ADC input, unchanged"
        if nonfinite:
            meta["NonFiniteVoxelsSetToZero"] = nonfinite
        self._results["b_value"] = b_value
        self._results["metadata"] = meta
        return runtime


# ---------------------------------------------------------------------------------------
class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="b0 (or trace) on the native grid")
    user_mask = File(exists=True, desc="a brain mask given by the user (wins)")


class _BrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="brain mask (uint8) on the native grid")
    metadata = traits.Dict(desc="how the mask was made")


class BrainMask(SimpleInterface):
    """Brain mask: the user's ``desc-brain_mask`` if given, else dipy's median_otsu."""

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        data, img = _load(self.inputs.in_file, name="reference image")
        if isdefined(self.inputs.user_mask):
            mask = brainmask.as_mask(np.asarray(check_nifti(self.inputs.user_mask).dataobj),
                                     name="brain mask", shape=data.shape)
            meta = {"Type": "Brain", "Method": "given by the user",
                    "Sources": [str(Path(self.inputs.user_mask).absolute())]}
        else:
            mask = brainmask.brain_mask(data, brainmask.voxel_sizes(img.affine))
            meta = {"Type": "Brain", "Method": f"dipy median_otsu on the b0 (or trace) binned to about {brainmask.GRID_MM:g} mm, "
                                                "largest component, holes filled"}
        self._results["out_mask"] = _save("brain_mask.nii.gz", mask.astype(np.uint8), img.affine)
        self._results["metadata"] = meta
        return runtime


# ---------------------------------------------------------------------------------------
class _ModelInputInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="trace image on the native grid")
    brain_mask = File(exists=True, mandatory=True, desc="brain mask on the native grid")
    lesion_mask = File(exists=True, desc="lesion mask on the native grid")
    shape = traits.Tuple(MODEL_GRID, usedefault=True, desc="model grid shape (voxels)")
    source_metadata = traits.Dict(desc="what PrepareDWI did (sources, b-value, NaN voxels)")


class _ModelInputOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="normalised trace on the model grid")
    out_lesion = File(desc="lesion mask on the model grid")
    metadata = traits.Dict(desc="normalisation reference, crop box, model-grid affine")


class ModelInput(SimpleInterface):
    """Lesion-aware normalisation, square crop to the brain and resampling to the model grid."""

    input_spec = _ModelInputInputSpec
    output_spec = _ModelInputOutputSpec

    def _run_interface(self, runtime):
        data, img = _load(self.inputs.in_file, name="trace image")
        mask = brainmask.as_mask(np.asarray(check_nifti(self.inputs.brain_mask).dataobj), name="brain mask")
        lesion_mask = None
        if isdefined(self.inputs.lesion_mask):
            lesion_mask = brainmask.as_mask(
                np.asarray(check_nifti(self.inputs.lesion_mask).dataobj), name="lesion mask", shape=data.shape
            )
            if not lesion_mask.any():
                LOGGER.warning("%s: the lesion mask is empty; normalising by the whole brain.",
                               self.inputs.lesion_mask)
        normalised, reference = normalize.normalize_intensity(data, mask, lesion_mask)
        box = grid.crop_box(mask, img.affine)
        shape = tuple(int(n) for n in self.inputs.shape)
        model_affine = grid.model_grid_affine(img.affine, box, shape)
        model = resample(normalised, img.affine, model_affine, shape, order=1)
        self._results["out_file"] = _save("model_input.nii.gz", model.astype(np.float32), model_affine)
        if lesion_mask is not None:
            model_lesion = grid.resample_mask(lesion_mask, img.affine, model_affine, shape)
            self._results["out_lesion"] = _save("model_lesion.nii.gz", model_lesion.astype(np.uint8), model_affine)
        self._results["metadata"] = {
            **(self.inputs.source_metadata if isdefined(self.inputs.source_metadata) else {}),
            "SkullStripped": True,
            "NormalizationReference": float(reference),
            "NormalizationDescription": (
                "trace divided by the mean of the non-lesioned brain (brain mask minus lesion "
                "mask); 0 outside the brain"
            ),
            "CropBox": box,
            "ModelGridShape": list(shape),
            "ModelGridAffine": model_affine.tolist(),
            "NativeGridAffine": img.affine.tolist(),
            "NativeGridShape": list(data.shape),
        }
        return runtime


# ---------------------------------------------------------------------------------------
class _LesionMeasuresInputSpec(BaseInterfaceInputSpec):
    lesion_mask = File(exists=True, desc="lesion mask on the native grid")
    template_lesion = File(exists=True, desc="lesion mask in template space")
    template_space = traits.Str(mandatory=True, desc="name of the template space")
    lesion_source = traits.Enum("given", "auto", desc="where lesion_mask comes from")
    auto_mask = File(exists=True, desc="the automatic mask, when it is not lesion_mask (for its Dice)")
    lesion_output = File(exists=True, desc="the derivative lesion_mask was written as (named in Sources)")
    lesion_info = traits.Dict(desc="how a given mask was made binary (read_lesion_mask), recorded as it is")


class _LesionMeasuresOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="JSON with volume (mL) and side")


class LesionMeasures(SimpleInterface):
    """Lesion volume (mL, native grid) and side (template-space x coordinate)."""

    input_spec = _LesionMeasuresInputSpec
    output_spec = _LesionMeasuresOutputSpec

    def _run_interface(self, runtime):
        result: dict = {"TemplateSpace": self.inputs.template_space}
        if isdefined(self.inputs.lesion_mask):
            img = check_nifti(self.inputs.lesion_mask)
            mask = np.asarray(img.dataobj) > 0
            result["LesionVolume"] = lesion.lesion_volume_ml(mask, img.affine)
            result["LesionVolumeUnits"] = "mL"
            result["LesionVoxels"] = int(mask.sum())
            named = self.inputs.lesion_output if isdefined(self.inputs.lesion_output) else self.inputs.lesion_mask
            result["Sources"] = [str(Path(named).absolute())]
            result["LesionSource"] = self.inputs.lesion_source if isdefined(self.inputs.lesion_source) else "given"
            if isdefined(self.inputs.lesion_info):
                result.update(self.inputs.lesion_info)
            if not mask.any():
                result["Note"] = "the lesion mask is empty: no lesion was found (it may be too small to see)"
            if isdefined(self.inputs.auto_mask):
                auto = np.asarray(check_nifti(self.inputs.auto_mask).dataobj) > 0
                result["AutoLesionVolume"] = lesion.lesion_volume_ml(auto, img.affine)
                result["AutoLesionDice"] = lesion_auto.dice(auto, mask) if auto.shape == mask.shape else None
            if isdefined(self.inputs.template_lesion):
                timg = check_nifti(self.inputs.template_lesion)
                tmask = np.asarray(timg.dataobj) > 0
                result["LesionSide"] = lesion.lesion_side(tmask, timg.affine)
                result["LesionSideDescription"] = (
                    "left/right: hemisphere of the lesion in template space (x < 0 is left); "
                    f"bilateral: each hemisphere holds >= {lesion.BILATERAL_FRACTION:.0%} of it"
                )
        else:
            result.update({"LesionVolume": None, "LesionSide": None, "LesionSource": None,
                           "Note": "no lesion mask was found or computed for this participant"})
        out = Path.cwd() / "lesion_measures.json"
        write_json(out, result)
        self._results["out_file"] = str(out)
        return runtime
