"""Build small fake BIDS datasets for tests.

Two levels, in the nipreps habit of generating trees from a description:

``write_tree(root, files)``
    Writes a mapping ``{relative path: content}`` under ``root``. The content decides
    the file type: a ``dict``/``list`` becomes JSON, a ``str`` text, ``bytes`` raw bytes,
    a :class:`numpy.ndarray` or :class:`nibabel.Nifti1Image` a NIfTI file (``.nii`` or
    ``.nii.gz`` after the path), a :class:`pandas.DataFrame` a BIDS TSV (``n/a`` for
    missing values), and ``None`` an empty file.

``make_dataset(root, subjects=..., ...)``
    Builds a whole dataset (raw data, ``participants.tsv`` and a lesion derivatives
    dataset) by describing it as such a mapping, writes it and returns ``root``. Every
    image is a tiny real NIfTI file (8 x 8 x 4 voxels at 2 mm by default), so nibabel,
    pybids and the BIDS validator all see a genuine dataset.

Examples
--------
>>> root = make_dataset(tmp_path / "bids", subjects=["01", "02"], sessions=["1"],
...                     kind="trace", with_adc=True, lesion_entity="desc-lesion_mask",
...                     participants_columns={"site": ["A", "B"], "mrs": [1, "n/a"]})
>>> sorted(p.name for p in (root / "sub-01" / "ses-1" / "dwi").iterdir())
['sub-01_ses-1_rec-ADC_dwi.json', 'sub-01_ses-1_rec-ADC_dwi.nii.gz',
 'sub-01_ses-1_rec-TRACE_dwi.json', 'sub-01_ses-1_rec-TRACE_dwi.nii.gz']

Other tests import these helpers: keep the defaults stable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

#: Shape of the 3D images written by default (voxels).
SHAPE = (8, 8, 4)
#: Voxel-to-scanner affine of every image written by default (2 mm isotropic, mm).
AFFINE = np.array(
    [
        [2.0, 0.0, 0.0, -8.0],
        [0.0, 2.0, 0.0, -8.0],
        [0.0, 0.0, 2.0, -4.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
#: b-values (s/mm²) of the 4D series written by default: one b0 and three b=1000.
BVALS = (0, 1000, 1000, 1000)
#: BIDS version written into every ``dataset_description.json``.
BIDS_VERSION = "1.10.0"
#: Sidecar of every DWI image unless ``metadata`` overrides it.
DWI_METADATA = {"RepetitionTime": 5.0, "EchoTime": 0.08}
#: The spellings of a lesion mask that ``make_dataset`` can write.
LESION_ENTITIES = ("label-lesion_mask", "desc-lesion_mask", "label-lesion_roi")


def nifti(data=None, *, shape=SHAPE, affine=AFFINE, dtype=np.float32, seed=0):
    """Return a small NIfTI-1 image.

    Parameters
    ----------
    data : array-like or None, default=None
        Voxel values; ``None`` draws seeded random values in [0, 100) of ``shape``.
    shape : tuple of int, default=SHAPE
        Shape when ``data`` is ``None`` (3D or 4D, voxels).
    affine : array of shape (4, 4), default=AFFINE
        Voxel-to-scanner affine (mm).
    dtype : numpy dtype, default=numpy.float32
        Data type on disk.
    seed : int, default=0
        Seed of the random values.

    Returns
    -------
    nibabel.Nifti1Image
    """
    if data is None:
        data = np.random.default_rng(seed).uniform(0, 100, size=shape)
    img = nb.Nifti1Image(np.asarray(data, dtype=dtype), np.asarray(affine, dtype=float))
    img.header.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    return img


def lesion_array(shape=SHAPE):
    """Return a binary uint8 array of ``shape`` with a 2 x 2 x 2 lesion near its centre."""
    mask = np.zeros(shape[:3], dtype=np.uint8)
    cx, cy, cz = (s // 2 for s in shape[:3])
    mask[cx - 1 : cx + 1, cy - 1 : cy + 1, max(cz - 1, 0) : cz + 1] = 1
    return mask


def write_tree(root, files: Mapping[str, object]) -> Path:
    """Write ``files`` (relative path -> content) under ``root`` and return ``root``.

    Parameters
    ----------
    root : str or Path
        Folder to write into (created if needed).
    files : mapping of str to object
        Relative path -> content. ``dict``/``list``: JSON; ``str``: text; ``bytes``:
        raw bytes; ``numpy.ndarray``: a NIfTI image with :data:`AFFINE`;
        ``nibabel`` image: saved as is; ``pandas.DataFrame``: tab-separated values
        with ``n/a`` for missing values and no index; ``None``: an empty file.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.write_bytes(b"")
        elif isinstance(content, (dict, list)):
            path.write_text(json.dumps(content, indent=2) + "\n")
        elif isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, pd.DataFrame):
            content.to_csv(path, sep="\t", index=False, na_rep="n/a")
        elif isinstance(content, np.ndarray):
            nifti(content, dtype=content.dtype).to_filename(path)
        elif isinstance(content, nb.spatialimages.SpatialImage):
            content.to_filename(path)
        else:
            raise TypeError(f"cannot write {type(content).__name__} to {path}")
    return root


def dataset_description(name="fake", *, derivative=False, generated_by=True):
    """Return the content of a ``dataset_description.json``.

    Parameters
    ----------
    name : str, default="fake"
        ``Name`` of the dataset (and of the pipeline for a derivative).
    derivative : bool, default=False
        Write ``DatasetType: derivative``.
    generated_by : bool, default=True
        For a derivative, include ``GeneratedBy`` (pybids needs it unless told not to
        validate).
    """
    desc = {"Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
            "License": "CC0", "Authors": ["Test Author"]}
    if derivative:
        desc["DatasetType"] = "derivative"
        if generated_by:
            desc["GeneratedBy"] = [{"Name": name, "Version": "0.0"}]
    return desc


def _per_subject(value, subject, index):
    """``value`` itself, or its entry for ``subject`` when it is a mapping/sequence."""
    if isinstance(value, Mapping):
        return value[subject]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return value[index]
    return value


def make_dataset(
    root,
    subjects: Sequence[str] = ("01",),
    sessions: Sequence[str] | None = None,
    *,
    kind="4d",
    with_adc=False,
    lesion_entity: str | None = "label-lesion_mask",
    lesion_space: str | None = None,
    lesion_dir=None,
    with_brain_mask=False,
    participants_columns: Mapping[str, object] | None = None,
    metadata: Mapping[str, object] | None = None,
    root_metadata: Mapping[str, object] | None = None,
    shape=SHAPE,
    bvals=BVALS,
    derivative_generated_by=True,
    derived_bvals=False,
    extra_files: Mapping[str, object] | None = None,
) -> Path:
    """Write a small, valid BIDS dataset with DWI and lesion masks; return its root.

    Parameters
    ----------
    root : str or Path
        Folder of the dataset (created).
    subjects : sequence of str, default=("01",)
        Participant labels, without ``sub-``.
    sessions : sequence of str or None, default=None
        Session labels (without ``ses-``) given to every subject; ``None``: no session
        level.
    kind : {"4d", "trace", "none"} or mapping/sequence of them, default="4d"
        Per subject (a mapping subject -> kind, or a sequence aligned with
        ``subjects``): ``"4d"`` writes ``_dwi.nii.gz`` (shape ``shape + (len(bvals),)``)
        with ``.bval``/``.bvec``; ``"trace"`` writes a 3D ``_rec-TRACE_dwi.nii.gz``
        without bval/bvec; ``"none"`` writes no DWI (only an anatomical image).
    with_adc : bool, default=False
        Also write ``_rec-ADC_dwi.nii.gz``.
    lesion_entity : {"label-lesion_mask", "desc-lesion_mask", "label-lesion_roi"} or \
None, default="label-lesion_mask"
        Spelling of the lesion masks; ``None`` writes none.
    lesion_space : str or None, default=None
        ``space`` entity of the lesion masks (e.g. ``"orig"``); ``None``: none.
    lesion_dir : str or Path or None, default=None
        Where the lesion derivatives dataset goes; ``None``: ``root/derivatives/lesions``.
    with_brain_mask : bool, default=False
        Also write ``_desc-brain_mask.nii.gz`` into the lesion derivatives dataset.
    participants_columns : mapping of str to object or None, default=None
        Extra ``participants.tsv`` columns: column -> one value for all, or a sequence
        aligned with ``subjects`` (``"n/a"`` for missing values).
    metadata : mapping or None, default=None
        Sidecar of each DWI image (:data:`DWI_METADATA` when ``None``; ``{}`` writes no
        sidecar). Trace images also get ``DiffusionBValue: max(bvals)``.
    root_metadata : mapping or None, default=None
        Written to a top-level ``dwi.json`` (BIDS inheritance) when given.
    shape : tuple of int, default=SHAPE
        Spatial shape of every image (voxels).
    bvals : sequence of int, default=BVALS
        b-values (s/mm²) of the 4D series; its length is the number of volumes.
    derivative_generated_by : bool, default=True
        Whether the lesion dataset's description has ``GeneratedBy``.
    derived_bvals : bool, default=False
        Also give each trace and ADC image its own one-volume ``.bval`` (the b-value)
        and ``.bvec`` (``0 0 0``). bids-validator 3 reports ``DWI_MISSING_BVAL`` and
        ``DWI_MISSING_BVEC`` errors for a ``_dwi`` image without them (and
        ``VOLUME_COUNT_MISMATCH`` when an ADC map inherits the 4D series' files), so
        pass ``True`` for a dataset that must pass validation.
    extra_files : mapping or None, default=None
        More files, relative to ``root``, written last with :func:`write_tree` (they may
        overwrite the generated ones).

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    lesion_root = Path(lesion_dir) if lesion_dir is not None else root / "derivatives" / "lesions"
    if lesion_entity is not None and lesion_entity not in LESION_ENTITIES:
        raise ValueError(f"lesion_entity must be one of {LESION_ENTITIES}. Got {lesion_entity!r}.")
    metadata = dict(DWI_METADATA if metadata is None else metadata)
    raw: dict[str, object] = {
        "dataset_description.json": dataset_description("fake"),
        "README": "A tiny fake dataset written by tests/bids_factory.py.\n",
    }
    deriv: dict[str, object] = {
        "dataset_description.json": dataset_description(
            "lesions", derivative=True, generated_by=derivative_generated_by
        ),
    }
    if root_metadata is not None:
        raw["dwi.json"] = dict(root_metadata)

    seed = 0
    for index, subject in enumerate(subjects):
        sub_kind = _per_subject(kind, subject, index)
        if sub_kind not in ("4d", "trace", "none"):
            raise ValueError(f"kind must be '4d', 'trace' or 'none'. Got {sub_kind!r}.")
        for session in sessions or [None]:
            folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
            stem = f"sub-{subject}" + (f"_ses-{session}" if session else "")
            seed += 1
            if sub_kind == "none":
                raw[f"{folder}/anat/{stem}_T1w.nii.gz"] = nifti(shape=shape, seed=seed)
            elif sub_kind == "4d":
                raw[f"{folder}/dwi/{stem}_dwi.nii.gz"] = nifti(
                    shape=tuple(shape) + (len(bvals),), seed=seed
                )
                raw[f"{folder}/dwi/{stem}_dwi.bval"] = " ".join(map(str, bvals)) + "\n"
                vecs = np.zeros((3, len(bvals)))
                for vol, b in enumerate(bvals):
                    if b:
                        vecs[vol % 3, vol] = 1.0
                raw[f"{folder}/dwi/{stem}_dwi.bvec"] = "\n".join(
                    " ".join(f"{v:g}" for v in row) for row in vecs
                ) + "\n"
                if metadata:
                    raw[f"{folder}/dwi/{stem}_dwi.json"] = metadata
            else:
                raw[f"{folder}/dwi/{stem}_rec-TRACE_dwi.nii.gz"] = nifti(shape=shape, seed=seed)
                if metadata:
                    raw[f"{folder}/dwi/{stem}_rec-TRACE_dwi.json"] = {
                        **metadata, "DiffusionBValue": max(bvals),
                    }
                if derived_bvals:
                    raw[f"{folder}/dwi/{stem}_rec-TRACE_dwi.bval"] = f"{max(bvals)}\n"
                    raw[f"{folder}/dwi/{stem}_rec-TRACE_dwi.bvec"] = "0\n0\n0\n"
            if with_adc and sub_kind != "none":
                raw[f"{folder}/dwi/{stem}_rec-ADC_dwi.nii.gz"] = nifti(
                    shape=shape, seed=seed + 1000
                )
                if metadata:
                    raw[f"{folder}/dwi/{stem}_rec-ADC_dwi.json"] = metadata
                if derived_bvals:
                    raw[f"{folder}/dwi/{stem}_rec-ADC_dwi.bval"] = f"{max(bvals)}\n"
                    raw[f"{folder}/dwi/{stem}_rec-ADC_dwi.bvec"] = "0\n0\n0\n"
            space = f"_space-{lesion_space}" if lesion_space else ""
            if lesion_entity is not None and sub_kind != "none":
                deriv[f"{folder}/dwi/{stem}{space}_{lesion_entity}.nii.gz"] = lesion_array(shape)
            if with_brain_mask and sub_kind != "none":
                deriv[f"{folder}/dwi/{stem}_desc-brain_mask.nii.gz"] = np.ones(
                    shape[:3], dtype=np.uint8
                )

    table = {"participant_id": [f"sub-{s}" for s in subjects]}
    for column, value in (participants_columns or {}).items():
        table[column] = [_per_subject(value, s, i) for i, s in enumerate(subjects)]
    raw["participants.tsv"] = pd.DataFrame(table)
    raw["participants.json"] = {
        column: {"Description": f"{column} (written by tests/bids_factory.py)"}
        for column in table
    }

    write_tree(root, raw)
    if lesion_entity is not None or with_brain_mask:
        write_tree(lesion_root, deriv)
    if extra_files:
        write_tree(root, extra_files)
    return root
