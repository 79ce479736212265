"""Thin nipype interface over :mod:`bids_stroke.model`: one participant through the ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    Directory,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_stroke.bids.writers import write_nifti, write_tsv
from bids_stroke.bids.nifti import check_nifti
from bids_stroke.model.spec import MODEL_GRID, SCALES


class _PredictInputSpec(BaseInterfaceInputSpec):
    bundle = Directory(exists=True, mandatory=True, desc="trained ensemble (manifest.json + .keras files)")
    model_input = File(exists=True, mandatory=True, desc="space-model_desc-preproc_dwi image")
    reference = File(exists=True, mandatory=True, desc="an image on the native DWI grid")
    covariates = traits.Dict(desc="the participant's participants.tsv values of the bundle's clinical "
                                  "fusion columns (None where missing)")


class _PredictOutputSpec(TraitedSpec):
    predictions = File(exists=True, desc="one row per variant and the ensemble")
    a1 = File(exists=True, desc="ensemble attention a1 on the native grid")
    a2 = File(exists=True, desc="ensemble attention a2 on the native grid")
    a3 = File(exists=True, desc="ensemble attention a3 on the native grid")


class PredictEnsemble(SimpleInterface):
    """Probabilities of poor outcome and attention maps of one participant.

    The eight variants run in one fused call; each scale's ensemble attention (mean over
    variants, summing to 1 over the model grid) is put back on the native DWI grid with
    the model-grid affine. When the bundle holds a clinical fusion
    (``--clinical-columns`` at the group level) and every one of its columns has a value in
    ``covariates``, an ``ensemble+clinical`` row is added.
    """

    input_spec = _PredictInputSpec
    output_spec = _PredictOutputSpec

    def _run_interface(self, runtime):
        import pandas as pd

        from bids_stroke.model.attention import attention_image
        from bids_stroke.model.bundle import load_bundle
        from bids_stroke.model.ensemble import predict_participant

        bundle = load_bundle(self.inputs.bundle)
        model_img = check_nifti(self.inputs.model_input)
        result = predict_participant(bundle, np.asarray(model_img.dataobj, dtype=np.float32),
                                     covariates=self.inputs.covariates or None)
        out = Path.cwd() / "predictions.tsv"
        write_tsv(out, pd.DataFrame(result["rows"], columns=["model", "probability_poor", "threshold", "prediction"]))
        self._results["predictions"] = str(out)
        native = check_nifti(self.inputs.reference, load_data=False)
        for scale in SCALES:
            img = attention_image(result["model_grid_attention"][scale], model_img.affine, native)
            self._results[scale] = str(write_nifti(Path.cwd() / f"{scale}.nii.gz", img))
        return runtime


def attention_metadata(scale: str, variants: list[str], bundle: str) -> dict:
    """Sidecar of an ensemble attention map."""
    return {
        "Description": (
            f"Attention map {scale} of the ensemble (mean over its {len(variants)} variants), "
            f"upsampled to the {'x'.join(str(n) for n in MODEL_GRID)} model grid where it sums to 1, "
            "then resampled onto this image's grid (trilinear; not renormalised)."
        ),
        "AttentionScale": scale,
        "Variants": list(variants),
        "ModelBundle": str(bundle),
        "SumOnModelGrid": 1.0,
    }


def predictions_metadata(bundle: str, card: str | None) -> dict:
    """Sidecar of ``desc-ensemble_predictions.tsv``: its columns, the bundle and its model card's summary."""
    return {
        "model": {"Description": "A variant of the ensemble, the ensemble (mean of the variants' probabilities) "
                                 "or ensemble+clinical (the bundle's clinical fusion)"},
        "probability_poor": {"Description": "Probability of a poor outcome", "Units": "probability (0-1)"},
        "threshold": {"Description": "Decision threshold: predicted poor when probability_poor >= threshold",
                      "Units": "probability (0-1)"},
        "prediction": {"Description": "Predicted outcome", "Levels": {"0": "good", "1": "poor"}},
        "ModelBundle": str(bundle),
        "ModelCard": card or "none: the bundle has no model card",
    }
