"""Ground truth of a simulated cohort: layout, loading and coordinate maps.

Layout (outside the BIDS scope; ``truth/`` is listed in ``.bidsignore``)::

    OUT_DIR/truth/simulation.json          cohort parameters (seed, sites, tissues, ...)
    OUT_DIR/truth/subjects.tsv             one row per subject: participant_id, session,
                                           soop_id, site, seed, subject_index,
                                           lesion_volume_template_ml, lesion_volume_native_ml
    OUT_DIR/truth/sub-<L>[/ses-<S>]/
        sub-<L>[_ses-<S>]_space-MNI152NLin2009aSym_res-1_label-lesion_mask.nii.gz
            the lesion on the template grid (197×233×189, 1 mm, uint8)
        sub-<L>[_ses-<S>]_from-scanner_to-MNI152NLin2009aSym_desc-displacement_xfm.nii.gz
            displacement u (mm) on a 4 mm template-space grid, shape (FX, FY, FZ, 1, 3)
        sub-<L>[_ses-<S>]_simulation.json
            soop_id, site profile, seeds, ``scanner_to_template`` (4×4 rigid),
            ``native_affine`` and ``native_shape`` of the DWI grid

A native DWI voxel ``v`` maps to template millimetres as ``q = x + u(x)`` with
``x = scanner_to_template @ native_affine @ v`` (see :mod:`bids_stroke.simulate.warp`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_stroke.bids.naming import LESION_DERIVATIVES, derivative_path, raw_path, truth_path
from bids_stroke.errors import MissingInputError
from bids_stroke.preprocess import dwi
from bids_stroke.simulate.anatomy import TEMPLATE_SPACE
from bids_stroke.simulate.warp import Warp


def truth_paths(out_dir, subject: str, session: str | None = None) -> dict[str, Path]:
    """Paths of one subject's ground-truth files (keys ``lesion``, ``field``, ``json``)."""
    return {
        "lesion": truth_path(out_dir, subject=subject, session=session, space=TEMPLATE_SPACE,
                             res="1", label="lesion", suffix="mask", extension=".nii.gz"),
        "field": truth_path(out_dir, subject=subject, session=session, to=TEMPLATE_SPACE,
                            desc="displacement", suffix="xfm", extension=".nii.gz",
                            **{"from": "scanner"}),
        "json": truth_path(out_dir, subject=subject, session=session, suffix="simulation",
                           extension=".json"),
    }


@dataclass(frozen=True)
class SubjectTruth:
    """A subject's ground truth.

    Attributes
    ----------
    warp : Warp
        Scanner-to-template map.
    native_affine : ndarray of shape (4, 4)
        Voxel-to-scanner matrix of the DWI grid.
    native_shape : tuple of 3 int
    lesion : ndarray of shape (197, 233, 189), uint8
        Template-space lesion.
    template_affine : ndarray of shape (4, 4)
    info : dict
        The subject's ``_simulation.json``.
    """

    warp: Warp
    native_affine: np.ndarray
    native_shape: tuple
    lesion: np.ndarray
    template_affine: np.ndarray
    info: dict

    def native_to_template(self, ijk: np.ndarray) -> np.ndarray:
        """Template voxel coordinates of native DWI voxel coordinates.

        Parameters
        ----------
        ijk : ndarray of shape (3, n)
            Native voxel coordinates (may be fractional).

        Returns
        -------
        ndarray of shape (3, n)
            Template voxel coordinates.
        """
        p = self.native_affine[:3, :3] @ ijk + self.native_affine[:3, 3:4]
        q = self.warp.scanner_to_template_points(p)
        inv = np.linalg.inv(self.template_affine)
        return inv[:3, :3] @ q + inv[:3, 3:4]

    def template_to_native(self, ijk: np.ndarray) -> np.ndarray:
        """Native DWI voxel coordinates of template voxel coordinates.

        Parameters
        ----------
        ijk : ndarray of shape (3, n)
            Template voxel coordinates.

        Returns
        -------
        ndarray of shape (3, n)
            Native voxel coordinates.
        """
        q = self.template_affine[:3, :3] @ ijk + self.template_affine[:3, 3:4]
        p = self.warp.template_to_scanner_points(q)
        inv = np.linalg.inv(self.native_affine)
        return inv[:3, :3] @ p + inv[:3, 3:4]


def load_truth(out_dir, subject: str, session: str | None = None) -> SubjectTruth:
    """Load one subject's ground truth.

    Parameters
    ----------
    out_dir : path-like
        The simulated dataset.
    subject : str
        Label without ``sub-``.
    session : str or None

    Returns
    -------
    SubjectTruth
    """
    paths = truth_paths(out_dir, subject, session)
    for p in paths.values():
        if not p.is_file():
            raise MissingInputError(f"Ground-truth file {p} does not exist.")
    info = json.loads(paths["json"].read_text())
    field_img = nib.load(str(paths["field"]))
    field = np.moveaxis(np.asarray(field_img.dataobj, np.float32)[:, :, :, 0, :], -1, 0)
    warp = Warp(scanner_to_template=np.array(info["scanner_to_template"]),
                field=field, field_affine=np.array(field_img.affine))
    les_img = nib.load(str(paths["lesion"]))
    return SubjectTruth(
        warp=warp,
        native_affine=np.array(info["native_affine"]),
        native_shape=tuple(info["native_shape"]),
        lesion=np.asarray(les_img.dataobj),
        template_affine=np.array(les_img.affine),
        info=info,
    )


def native_brain(truth: SubjectTruth) -> np.ndarray:
    """The simulated brain on a subject's native DWI grid.

    Each native voxel centre is mapped to template space (:meth:`SubjectTruth.native_to_template`)
    and takes the value of the template brain mask at the nearest template voxel; voxels
    that map outside the template are outside the brain.

    Parameters
    ----------
    truth : SubjectTruth
        The subject's ground truth (:func:`load_truth`).

    Returns
    -------
    ndarray of bool, shape ``truth.native_shape``
    """
    from bids_stroke.simulate.anatomy import load_anatomy

    brain = load_anatomy().brain
    ijk = np.indices(truth.native_shape).reshape(3, -1).astype(np.float64)
    tv = np.rint(truth.native_to_template(ijk)).astype(np.int64)
    inside = np.all((tv >= 0) & (tv < np.array(brain.shape)[:, None]), axis=0)
    out = np.zeros(tv.shape[1], bool)
    out[inside] = brain[tuple(tv[:, inside])]
    return out.reshape(truth.native_shape)


def template_lesion(truth: SubjectTruth, affine, shape) -> np.ndarray:
    """The simulated lesion on another template-space grid (e.g. the 2 mm outputs).

    The 1 mm truth is interpolated linearly at the grid's voxel centres and thresholded
    at 0.5.

    Parameters
    ----------
    truth : SubjectTruth
        The subject's ground truth (:func:`load_truth`).
    affine : ndarray of shape (4, 4)
        Voxel-to-template-world matrix of the grid.
    shape : tuple of 3 int
        Shape of the grid.

    Returns
    -------
    ndarray of bool, shape ``shape``
    """
    from scipy import ndimage

    vox = np.linalg.inv(truth.template_affine) @ np.asarray(affine, np.float64)
    return ndimage.affine_transform(np.asarray(truth.lesion, np.float32), vox[:3, :3], vox[:3, 3],
                                    output_shape=tuple(shape), order=1) >= 0.5


def native_images(out_dir, subject: str, session: str | None = None) -> dict:
    """A simulated subject's images as the participant level prepares them, with the truth.

    For evaluating native-grid steps against the truth without running the workflow: the
    trace and ADC (computed from a 4D series, or the ``rec-ADC`` export), the image the brain
    mask is computed on (b0, else the trace), the affine, and the native lesion mask of
    ``derivatives/lesions``.

    Returns
    -------
    dict
        ``trace``, ``adc``, ``reference`` (float64 arrays), ``affine`` (4 × 4) and
        ``lesion`` (bool array).
    """
    def path(extension, rec=None):
        return raw_path(out_dir, subject=subject, session=session, reconstruction=rec, datatype="dwi",
                        suffix="dwi", extension=extension)

    if path(".nii.gz").is_file():
        img = nib.load(path(".nii.gz"))
        b0, trace, b_value = dwi.b0_and_trace(np.asarray(img.dataobj, np.float64), np.loadtxt(path(".bval")))
        adc, reference = dwi.compute_adc(b0, trace, b_value), b0
    else:
        img = nib.load(path(".nii.gz", "TRACE"))
        trace = np.asarray(img.dataobj, np.float64)
        adc, reference = np.asarray(nib.load(path(".nii.gz", "ADC")).dataobj, np.float64), trace
    lesion = nib.load(derivative_path(Path(out_dir) / LESION_DERIVATIVES, subject=subject, session=session,
                                      label="lesion", suffix="mask", extension=".nii.gz"))
    return {"trace": trace, "adc": adc, "reference": reference, "affine": img.affine,
            "lesion": np.asarray(lesion.dataobj) > 0}
