"""The derivatives writer: names, dataset_description, .bidsignore, atomic writes, OUTPUT_DIR checks."""

from __future__ import annotations

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pytest

from bids_stroke import __version__
from bids_stroke.bids import derivatives as d
from bids_stroke.errors import ExitCode, OutputError, UsageError

SOURCE = {"subject": "01", "session": "pre", "rec": "TRACE", "suffix": "dwi", "datatype": "dwi"}


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        (dict(space="model", desc="preproc", suffix="dwi", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-model_desc-preproc_dwi.nii.gz"),
        (dict(desc="brain", suffix="mask", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-brain_mask.nii.gz"),
        ({"from": "dwi", "to": "MNI152NLin2009cAsym", "mode": "image", "suffix": "xfm", "extension": ".h5"},
         "sub-01/ses-pre/dwi/sub-01_ses-pre_from-dwi_to-MNI152NLin2009cAsym_mode-image_xfm.h5"),
        ({"from": "MNI152NLin2009cAsym", "to": "dwi", "mode": "image", "suffix": "xfm", "extension": ".h5"},
         "sub-01/ses-pre/dwi/sub-01_ses-pre_from-MNI152NLin2009cAsym_to-dwi_mode-image_xfm.h5"),
        (dict(space="MNI152NLin2009cAsym", res="2", label="lesion", suffix="mask", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_label-lesion_mask.nii.gz"),
        (dict(space="MNI152NLin2009cAsym", res="2", desc="b0", suffix="dwiref", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_desc-b0_dwiref.nii.gz"),
        (dict(desc="lesion", suffix="measures", extension=".json"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-lesion_measures.json"),
        (dict(desc="ensemble", suffix="predictions", extension=".tsv"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-ensemble_predictions.tsv"),
        (dict(desc="a2", suffix="attention", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-a2_attention.nii.gz"),
        (dict(space="MNI152NLin2009cAsym", res="2", desc="a3", suffix="attention", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_desc-a3_attention.nii.gz"),
        (dict(datatype="figures", desc="registration", suffix="dwi", extension=".svg"),
         "sub-01/figures/sub-01_ses-pre_desc-registration_dwi.svg"),
        (dict(datatype="group", desc="loco", suffix="predictions", extension=".tsv"),
         "group/desc-loco_predictions.tsv"),
        (dict(datatype="group", desc="comparisons", suffix="stats", extension=".tsv"),
         "group/desc-comparisons_stats.tsv"),
        (dict(datatype="group", desc="cohort", suffix="table", extension=".tsv"),
         "group/desc-cohort_table.tsv"),
        (dict(datatype="group", space="MNI152NLin2009cAsym", res="2", hemi="L", desc="a1",
              suffix="attention", extension=".nii.gz"),
         "group/space-MNI152NLin2009cAsym_res-2_hemi-L_desc-a1_attention.nii.gz"),
    ],
)
def test_derivative_path_matches_interface(tmp_path, entities, expected):
    assert d.derivative_path(tmp_path, SOURCE, **entities) == tmp_path / expected


def test_derivative_path_without_session_keeps_acq_and_run_drops_rec(tmp_path):
    source = {"subject": "7", "acquisition": "ax", "run": 2, "rec": "TRACE"}
    path = d.derivative_path(tmp_path, source, space="model", desc="preproc", suffix="dwi", extension=".nii.gz")
    assert path == tmp_path / "sub-7/dwi/sub-7_acq-ax_run-2_space-model_desc-preproc_dwi.nii.gz"


@pytest.mark.parametrize(
    "entities",
    [
        dict(desc="x", suffix="bogus", extension=".nii.gz"),  # unknown suffix
        dict(desc="x", suffix="dwi", extension=".mat"),  # unknown extension
        dict(desc="x", suffix="dwi", extension=".nii.gz", hemi="left"),  # hemi must be L/R
        dict(desc="x", suffix="dwi"),  # no extension
        dict(desc="a_b", suffix="dwi", extension=".nii.gz"),  # not a BIDS label
    ],
)
def test_derivative_path_refuses_what_no_pattern_expresses(tmp_path, entities):
    with pytest.raises(ValueError, match="No derivatives path pattern|must be"):
        d.derivative_path(tmp_path, SOURCE, **entities)


def test_report_and_sidecar_paths(tmp_path):
    assert d.report_path(tmp_path, "01") == tmp_path / "sub-01.html"
    assert d.report_path(tmp_path) == tmp_path / "group.html"
    assert d.sidecar_path(tmp_path / "a_dwi.nii.gz") == tmp_path / "a_dwi.json"
    with pytest.raises(ValueError, match="'path' must name"):
        d.sidecar_path(tmp_path / "a.txt")


def test_dataset_description_and_bidsignore(tmp_path, monkeypatch):
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.9.0", "DatasetDOI": "10.1/abc", "Version": "2"})
    )
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.setenv("BIDS_STROKE_CONTAINER", "docker")
    out = tmp_path / "out"
    (out).mkdir()
    (out / ".bidsignore").write_text("custom/\n")
    d.init_derivatives(out, [bids])
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    generated = desc["GeneratedBy"][0]
    assert generated["Name"] == "bids-stroke" and generated["Version"] == __version__
    assert generated["CodeURL"].startswith("https://")
    assert generated["Container"]["Type"] == "docker" and __version__ in generated["Container"]["Tag"]
    assert desc["SourceDatasets"][0] == {"DOI": "doi:10.1/abc", "URL": bids.resolve().as_uri(), "Version": "2"}
    ignore = (out / ".bidsignore").read_text().splitlines()
    assert ignore[0] == "custom/"  # existing lines kept
    for pattern in ("*_measures.json", "*_predictions.tsv", "*_attention.nii.gz", "*_xfm.h5", "group/"):
        assert pattern in ignore
    # rerun: nothing duplicated
    d.init_derivatives(out, [bids])
    assert (out / ".bidsignore").read_text().splitlines() == ignore


def test_container_detection(monkeypatch):
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "BIDS_STROKE_CONTAINER"):
        monkeypatch.delenv(var, raising=False)
    assert d.detect_container() is None
    monkeypatch.setenv("APPTAINER_CONTAINER", "/img/bids-stroke.sif")
    assert d.detect_container() == {"Type": "singularity", "URI": "/img/bids-stroke.sif"}


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub-01" / "x.json"
    d.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with d.atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"a": 1}  # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # no temp file left


def test_write_nifti_is_reproducible_and_has_sidecar(tmp_path):
    img = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.diag([2.0, 2.0, 5.0, 1.0]))
    first = d.write_nifti(tmp_path / "a_dwi.nii.gz", img, {"SkullStripped": True})
    second = d.write_nifti(tmp_path / "b_dwi.nii.gz", img)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes())[:4] != b""  # valid gzip
    back = nib.load(first)
    np.testing.assert_array_equal(back.get_fdata(), img.get_fdata())
    np.testing.assert_allclose(back.affine, img.affine)
    assert json.loads((tmp_path / "a_dwi.json").read_text()) == {"SkullStripped": True}
    assert not (tmp_path / "b_dwi.json").exists()
    with pytest.raises(ValueError, match=r"must end in \.nii\.gz"):
        d.write_nifti(tmp_path / "c.nii", img)


def test_write_tsv_uses_bids_missing_values(tmp_path):
    pd = pytest.importorskip("pandas")
    d.write_tsv(tmp_path / "t.tsv", pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None]}))
    assert (tmp_path / "t.tsv").read_text() == "a\tb\n1.0\tx\nn/a\tn/a\n"


@pytest.fixture()
def bids_dir(tmp_path):
    root = tmp_path / "ds"
    (root / "sub-01" / "dwi").mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    return root


@pytest.mark.parametrize(
    "relative",
    [".", "..", "sub-01", "sub-01/dwi/out", "../ds/sub-01/x"],
)
def test_output_dir_overlapping_bids_dir_is_a_usage_error(bids_dir, relative):
    with pytest.raises(UsageError) as info:
        d.check_output_dir(bids_dir, bids_dir / relative)
    assert info.value.exit_code == ExitCode.USAGE
    assert "derivatives" in str(info.value)  # the hint names a good place


@pytest.mark.parametrize("relative", ["derivatives/bids-stroke", "derivatives/a/b", "../elsewhere"])
def test_output_dir_allowed_places(bids_dir, relative):
    assert d.check_output_dir(bids_dir, bids_dir / relative) == (bids_dir / relative).resolve()
    assert not (bids_dir / relative).exists()  # checking writes nothing


def test_output_dir_that_cannot_be_created(bids_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="a_file") as info:
        d.check_output_dir(bids_dir, blocker / "out")
    assert info.value.exit_code == ExitCode.CANNOT_CREATE_OUTPUT
    with pytest.raises(OutputError, match="not a folder"):
        d.check_output_dir(bids_dir, blocker)


def test_output_dir_in_read_only_folder(bids_dir, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    asked = []

    def fake_access(path, mode):  # a read-only folder, whoever runs the tests (root ignores chmod)
        asked.append(os.fspath(path))
        return os.fspath(path) != os.fspath(locked.resolve())

    monkeypatch.setattr(d.os, "access", fake_access)
    with pytest.raises(OutputError, match="not writable"):
        d.check_output_dir(bids_dir, locked / "out" / "deeper")
    assert asked == [os.fspath(locked.resolve())]  # the nearest existing folder is the one checked


def test_output_dir_of_another_pipeline_is_refused(bids_dir, tmp_path):
    out = tmp_path / "fmriprep"
    out.mkdir()
    (out / "dataset_description.json").write_text(json.dumps({"GeneratedBy": [{"Name": "fMRIPrep"}]}))
    with pytest.raises(OutputError, match="fMRIPrep"):
        d.check_output_dir(bids_dir, out)
    d.init_derivatives(tmp_path / "ours", [bids_dir])
    assert d.check_output_dir(bids_dir, tmp_path / "ours") == (tmp_path / "ours").resolve()
