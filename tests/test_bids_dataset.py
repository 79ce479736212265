"""The derivatives dataset: dataset_description, .bidsignore, OUTPUT_DIR checks."""

from __future__ import annotations

import json
import os

import pytest

from bids_stroke import __version__
from bids_stroke.bids import dataset as d
from bids_stroke.citations import CITATIONS
from bids_stroke.errors import ExitCode, OutputError, UsageError


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
    assert CITATIONS["moulton2023"] in desc["HowToAcknowledge"]  # the reference of the citation table
    ignore = (out / ".bidsignore").read_text().splitlines()
    assert ignore[0] == "custom/"  # existing lines kept
    for pattern in ("*_measures.json", "*_predictions.tsv", "*_attention.nii.gz", "*_xfm.h5", "group/"):
        assert pattern in ignore
    # rerun: nothing duplicated
    d.init_derivatives(out, [bids])
    assert (out / ".bidsignore").read_text().splitlines() == ignore


def test_dataset_links_resolve_the_sources_uris_and_survive_the_group_level(tmp_path):
    bids, lesions, out = tmp_path / "bids data", tmp_path / "lesions", tmp_path / "out"
    d.init_derivatives(out, [bids, lesions], d.dataset_links(bids, lesions))
    links = json.loads((out / "dataset_description.json").read_text())["DatasetLinks"]
    assert links == {"raw": bids.absolute().as_uri(), "lesions": lesions.absolute().as_uri()}
    sources = json.loads((out / "dataset_description.json").read_text())["SourceDatasets"]
    assert [entry["URL"] for entry in sources] == [bids.resolve().as_uri(), lesions.resolve().as_uri()]
    # the group level links and lists BIDS_DIR only: the participant level's lesion dataset stays
    d.init_derivatives(out, [bids], d.dataset_links(bids))
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetLinks"] == links and description["SourceDatasets"] == sources


def test_the_datasets_of_the_masks_are_linked(tmp_path):
    """Without --lesion-dir, the derivatives datasets under BIDS_DIR that hold the masks are
    linked as ``lesions``, ``lesions2``: their files are not BIDS_DIR's."""
    bids = tmp_path / "bids"
    masks = []
    for name in ("manual", "lesions"):
        root = bids / "derivatives" / name
        (root / "sub-01" / "dwi").mkdir(parents=True)
        (root / "dataset_description.json").write_text("{}")
        masks.append(root / "sub-01" / "dwi" / "sub-01_label-lesion_mask.nii.gz")
    (bids / "dataset_description.json").write_text("{}")
    in_raw = bids / "sub-01" / "dwi" / "sub-01_desc-brain_mask.nii.gz"
    roots = d.mask_datasets(bids, [masks[1], None, masks[0], masks[1], in_raw])
    assert roots == [bids / "derivatives" / "lesions", bids / "derivatives" / "manual"]
    assert d.dataset_links(bids, *roots) == {"raw": str(bids), "lesions": str(roots[0]), "lesions2": str(roots[1])}
    assert d.dataset_links(bids, None) == {"raw": str(bids)}
    assert d.dataset_root(tmp_path / "elsewhere" / "m.nii.gz") is None


def test_container_detection(monkeypatch):
    for var in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "BIDS_STROKE_CONTAINER"):
        monkeypatch.delenv(var, raising=False)
    assert d.detect_container() is None
    monkeypatch.setenv("BIDS_STROKE_CONTAINER", "docker")
    assert d.detect_container() == {"Type": "docker", "Tag": f"bidsstroke/bids-stroke:{__version__}"}
    monkeypatch.setenv("SINGULARITY_CONTAINER", "/img/old.sif")
    assert d.detect_container()["Type"] == "singularity"
    # a SIF built from the Docker image inherits BIDS_STROKE_CONTAINER: Apptainer wins
    monkeypatch.setenv("APPTAINER_CONTAINER", "/img/bids-stroke.sif")
    assert d.detect_container() == {"Type": "apptainer", "Tag": f"bidsstroke/bids-stroke:{__version__}",
                                    "URI": "file:///img/bids-stroke.sif"}



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


def test_quarantine_moves_every_output_the_group_level_reads(tmp_path):
    """A failed participant keeps no output (stale or partial) where readers look."""
    from bids_stroke.bids.naming import find_derivatives

    out = tmp_path / "out"
    files = {
        "sub-01/dwi/sub-01_space-model_desc-preproc_dwi.nii.gz": "a",
        "sub-01/dwi/sub-01_desc-lesion_measures.json": "{}",
        "sub-01/figures/sub-01_desc-brainmask_dwi.png": "png",
        "sub-01.html": "<html>",
        "sub-02/dwi/sub-02_desc-lesion_measures.json": "{}",
        "sub-03/ses-1/dwi/sub-03_ses-1_desc-lesion_measures.json": "{}",
        "sub-03/ses-2/dwi/sub-03_ses-2_desc-lesion_measures.json": "{}",
        "sub-03.html": "<html>",
    }
    for relative, text in files.items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text)
    moved = d.quarantine_outputs(out, "01", None, out / "logs" / "failed-x")
    assert sorted(p.relative_to(out / "logs" / "failed-x").as_posix() for p in moved) == sorted(
        k for k in files if k.startswith("sub-01"))
    assert find_derivatives(out, subject="01") == [] and not (out / "sub-01").exists()
    assert not (out / "sub-01.html").exists()
    assert (out / "logs/failed-x/sub-01/dwi/sub-01_desc-lesion_measures.json").read_text() == "{}"
    assert [p.name for p in find_derivatives(out)] == ["sub-02_desc-lesion_measures.json",
                                                       "sub-03_ses-1_desc-lesion_measures.json",
                                                       "sub-03_ses-2_desc-lesion_measures.json"]
    # one failed session: its files go, the other session's and the report stay
    d.quarantine_outputs(out, "03", "2", out / "logs" / "failed-y")
    assert [p.name for p in find_derivatives(out, subject="03")] == ["sub-03_ses-1_desc-lesion_measures.json"]
    assert (out / "sub-03.html").exists() and not (out / "sub-03/ses-2").exists()
    assert d.quarantine_outputs(out, "04", None, out / "logs" / "failed-z") == []
