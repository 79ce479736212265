"""Fused inference: every variant of an ensemble in one compiled Keras call.

:class:`FusedEnsemble` wires the variants side by side into one Keras graph (they share
the input) and stacks their outputs with :class:`~bids_stroke.model.layers.EnsembleStack`,
so one call of the compiled predict function returns, for a batch of volumes, the
per-variant and ensemble probabilities and the per-variant and ensemble attention maps.
The ensemble probability is the mean of the variants' probabilities; the ensemble
attention of a scale is the mean of the variants' maps (still summing to 1).

:func:`predict_participant` is what the participant level uses with ``--model``.
"""

from __future__ import annotations

import keras
import numpy as np

from .attention import upsample_attention
from .layers import EnsembleStack
from .spec import SCALES

__all__ = ["FusedEnsemble", "predict_participant"]


class FusedEnsemble:
    """Several variants run as one Keras model.

    Parameters
    ----------
    models : sequence of keras.Model
        Variants from :func:`~bids_stroke.model.variants.build_variant` (or loaded from a
        bundle), all with the same input shape and distinct names.

    Attributes
    ----------
    names : tuple of str
        The variants' names, in the order of ``models``.
    input_shape : tuple of 4 int
        ``(X, Y, Z, 1)``.
    model : keras.Model
        The fused graph: input ``(batch, X, Y, Z, 1)``; outputs ``probability``
        (batch, M, 1), ``probability_mean`` (batch, 1) and, per scale ``s``, ``s``
        (batch, M, x, y, z) and ``s_mean`` (batch, x, y, z).
    """

    def __init__(self, models):
        models = list(models)
        if not models:
            raise ValueError("'models' must hold at least one variant. Got none instead.")
        self.names = tuple(model.name for model in models)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"'models' must have distinct names. Got {list(self.names)} instead.")
        shapes = {tuple(model.input_shape[1:]) for model in models}
        if len(shapes) != 1:
            raise ValueError(f"'models' must share one input shape. Got {sorted(shapes)} instead.")
        self.input_shape = shapes.pop()
        self.models = models
        inputs = keras.Input(shape=self.input_shape, name="dwi")
        outputs = [model(inputs) for model in models]
        fused = {}
        for key in ("probability",) + SCALES:
            stacked, mean = EnsembleStack(name=f"stack_{key}")([out[key] for out in outputs])
            fused[key], fused[f"{key}_mean"] = stacked, mean
        self.model = keras.Model(inputs, fused, name="fused_ensemble")

    def _as_batch(self, volumes):
        x = np.asarray(volumes, dtype=np.float32)
        spatial = self.input_shape[:3]
        if x.shape == spatial or x.shape == self.input_shape:
            x = x.reshape((1,) + self.input_shape)
        elif x.shape[1:] == spatial:
            x = x[..., None]
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"'volumes' must have shape {spatial}, (batch,) + {spatial} or with a "
                f"trailing channel of 1. Got shape {np.shape(volumes)} instead."
            )
        return x

    def predict(self, volumes) -> dict:
        """Run every variant on a batch in one compiled call.

        Parameters
        ----------
        volumes : ndarray of shape (X, Y, Z), (batch, X, Y, Z) or (batch, X, Y, Z, 1)
            Normalised model inputs.

        Returns
        -------
        dict
            ``names`` (tuple of M str); ``probability`` (batch, M); ``ensemble_probability``
            (batch,); ``attention``: {scale: (batch, M, x, y, z)};
            ``ensemble_attention``: {scale: (batch, x, y, z)}; all float32 ndarrays.
        """
        out = self.model.predict_on_batch(self._as_batch(volumes))
        return {
            "names": self.names,
            "probability": np.asarray(out["probability"])[..., 0],
            "ensemble_probability": np.asarray(out["probability_mean"])[..., 0],
            "attention": {s: np.asarray(out[s]) for s in SCALES},
            "ensemble_attention": {s: np.asarray(out[f"{s}_mean"]) for s in SCALES},
        }


def predict_participant(bundle, model_input, covariates=None) -> dict:
    """Probabilities, decisions and attention maps of one participant.

    Parameters
    ----------
    bundle : bids_stroke.model.bundle.Bundle
        A loaded ensemble (:func:`~bids_stroke.model.bundle.load_bundle`).
    model_input : ndarray of shape (96, 96, 24)
        The normalised model input (the ``space-model_desc-preproc_dwi`` image's data).
    covariates : mapping of str to float, default=None
        The participant's clinical values; when the bundle's manifest holds a
        ``clinical_fusion`` and every one of its columns has a finite value here, the
        ``ensemble+clinical`` probability is added (:mod:`bids_stroke.stats.fusion`).

    Returns
    -------
    dict
        ``rows``: one dict per variant then ``ensemble``, with ``model``,
        ``probability_poor``, ``threshold`` and ``prediction`` (1 = poor outcome, i.e.
        probability >= threshold), the rows of ``desc-ensemble_predictions.tsv``;
        ``probability``: {model: float}; ``threshold``: float;
        ``attention``: {scale: {variant: ndarray (x, y, z)}} on each scale's grid;
        ``ensemble_attention``: {scale: ndarray (x, y, z)};
        ``model_grid_attention``: {scale: ndarray (96, 96, 24)}, the ensemble map
        upsampled to the model grid (sums to 1).
    """
    model_input = np.asarray(model_input)
    spatial = bundle.ensemble.input_shape[:3]
    if model_input.shape != spatial:
        raise ValueError(f"'model_input' must have shape {spatial}. Got {model_input.shape} instead.")
    out = bundle.ensemble.predict(model_input)
    threshold = float(bundle.threshold)
    probability = {name: float(p) for name, p in zip(out["names"], out["probability"][0])}
    probability["ensemble"] = float(out["ensemble_probability"][0])
    from .bundle import clinical_fusion  # bundle imports this module

    fusion = clinical_fusion(bundle.manifest)
    if fusion and covariates:
        values = [covariates.get(column) for column in fusion["columns"]]
        if all(v is not None and np.isfinite(float(v)) for v in values):
            from bids_stroke.stats.fusion import LogisticFusion, logit_clipped

            features = np.array([[float(logit_clipped(probability["ensemble"])), *map(float, values)]])
            probability["ensemble+clinical"] = float(LogisticFusion.from_dict(fusion).predict_proba(features)[0, 1])
    rows = [
        {"model": name, "probability_poor": p, "threshold": threshold, "prediction": int(p >= threshold)}
        for name, p in probability.items()
    ]
    return {
        "rows": rows,
        "probability": probability,
        "threshold": threshold,
        "attention": {
            s: {name: out["attention"][s][0, m] for m, name in enumerate(out["names"])} for s in SCALES
        },
        "ensemble_attention": {s: out["ensemble_attention"][s][0] for s in SCALES},
        "model_grid_attention": {
            s: upsample_attention(out["ensemble_attention"][s][0], spatial) for s in SCALES
        },
    }
