"""Thin nipype interfaces over :mod:`bids_stroke.spatial`: registration and warps."""

from __future__ import annotations

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

from bids_stroke.bids.writers import write_nifti
from bids_stroke.bids.nifti import check_nifti
from bids_stroke.spatial import registration, warps


class _RegisterInputSpec(BaseInterfaceInputSpec):
    moving = File(exists=True, mandatory=True, desc="b0 (or trace) on the native grid")
    brain_mask = File(exists=True, mandatory=True, desc="brain mask on the native grid")
    lesion_mask = File(exists=True, desc="lesion mask, excluded from the metric's samples")
    fixed = File(exists=True, mandatory=True, desc="brain-extracted T2w template")
    fixed_mask = File(exists=True, desc="template brain mask")
    seed = traits.Int(0, usedefault=True, desc="seed of ANTs' random sampling")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="threads")


class _RegisterOutputSpec(TraitedSpec):
    forward = File(exists=True, desc="native → template composite transform (.h5)")
    inverse = File(exists=True, desc="template → native composite transform (.h5)")
    warped = File(exists=True, desc="the skull-stripped moving image in template space")
    metadata = traits.Dict(desc="provenance of the registration")


class RegisterToTemplate(SimpleInterface):
    """ANTs registration (rigid, affine, SyN) of the skull-stripped b0 to the T2w template.

    The moving image is multiplied by the brain mask; the metric samples the brain
    without the lesion, whose signal has no counterpart in the template.
    """

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec

    def _run_interface(self, runtime):
        moving = check_nifti(self.inputs.moving)
        brain = np.asarray(check_nifti(self.inputs.brain_mask).dataobj) > 0
        data = np.asarray(moving.dataobj, dtype=np.float32) * brain
        sample = brain.copy()
        if isdefined(self.inputs.lesion_mask):
            sample &= ~(np.asarray(check_nifti(self.inputs.lesion_mask).dataobj) > 0)
        stripped = nib.Nifti1Image(data, moving.affine)
        sample_img = nib.Nifti1Image(sample.astype(np.uint8), moving.affine)
        result = registration.register_to_template(
            stripped,
            self.inputs.fixed,
            moving_mask=sample_img,
            fixed_mask=self.inputs.fixed_mask if isdefined(self.inputs.fixed_mask) else None,
            seed=self.inputs.seed,
            threads=self.inputs.num_threads,
        )
        cwd = Path.cwd()
        forward, inverse = registration.save_transforms(result, cwd / "forward.h5", cwd / "inverse.h5")
        self._results["forward"] = str(forward)
        self._results["inverse"] = str(inverse)
        self._results["warped"] = str(write_nifti(cwd / "warped.nii.gz", result.warped))
        self._results["metadata"] = {
            "Software": f"ANTs (antspyx), {result.transform}",
            "RandomSeed": result.seed,
            "Threads": result.threads,
            "Command": " ".join(result.command),
        }
        return runtime


class _ApplyTransformInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image on the native grid")
    transform = File(exists=True, mandatory=True, desc="native → template transform (.h5)")
    reference = File(exists=True, mandatory=True, desc="template image giving the output grid")
    is_mask = traits.Bool(False, usedefault=True, desc="a binary mask (linear + threshold 0.5)")


class _ApplyTransformOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the image in template space")


class ApplyTransform(SimpleInterface):
    """Warp a native image (or mask) into template space."""

    input_spec = _ApplyTransformInputSpec
    output_spec = _ApplyTransformOutputSpec

    def _run_interface(self, runtime):
        image = check_nifti(self.inputs.in_file)
        if self.inputs.is_mask:
            out = warps.warp_mask(image, self.inputs.transform, self.inputs.reference)
        else:
            out = warps.apply_to_template(image, self.inputs.transform, self.inputs.reference)
        self._results["out_file"] = str(write_nifti(Path.cwd() / "warped.nii.gz", out))
        return runtime
