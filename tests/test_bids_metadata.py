"""Sidecar inheritance: which .json, .bval and .bvec apply to an image, and the b-values."""

from __future__ import annotations

import pytest
from bids_factory import make_dataset

from bids_stroke.bids.layout import load_layout
from bids_stroke.bids.metadata import (
    b_value_from_bval,
    b_value_from_sidecar,
    gradient_files,
    merged_metadata,
)
from bids_stroke.errors import BadInputError


def _image(layout, name):
    return next(f for f in layout.get(extension=".nii.gz", return_type="object")
                if f.filename == name)


def test_most_specific_sidecar_wins_within_a_folder(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="trace", extra_files={
        "sub-01/dwi/sub-01_dwi.json": {"DiffusionBValue": 3000, "SeriesLevel": True},
    })
    layout = load_layout(root)
    metadata = merged_metadata(layout, _image(layout, "sub-01_rec-TRACE_dwi.nii.gz"))
    assert metadata["DiffusionBValue"] == 1000  # its own sidecar, not the series'
    assert metadata["SeriesLevel"] is True


def test_sidecar_values_are_kept_as_written(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="trace",
                        metadata={"EchoTime": None, "reconstruction": "TRACE", "Lst": [1, 2]})
    layout = load_layout(root)
    metadata = merged_metadata(layout, _image(layout, "sub-01_rec-TRACE_dwi.nii.gz"))
    assert metadata == {"EchoTime": None, "reconstruction": "TRACE", "Lst": [1, 2],
                        "DiffusionBValue": 1000}


def test_sidecars_of_other_images_do_not_apply(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], extra_files={
        "sub-02/dwi/sub-02_dwi.json": {"EchoTime": 9.0},
        "sub-01/dwi/sub-01_acq-x_dwi.json": {"EchoTime": 8.0},
    })
    layout = load_layout(root)
    assert merged_metadata(layout, _image(layout, "sub-01_dwi.nii.gz"))["EchoTime"] == 0.08


def test_gradient_files_are_inherited(tmp_path):
    root = make_dataset(tmp_path / "bids", extra_files={"dwi.bvec": "0 1 0 0\n0 0 1 0\n0 0 0 1\n"})
    (root / "sub-01" / "dwi" / "sub-01_dwi.bvec").unlink()
    layout = load_layout(root)
    bval, bvec = gradient_files(layout, _image(layout, "sub-01_dwi.nii.gz"))
    assert bval == root / "sub-01" / "dwi" / "sub-01_dwi.bval"
    assert bvec == root / "dwi.bvec"


def test_b_values(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="trace", derived_bvals=True, bvals=(0, 1400),
                        extra_files={"sub-01/dwi/sub-01_rec-TRACE_dwi.bval": "b1000\n"})
    layout = load_layout(root)
    with pytest.raises(BadInputError, match=r"sub-01_rec-TRACE_dwi\.bval: b-values must be numbers"):
        b_value_from_bval(layout, _image(layout, "sub-01_rec-TRACE_dwi.nii.gz"))
    assert b_value_from_sidecar({"BValue": 800, "bValue": 1000}) == 800.0
    assert b_value_from_sidecar({"DiffusionBValue": "1000"}) is None
