"""Template anatomy and diffusion physics of the simulated head.

The anatomy is nilearn's ICBM152 2009a symmetric template at 1 mm (grid 197×233×189,
named ``MNI152NLin2009aSym`` in file names): its grey-matter (GM) and white-matter (WM)
probability maps, cerebrospinal fluid (CSF) as brain mask − GM − WM, and an
extra-cerebral shell built from the distance to the brain (a thin layer of CSF, a dark
skull and a scalp with moderate b0 signal), so that skull-stripping is a real task.

The signal of a voxel is the partial-volume mixture
``S(b) = sum_t f_t * S0_t * exp(-b * ADC_t)`` over tissues ``t`` with fractions ``f_t``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Name of the template space in output file names.
TEMPLATE_SPACE = "MNI152NLin2009aSym"

#: Order of the tissue channels in :attr:`Anatomy.fractions` and :data:`TISSUES`.
TISSUE_NAMES = ("gm", "wm", "csf", "skull", "scalp")

#: Extra-cerebral shell, as distances from the brain surface in mm: CSF up to the first
#: value, skull up to the second, scalp up to the third.
SHELL_MM = (2.0, 7.0, 13.0)


@dataclass(frozen=True)
class Tissue:
    """Relaxation-weighted proton density and diffusivity of one tissue.

    Parameters
    ----------
    s0 : float
        Signal at b = 0 (T2-weighted, arbitrary units; WM is 0.8, CSF 2.0).
    adc : float
        Apparent diffusion coefficient in mm²/s.
    """

    s0: float
    adc: float


#: Tissue properties: CSF bright on b0 and dark on trace; the acute lesion has a slightly
#: raised S0 and about half the ADC of normal parenchyma (hyperintense trace, dark ADC).
TISSUES = {
    "gm": Tissue(s0=1.0, adc=0.80e-3),
    "wm": Tissue(s0=0.8, adc=0.70e-3),
    "csf": Tissue(s0=2.0, adc=3.0e-3),
    "skull": Tissue(s0=0.05, adc=0.5e-3),
    "scalp": Tissue(s0=0.6, adc=1.2e-3),
    "lesion": Tissue(s0=1.15, adc=0.40e-3),
}


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions of the template head.

    Attributes
    ----------
    fractions : ndarray of shape (5, X, Y, Z), float32
        Fractions of :data:`TISSUE_NAMES` in [0, 1] on the template grid.
    brain : ndarray of shape (X, Y, Z), bool
        The template brain mask.
    affine : ndarray of shape (4, 4)
        Voxel-to-world (mm, RAS) matrix of the template grid.
    """

    fractions: np.ndarray
    brain: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape (X, Y, Z) of the template grid."""
        return tuple(self.brain.shape)


def head_fractions(gm, wm, brain, *, shell_mm=SHELL_MM):
    """Tissue fractions of a head from brain tissue probability maps.

    Parameters
    ----------
    gm, wm : ndarray of shape (X, Y, Z)
        Grey- and white-matter probabilities in [0, 1] on a 1 mm grid.
    brain : ndarray of shape (X, Y, Z), bool
        Brain mask.
    shell_mm : tuple of 3 float, default=SHELL_MM
        Outer radii (mm from the brain surface) of the extra-cerebral CSF, skull and scalp.

    Returns
    -------
    ndarray of shape (5, X, Y, Z), float32
        Fractions of GM, WM, CSF, skull and scalp; they sum to at most 1 (air elsewhere).
    """
    brain = np.asarray(brain, bool)
    gm = np.where(brain, np.clip(gm, 0, 1), 0).astype(np.float32)
    wm = np.where(brain, np.clip(wm, 0, 1), 0).astype(np.float32)
    total = gm + wm
    over = total > 1
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf = np.where(brain, 1 - gm - wm, 0).astype(np.float32)
    dist = ndimage.distance_transform_edt(~brain).astype(np.float32)
    # Soft (1 mm wide) boundaries give partial volume between the shells.
    inside = [np.clip(r + 0.5 - dist, 0, 1) for r in shell_mm]
    outside = ~brain
    csf += np.where(outside, inside[0], 0)
    skull = np.where(outside, inside[1] - inside[0], 0).astype(np.float32)
    scalp = np.where(outside, inside[2] - inside[1], 0).astype(np.float32)
    return np.stack([gm, wm, csf, skull, scalp]).astype(np.float32)


def tissue_signal(fractions, lesion, b, *, adc_scale=1.0):
    """Noise-free diffusion-weighted signal of partial-volume voxels.

    The lesion replaces parenchyma (GM and WM) only: a voxel with lesion fraction ``l``
    keeps its CSF and extra-cerebral tissue and turns ``l`` of its GM and WM into lesion.

    Parameters
    ----------
    fractions : ndarray of shape (5, ...)
        Fractions of :data:`TISSUE_NAMES`.
    lesion : ndarray of shape (...) or None
        Lesion fraction in [0, 1] (None: no lesion).
    b : float
        b-value in s/mm².
    adc_scale : float, default=1.0
        Factor on every tissue ADC (a subject's global diffusivity).

    Returns
    -------
    ndarray of shape (...), float32
        Signal in the units of :attr:`Tissue.s0`.
    """
    fractions = np.asarray(fractions, np.float32)
    keep = np.float32(1.0) if lesion is None else (1 - lesion).astype(np.float32)
    out = np.zeros(fractions.shape[1:], np.float32)
    for k, name in enumerate(TISSUE_NAMES):
        t = TISSUES[name]
        weight = np.float32(t.s0 * np.exp(-b * t.adc * adc_scale))
        frac = fractions[k] * keep if name in ("gm", "wm") else fractions[k]
        out += weight * frac
    if lesion is not None:
        t = TISSUES["lesion"]
        weight = np.float32(t.s0 * np.exp(-b * t.adc * adc_scale))
        out += weight * lesion * (fractions[0] + fractions[1])
    return out


@functools.lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
    """Build the template head from nilearn's packaged ICBM152 2009a templates.

    Returns
    -------
    Anatomy
        Cached; built once per process (about 3 s).
    """
    from nilearn import datasets

    brain_img = datasets.load_mni152_brain_mask(resolution=1)
    gm = np.asarray(datasets.load_mni152_gm_template(resolution=1).get_fdata(), np.float32)
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(), np.float32)
    brain = np.asarray(brain_img.get_fdata()) > 0.5
    fractions = head_fractions(gm, wm, brain)
    return Anatomy(fractions=fractions, brain=brain, affine=np.array(brain_img.affine))
