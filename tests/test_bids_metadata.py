"""Sidecar inheritance: which .json, .bval and .bvec apply to an image, and the b-values."""

from __future__ import annotations

import json
import re

import pytest
from bids_factory import make_dataset

from bids_stroke.bids.layout import collect_data, load_layout
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


def test_sidecars_are_inherited_along_the_subject_and_session_chain(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], sessions=["a", "b"], extra_files={
        "dwi.json": {"Top": 1, "Level": "top"},
        "sub-01/sub-01_dwi.json": {"Subject": 1, "Level": "subject"},
        "sub-01/ses-a/sub-01_ses-a_dwi.json": {"Session": "a", "Level": "session"},
        "sub-02/sub-02_dwi.json": {"Other": True},
        "sub-01/ses-b/sub-01_ses-b_dwi.json": {"Other": True},
    })
    layout = load_layout(root)
    metadata = merged_metadata(layout, _image(layout, "sub-01_ses-a_dwi.nii.gz"))
    assert {k: metadata.get(k) for k in ("Top", "Subject", "Session", "Other")} == \
        {"Top": 1, "Subject": 1, "Session": "a", "Other": None}
    assert metadata["Level"] == "session"  # the most specific wins
    assert merged_metadata(layout, _image(layout, "sub-02_ses-a_dwi.nii.gz"))["Other"] is True


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
    trace = _image(layout, "sub-01_rec-TRACE_dwi.nii.gz")
    assert b_value_from_sidecar(layout, trace) == 1400.0  # make_dataset's DiffusionBValue
    sidecar = root / "sub-01" / "dwi" / "sub-01_rec-TRACE_dwi.json"
    sidecar.write_text('{"BValue": 800, "bValue": 1000}')
    assert b_value_from_sidecar(layout, trace) == 800.0
    sidecar.write_text('{"DiffusionBValue": null}')
    assert b_value_from_sidecar(layout, trace) is None


TRACE = "sub-01/dwi/sub-01_rec-TRACE_dwi"


@pytest.mark.parametrize("value", [-1000, True, False, 0, "1000", [1000], 1e400])
@pytest.mark.parametrize("where", [f"{TRACE}.json", "dwi.json"])
def test_trace_b_value_of_a_sidecar_must_be_positive(tmp_path, value, where):
    """A boolean is no number (True == 1 in Python), a negative b-value no b-value."""
    root = make_dataset(tmp_path / "bids", kind="trace", extra_files={
        f"{TRACE}.json": {"EchoTime": 0.08}, where: {"DiffusionBValue": value}})
    layout = load_layout(root)
    shown = json.dumps(value)  # true, false, Infinity ...
    with pytest.raises(BadInputError, match=rf"^{root / where}: 'DiffusionBValue' must be the "
                                            rf"b-value of the trace image, a positive number "
                                            rf"\(s/mm²\)\. Got {re.escape(shown)} instead\.$") as exc:
        b_value_from_sidecar(layout, _image(layout, "sub-01_rec-TRACE_dwi.nii.gz"))
    assert exc.value.exit_code == 65
    with pytest.raises(BadInputError, match=rf"^{root / where}: 'DiffusionBValue'"):
        collect_data(layout, "01")


def test_the_sidecar_giving_the_b_value_is_named(tmp_path):
    """The most specific sidecar giving the key is the one at fault."""
    root = make_dataset(tmp_path / "bids", kind="trace", root_metadata={"DiffusionBValue": 1000},
                        extra_files={f"{TRACE}.json": {"DiffusionBValue": -5}})
    with pytest.raises(BadInputError, match=rf"^{root / TRACE}\.json: 'DiffusionBValue'.* Got -5"):
        collect_data(load_layout(root), "01")


@pytest.mark.parametrize("content, reason", [
    ("0\n", r"'b-value' must be the b-value of the trace image, a positive number .* Got 0\.0"),
    ("-1000\n", r"b-values must be 0 or more \(s/mm²\)\. Got -1000 instead"),
    ("nan\n", r"b-values must be finite numbers\. Got nan instead"),
])
def test_trace_b_value_of_a_bval_must_be_positive(tmp_path, content, reason):
    root = make_dataset(tmp_path / "bids", kind="trace", derived_bvals=True,
                        extra_files={f"{TRACE}.bval": content})
    with pytest.raises(BadInputError, match=rf"^{root / TRACE}\.bval: {reason}"):
        collect_data(load_layout(root), "01")


@pytest.mark.parametrize("content, got", [
    ("0 1 0\n0 0 1\n0 0 0\n", "3 row(s) of 3, 3, 3 value(s)"),  # a column short
    ("0 1 0 0\n0 0 1 0\n", "2 row(s) of 4, 4 value(s)"),  # no z row
    ("0 0 0\n1 0 0\n0 1 0\n0 0 1\n", "4 row(s) of 3, 3, 3, 3 value(s)"),  # volumes as rows
    ("", "0 row(s) of no value(s)"),
])
def test_bvec_must_hold_a_vector_per_volume(tmp_path, content, got):
    root = make_dataset(tmp_path / "bids", extra_files={"sub-01/dwi/sub-01_dwi.bvec": content})
    bvec = root / "sub-01" / "dwi" / "sub-01_dwi.bvec"
    with pytest.raises(BadInputError, match=rf"^{bvec}: must hold 3 rows \(x, y, z\) of one value "
                                            rf"per volume \(4\)\. Got {re.escape(got)} instead") as exc:
        collect_data(load_layout(root), "01")
    assert exc.value.exit_code == 65


@pytest.mark.parametrize("content", ["0 1 0 x\n0 0 1 0\n0 0 0 1\n", "0 1 0 inf\n0 0 1 0\n0 0 0 1\n"])
def test_bvec_values_must_be_finite_numbers(tmp_path, content):
    root = make_dataset(tmp_path / "bids", extra_files={"sub-01/dwi/sub-01_dwi.bvec": content})
    with pytest.raises(BadInputError, match=r"sub-01_dwi\.bvec: b-vectors must be (finite )?numbers"):
        collect_data(load_layout(root), "01")
