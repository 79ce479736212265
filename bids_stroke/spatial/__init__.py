"""Standard space: templates (TemplateFlow or an offline fallback), ANTs registration of
a subject's b = 0 image to the T2w template, and resampling through its transforms.

Importing this package imports neither ANTs nor TemplateFlow.
"""

from bids_stroke.spatial.registration import (
    RegistrationResult,
    register_to_template,
    save_transforms,
)
from bids_stroke.spatial.templates import (
    DEFAULT_RESOLUTION,
    DEFAULT_TEMPLATE,
    FALLBACK_TEMPLATE,
    TemplateFile,
    TemplateSet,
    get_template,
    get_template_set,
)
from bids_stroke.spatial.warps import (
    apply_to_native,
    apply_to_template,
    apply_transform,
    warp_mask,
)

__all__ = [
    "DEFAULT_RESOLUTION",
    "DEFAULT_TEMPLATE",
    "FALLBACK_TEMPLATE",
    "RegistrationResult",
    "TemplateFile",
    "TemplateSet",
    "apply_to_native",
    "apply_to_template",
    "apply_transform",
    "get_template",
    "get_template_set",
    "register_to_template",
    "save_transforms",
    "warp_mask",
]
