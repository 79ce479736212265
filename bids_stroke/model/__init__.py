"""The attention CNN: layers, the eight variants, fused ensemble inference, bundles, maps.

Arrays in, arrays out; file I/O is limited to :mod:`bids_stroke.model.bundle` (the
trained ensemble) and :func:`bids_stroke.model.attention.attention_image`.
"""

from .attention import attention_image, to_native, upsample_attention
from .bundle import Bundle, load_bundle, save_bundle
from .ensemble import FusedEnsemble, predict_participant
from .layers import EnsembleStack, PCAttention
from .spec import DECISION_THRESHOLD, INPUT_SHAPE, MODEL_GRID, SCALES
from .variants import VARIANTS, VariantSpec, build_variant, model_flops, variant_table

__all__ = [
    "DECISION_THRESHOLD",
    "INPUT_SHAPE",
    "MODEL_GRID",
    "SCALES",
    "VARIANTS",
    "Bundle",
    "EnsembleStack",
    "FusedEnsemble",
    "PCAttention",
    "VariantSpec",
    "attention_image",
    "build_variant",
    "load_bundle",
    "model_flops",
    "predict_participant",
    "save_bundle",
    "to_native",
    "upsample_attention",
    "variant_table",
]
