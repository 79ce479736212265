"""The attention CNN: layers, the eight variants, fused ensemble inference, bundles, maps.

Arrays in, arrays out; file I/O is limited to :mod:`bids_stroke.model.bundle` (the
trained ensemble) and :func:`bids_stroke.model.attention.attention_image`.

The names below are imported on first use, so that ``bids_stroke.model.spec`` (what the
rest of the package knows about the model) is read without importing Keras.
"""

from __future__ import annotations

import importlib

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "attention_image": "attention", "to_native": "attention", "upsample_attention": "attention",
    "Bundle": "bundle", "load_bundle": "bundle", "read_manifest": "bundle", "save_bundle": "bundle",
    "FusedEnsemble": "ensemble", "predict_participant": "ensemble",
    "EnsembleStack": "layers", "PCAttention": "layers",
    "DECISION_THRESHOLD": "spec", "INPUT_SHAPE": "spec", "MANIFEST": "spec", "MODEL_GRID": "spec",
    "SCALES": "spec",
    "VARIANTS": "variants", "VariantSpec": "variants", "build_variant": "variants",
    "model_flops": "variants", "variant_table": "variants",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
