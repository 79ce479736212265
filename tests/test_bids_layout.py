"""Layout queries: load_layout, select_subjects, collect_data."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from bids_factory import make_dataset, write_tree

from bids_stroke.bids.filters import load_bids_filters
from bids_stroke.bids.layout import DwiInputs, collect_data, load_layout, select_subjects
from bids_stroke.bids.nifti import check_nifti, grids_match
from bids_stroke.errors import (
    BadInputError,
    ExitCode,
    MissingInputError,
    NoDataSelected,
)

from conftest import ISLES_STEM


def _snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime)
            for p in root.rglob("*")}


def _make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


# ---------------------------------------------------------------- load_layout
@pytest.fixture
def sessions_ds(tmp_path):
    """Two subjects with two sessions: sub-01 4D + ADC, sub-02 trace + ADC."""
    return make_dataset(
        tmp_path / "bids", subjects=["01", "02"], sessions=["1", "2"],
        kind={"01": "4d", "02": "trace"}, with_adc=True, with_brain_mask=True,
        participants_columns={"site": ["A", "B"], "mrs": [1, "n/a"]},
        extra_files={"truth/sub-01_dwi.nii.gz": None, "code/sub-01_dwi.nii.gz": None,
                     "sourcedata/sub-03/dwi/sub-03_dwi.nii.gz": None},
    )


def test_load_layout_writes_nothing_on_a_read_only_dataset(sessions_ds):
    before = _snapshot(sessions_ds)
    _make_read_only(sessions_ds)
    try:
        layout = load_layout(sessions_ds)
        pairs = select_subjects(layout)
        inputs = collect_data(layout, "01", "1")
    finally:
        _make_writable(sessions_ds)
    assert _snapshot(sessions_ds) == before
    assert pairs == [("01", "1"), ("01", "2"), ("02", "1"), ("02", "2")]
    assert inputs.lesion_mask is not None


def test_load_layout_ignores_non_subject_folders(sessions_ds):
    layout = load_layout(sessions_ds)
    files = layout.get(return_type="file")
    assert files, "nothing indexed"
    assert not [f for f in files if "/truth/" in f or "/code/" in f or "/sourcedata/" in f]
    assert "03" not in layout.get_subjects()


@pytest.mark.parametrize("case", ["missing_dir", "no_description"])
def test_load_layout_missing_bids_dir(tmp_path, case):
    target = tmp_path / "nothere"
    if case == "no_description":
        target.mkdir()
        (target / "sub-01").mkdir()
    with pytest.raises(MissingInputError, match=str(target)) as exc:
        load_layout(target)
    assert exc.value.exit_code == ExitCode.MISSING_INPUT == 66
    if case == "no_description":
        assert "dataset_description.json" in str(exc.value)


def test_load_layout_bad_dataset_description(tmp_path):
    root = make_dataset(tmp_path / "bids", extra_files={"dataset_description.json": "{oops"})
    with pytest.raises(BadInputError, match="dataset_description.json: not valid JSON"):
        load_layout(root)


def test_load_layout_derivatives_description_must_be_an_object(tmp_path):
    """A JSON array there used to raise AttributeError while looking for GeneratedBy."""
    root = make_dataset(tmp_path / "bids")
    description = root / "derivatives" / "lesions" / "dataset_description.json"
    description.write_text('[{"Name": "lesions"}]')
    with pytest.raises(BadInputError, match=rf"^{description}: must hold a JSON object"):
        load_layout(root)


@pytest.mark.parametrize("case", ["missing_dir", "no_description"])
def test_load_layout_bad_lesion_dir(tmp_path, case):
    root = make_dataset(tmp_path / "bids")
    lesions = tmp_path / "lesions"
    if case == "no_description":
        lesions.mkdir()
    with pytest.raises(MissingInputError, match=f"--lesion-dir {lesions}") as exc:
        load_layout(root, lesion_dir=lesions)
    assert exc.value.exit_code == 66


def test_lesion_dir_outside_bids_dir_replaces_derivatives(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01"], lesion_entity="label-lesion_mask")
    outside = tmp_path / "masks"
    make_dataset(tmp_path / "other", subjects=["01"], lesion_entity="desc-lesion_mask",
                 lesion_dir=outside)
    layout = load_layout(root, lesion_dir=outside)
    inputs = collect_data(layout, "01")
    assert inputs.lesion_mask == outside / "sub-01" / "dwi" / "sub-01_desc-lesion_mask.nii.gz"
    default = collect_data(load_layout(root), "01")
    assert default.lesion_mask.name == "sub-01_label-lesion_mask.nii.gz"


def test_derivatives_without_generated_by_are_still_read(tmp_path):
    root = make_dataset(tmp_path / "bids", derivative_generated_by=False)
    inputs = collect_data(load_layout(root), "01")
    assert inputs.lesion_mask is not None
    assert inputs.lesion_mask.parent.parent.parent.name == "lesions"


def test_own_outputs_in_derivatives_are_not_inputs(tmp_path):
    root = make_dataset(tmp_path / "bids", lesion_entity=None)
    write_tree(root / "derivatives" / "bids-stroke", {
        "dataset_description.json": {"Name": "bids-stroke", "BIDSVersion": "1.10.0",
                                     "DatasetType": "derivative",
                                     "GeneratedBy": [{"Name": "bids-stroke"}]},
        "sub-01/dwi/sub-01_label-lesion_mask.nii.gz": check_nifti(
            root / "sub-01" / "dwi" / "sub-01_dwi.nii.gz").slicer[..., 0],
    })
    layout = load_layout(root)
    assert "bids-stroke" not in layout.derivatives
    assert collect_data(layout, "01").lesion_mask is None


#: Broken JSON contents: not UTF-8, a syntax error, an array instead of an object.
BROKEN_JSON = {
    "latin1": (b'{"Manufacturer": "Siemens \xe9"}', r"not valid JSON \('utf-8' codec can't decode"),
    "syntax": (b'{"EchoTime": 0.08,', r"not valid JSON \(Expecting property name"),
    "array": (b'[{"EchoTime": 0.08}]', r"must hold a JSON object .* Got a JSON array instead"),
}


@pytest.mark.parametrize("broken", BROKEN_JSON)
@pytest.mark.parametrize("where", [
    "sub-01/dwi/sub-01_dwi.json",  # the raw sidecar
    "sub-01/sub-01_dwi.json",  # inherited by sub-01's DWI
    "sub-01/anat/sub-01_T1w.json",  # in the participant's folder, of another image
    "derivatives/lesions/sub-01/dwi/sub-01_label-lesion_mask.json",  # a lesion derivative
])
def test_broken_sidecar_fails_only_its_participant(tmp_path, broken, where):
    """pybids does not parse the sidecars: a broken one fails only its participant (65)."""
    content, reason = BROKEN_JSON[broken]
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], extra_files={where: content})
    layout = load_layout(root)
    assert select_subjects(layout) == [("01", None), ("02", None)]
    with pytest.raises(BadInputError, match=rf"^{root / where}: {reason}") as exc:
        collect_data(layout, "01")
    assert exc.value.exit_code == ExitCode.BAD_INPUT == 65
    assert "\n" not in str(exc.value)
    assert collect_data(layout, "02").metadata == {"RepetitionTime": 5.0, "EchoTime": 0.08}


def test_broken_sidecar_fails_only_its_session(tmp_path):
    root = make_dataset(tmp_path / "bids", sessions=["1", "2"],
                        extra_files={"sub-01/ses-2/dwi/sub-01_ses-2_dwi.json": b"{"})
    layout = load_layout(root)
    assert collect_data(layout, "01", "1").session == "1"
    with pytest.raises(BadInputError, match=r"sub-01_ses-2_dwi\.json: not valid JSON"):
        collect_data(layout, "01", "2")
    with pytest.raises(BadInputError, match=r"sub-01_ses-2_dwi\.json: not valid JSON"):
        collect_data(layout, "01")


@pytest.mark.parametrize("broken", BROKEN_JSON)
@pytest.mark.parametrize("where", ["dwi.json", "participants.json",
                                   "derivatives/lesions/mask.json"])
def test_broken_top_level_sidecar_fails_the_run(tmp_path, broken, where):
    """A top-level JSON applies to every participant: the run stops at once, naming it."""
    content, reason = BROKEN_JSON[broken]
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], extra_files={where: content})
    with pytest.raises(BadInputError, match=rf"^{root / where}: {reason}") as exc:
        load_layout(root)
    assert exc.value.exit_code == 65


def test_broken_sidecar_of_lesion_dir_outside_bids_dir(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], lesion_dir=tmp_path / "lesions")
    bad = tmp_path / "lesions" / "sub-02" / "dwi" / "sub-02_label-lesion_mask.json"
    bad.write_bytes(b"[1, 2]")
    layout = load_layout(root, lesion_dir=tmp_path / "lesions")
    assert collect_data(layout, "01").lesion_mask is not None
    with pytest.raises(BadInputError, match=rf"^{bad}: must hold a JSON object"):
        collect_data(layout, "02")
    (tmp_path / "lesions" / "dwi.json").write_bytes(b"\xff")
    with pytest.raises(BadInputError, match=rf"^{tmp_path / 'lesions' / 'dwi.json'}: not valid JSON"):
        load_layout(root, lesion_dir=tmp_path / "lesions")


# ------------------------------------------------------------ symbolic link loops
@pytest.mark.parametrize("links", [
    {"sub-01/dwi/up": ".."},  # one loop: 41 copies of the DWI, "several DWI images match"
    {"sub-01/dwi/up": "..", "sub-02/dwi/top": "../.."},  # two loops: pybids never ended
    {"sub-02/here": "."},
    {"sub-01/dwi/ext": "{outside}"},  # through a folder outside the dataset linking back
])
def test_symlink_loop_is_refused_before_indexing(tmp_path, links):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"])
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(root / "sub-01", outside / "back")
    for link, target in links.items():
        os.symlink(target.format(outside=outside), root / link)
    first = min(links)
    with pytest.raises(BadInputError, match=rf"^{root / first}(/back)?: a symbolic link to "
                                            r".*, a folder that contains it") as exc:
        load_layout(root)
    assert exc.value.exit_code == 65


def test_symlink_loop_in_lesion_derivatives_is_refused(tmp_path):
    root = make_dataset(tmp_path / "bids")
    link = root / "derivatives" / "lesions" / "sub-01" / "loop"
    os.symlink("..", link)
    with pytest.raises(BadInputError, match=rf"^{link}: a symbolic link to {root}/derivatives/lesions,"):
        load_layout(root)


def test_symlinks_without_loops_are_followed(tmp_path):
    """Linked subject folders (e.g. DataLad) are fine; loops where pybids never looks too."""
    root = make_dataset(tmp_path / "bids", subjects=["01"])
    make_dataset(tmp_path / "store", subjects=["02"], lesion_entity=None)
    os.symlink(tmp_path / "store" / "sub-02", root / "sub-02")
    os.symlink("sub-02-self", root / "sub-01" / "sub-02-self")  # a link to itself: no folder
    (root / "code").mkdir()
    os.symlink("..", root / "code" / "loop")  # code/ is not indexed
    os.symlink("..", root / "sub-01" / ".hidden")  # hidden entries are not indexed
    layout = load_layout(root)
    assert select_subjects(layout) == [("01", None), ("02", None)]
    assert collect_data(layout, "02").dwi == root / "sub-02" / "dwi" / "sub-02_dwi.nii.gz"


# -------------------------------------------------------------- select_subjects
def test_select_subjects_without_sessions(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["03", "01", "02"],
                        kind=["4d", "trace", "none"])
    layout = load_layout(root)
    assert select_subjects(layout) == [("01", None), ("03", None)]
    assert select_subjects(layout, ["sub-03"]) == [("03", None)]


def test_select_subjects_with_sessions(sessions_ds):
    layout = load_layout(sessions_ds)
    assert select_subjects(layout, ["02"], ["ses-2"]) == [("02", "2")]
    assert select_subjects(layout, None, ["1"]) == [("01", "1"), ("02", "1")]


def test_select_subjects_unknown_participant_names_missing_and_existing(sessions_ds):
    layout = load_layout(sessions_ds)
    with pytest.raises(NoDataSelected, match=r"label\(s\) 05, 07\..*with DWI: 01, 02") as exc:
        select_subjects(layout, ["01", "05", "07"])
    assert exc.value.exit_code == ExitCode.NO_DATA_SELECTED == 18


def test_select_subjects_truncates_long_lists(tmp_path):
    subjects = [f"{i:02d}" for i in range(14)]
    root = make_dataset(tmp_path / "bids", subjects=subjects, lesion_entity=None)
    with pytest.raises(NoDataSelected, match=r"00, 01, .* 09 \.\.\. \(4 more\)"):
        select_subjects(load_layout(root), ["99"])


def test_select_subjects_unknown_session(sessions_ds):
    with pytest.raises(NoDataSelected, match=r"session label\(s\) 7 .*Sessions with DWI: 1, 2"):
        select_subjects(load_layout(sessions_ds), session_labels=["7"])


def test_select_subjects_no_dwi_at_all(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01"], kind="none")
    with pytest.raises(MissingInputError, match=rf"{root}: no DWI found \(looked for") as exc:
        select_subjects(load_layout(root))
    assert exc.value.exit_code == 66


def test_select_subjects_filters(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], kind=["4d", "trace"])
    layout = load_layout(root)
    assert select_subjects(layout, bids_filters={"trace": {"reconstruction": "TRACE"},
                                                 "dwi": {"acquisition": "none"}}) == [("02", None)]
    assert select_subjects(layout, bids_filters={"dwi": {"acquisition": "b3000"}}) == [("02", None)]
    with pytest.raises(NoDataSelected, match="filters select no DWI") as exc:
        select_subjects(layout, bids_filters={"dwi": {"acquisition": "b3000"},
                                              "trace": {"run": 2}})
    assert exc.value.exit_code == 18


# ------------------------------------------------------- filters in collect_data
def test_filters_pick_one_of_several_runs(tmp_path):
    root = make_dataset(tmp_path / "bids", lesion_entity=None)
    dwi = root / "sub-01" / "dwi"
    for ext in (".nii.gz", ".bval", ".bvec", ".json"):
        shutil.copy(dwi / f"sub-01_dwi{ext}", dwi / f"sub-01_acq-b2000_dwi{ext}")
        shutil.copy(dwi / f"sub-01_dwi{ext}", dwi / f"sub-01_acq-b1000_dwi{ext}")
        (dwi / f"sub-01_dwi{ext}").unlink()
    layout = load_layout(root)
    with pytest.raises(BadInputError, match=r"several 4D DWI images match \(sub-01_acq-b1000_dwi"
                       r".*sub-01_acq-b2000_dwi.*--bids-filter-file") as exc:
        collect_data(layout, "01")
    assert exc.value.exit_code == 65
    filters_file = tmp_path / "f.json"
    filters_file.write_text('{"dwi": {"acq": "b2000"}}')
    inputs = collect_data(layout, "01", bids_filters=load_bids_filters(filters_file))
    assert inputs.dwi.name == "sub-01_acq-b2000_dwi.nii.gz"
    assert inputs.bval.name == "sub-01_acq-b2000_dwi.bval"
    assert inputs.bvec.name == "sub-01_acq-b2000_dwi.bvec"


# ---------------------------------------------------------------- collect_data
def test_collect_data_4d_with_sessions(sessions_ds):
    inputs = collect_data(load_layout(sessions_ds), "sub-01", "ses-2")
    folder = sessions_ds / "sub-01" / "ses-2" / "dwi"
    assert isinstance(inputs, DwiInputs)
    assert (inputs.subject, inputs.session, inputs.kind) == ("01", "2", "4d")
    assert inputs.dwi == folder / "sub-01_ses-2_dwi.nii.gz"
    assert inputs.bval == folder / "sub-01_ses-2_dwi.bval"
    assert inputs.bvec == folder / "sub-01_ses-2_dwi.bvec"
    assert inputs.adc == folder / "sub-01_ses-2_rec-ADC_dwi.nii.gz"
    assert inputs.trace is None
    assert inputs.metadata == {"RepetitionTime": 5.0, "EchoTime": 0.08}
    deriv = sessions_ds / "derivatives" / "lesions" / "sub-01" / "ses-2" / "dwi"
    assert inputs.lesion_mask == deriv / "sub-01_ses-2_label-lesion_mask.nii.gz"
    assert inputs.brain_mask == deriv / "sub-01_ses-2_desc-brain_mask.nii.gz"
    with pytest.raises(AttributeError):
        inputs.dwi = None  # frozen


def test_collect_data_trace_without_sessions(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01"], kind="trace", with_adc=True)
    inputs = collect_data(load_layout(root), "01")
    assert inputs.kind == "trace"
    assert inputs.session is None
    assert inputs.dwi is inputs.bval is inputs.bvec is None
    assert inputs.trace.name == "sub-01_rec-TRACE_dwi.nii.gz"
    assert inputs.adc.name == "sub-01_rec-ADC_dwi.nii.gz"
    assert inputs.metadata["DiffusionBValue"] == 1000
    assert inputs.trace_b_value == 1000.0
    assert inputs.brain_mask is None


def test_collect_data_trace_b_value_from_its_own_bval(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="trace", metadata={}, derived_bvals=True,
                        bvals=(0, 1400))
    inputs = collect_data(load_layout(root), "01")
    assert inputs.metadata == {}
    assert inputs.trace_b_value == 1400.0


def test_collect_data_session_none_finds_the_only_session(sessions_ds):
    layout = load_layout(sessions_ds)
    with pytest.raises(BadInputError, match="several 4D DWI images match.*--session-label"):
        collect_data(layout, "01")
    root = make_dataset(sessions_ds.parent / "one", subjects=["01"], sessions=["pre"])
    assert collect_data(load_layout(root), "01").session == "pre"


@pytest.mark.parametrize("spelling", ["label-lesion_mask", "desc-lesion_mask", "label-lesion_roi"])
@pytest.mark.parametrize("space", [None, "orig"])
def test_collect_data_lesion_spellings(tmp_path, spelling, space):
    root = make_dataset(tmp_path / "bids", lesion_entity=spelling, lesion_space=space)
    inputs = collect_data(load_layout(root), "01")
    prefix = f"sub-01_space-{space}" if space else "sub-01"
    assert inputs.lesion_mask.name == f"{prefix}_{spelling}.nii.gz"


def test_collect_data_prefers_native_lesion(tmp_path):
    root = make_dataset(tmp_path / "bids", lesion_space="MNI152NLin2009cAsym")
    deriv = root / "derivatives" / "lesions" / "sub-01" / "dwi"
    layout = load_layout(root)
    assert collect_data(layout, "01").lesion_mask.name == \
        "sub-01_space-MNI152NLin2009cAsym_label-lesion_mask.nii.gz"
    shutil.copy(deriv / "sub-01_space-MNI152NLin2009cAsym_label-lesion_mask.nii.gz",
                deriv / "sub-01_space-orig_label-lesion_mask.nii.gz")
    assert collect_data(load_layout(root), "01").lesion_mask.name == \
        "sub-01_space-orig_label-lesion_mask.nii.gz"
    shutil.copy(deriv / "sub-01_space-orig_label-lesion_mask.nii.gz",
                deriv / "sub-01_label-lesion_mask.nii.gz")
    assert collect_data(load_layout(root), "01").lesion_mask.name == \
        "sub-01_label-lesion_mask.nii.gz"


def test_collect_data_ambiguous_lesions(tmp_path):
    root = make_dataset(tmp_path / "bids")
    deriv = root / "derivatives" / "lesions" / "sub-01" / "dwi"
    shutil.copy(deriv / "sub-01_label-lesion_mask.nii.gz", deriv / "sub-01_desc-lesion_mask.nii.gz")
    layout = load_layout(root)
    with pytest.raises(BadInputError, match=r"several lesion mask images match.*\"lesion\""):
        collect_data(layout, "01")
    inputs = collect_data(layout, "01", bids_filters={"lesion": {"desc": "lesion"}})
    assert inputs.lesion_mask.name == "sub-01_desc-lesion_mask.nii.gz"


def test_collect_data_without_lesion(tmp_path):
    root = make_dataset(tmp_path / "bids", lesion_entity=None)
    inputs = collect_data(load_layout(root), "01")
    assert inputs.lesion_mask is None
    assert inputs.dwi is not None


def test_collect_data_metadata_inheritance(tmp_path):
    root = make_dataset(
        tmp_path / "bids", kind="trace",
        root_metadata={"Manufacturer": "Philips", "EchoTime": 0.1},
        extra_files={"sub-01/sub-01_dwi.json": {"EchoTime": 0.09, "SubjectLevel": True},
                     "sub-01/dwi/sub-01_rec-TRACE_dwi.json": {"EchoTime": 0.07}},
    )
    inputs = collect_data(load_layout(root), "01")
    assert inputs.metadata == {"Manufacturer": "Philips", "EchoTime": 0.07, "SubjectLevel": True}


def test_collect_data_4d_does_not_inherit_trace_sidecars(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="4d", extra_files={
        "sub-01/dwi/sub-01_rec-TRACE_dwi.json": {"EchoTime": 9.0},
        "sub-01/dwi/sub-01_rec-TRACE_dwi.bval": "1000\n",
    })
    (root / "sub-01" / "dwi" / "sub-01_dwi.bval").unlink()
    with pytest.raises(BadInputError, match=r"sub-01_dwi.nii.gz: the 4D DWI series has no \.bval"):
        collect_data(load_layout(root), "01")


@pytest.mark.parametrize("missing", [".bval", ".bvec"])
def test_collect_data_4d_missing_gradient_file(tmp_path, missing):
    root = make_dataset(tmp_path / "bids")
    (root / "sub-01" / "dwi" / f"sub-01_dwi{missing}").unlink()
    with pytest.raises(BadInputError, match=rf"sub-01_dwi\.nii\.gz: .*no \{missing} file") as exc:
        collect_data(load_layout(root), "01")
    assert exc.value.exit_code == 65


def test_collect_data_bval_count_mismatch(tmp_path):
    root = make_dataset(tmp_path / "bids", extra_files={"sub-01/dwi/sub-01_dwi.bval": "0 1000\n"})
    with pytest.raises(BadInputError, match=r"sub-01_dwi\.bval: must hold one b-value per volume \(4\)"
                                            r"\. Got 2 instead"):
        collect_data(load_layout(root), "01")


def test_collect_data_3d_dwi_without_rec(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="trace")
    dwi = root / "sub-01" / "dwi"
    (dwi / "sub-01_rec-TRACE_dwi.nii.gz").rename(dwi / "sub-01_dwi.nii.gz")
    (dwi / "sub-01_rec-TRACE_dwi.json").unlink()
    with pytest.raises(BadInputError, match=r"sub-01_dwi\.nii\.gz: a _dwi image without rec "
                                            r"entity must be a 4D series.*rec-TRACE"):
        collect_data(load_layout(root), "01")


def test_collect_data_no_dwi_for_subject(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], kind=["4d", "none"])
    layout = load_layout(root)
    with pytest.raises(MissingInputError, match=r"no DWI found for sub-02") as exc:
        collect_data(layout, "02")
    assert exc.value.exit_code == 66
    adc_only = make_dataset(tmp_path / "adc", kind="trace", with_adc=True)
    (adc_only / "sub-01" / "dwi" / "sub-01_rec-TRACE_dwi.nii.gz").unlink()
    with pytest.raises(MissingInputError, match=r"no usable DWI for sub-01.*rec-ADC"):
        collect_data(load_layout(adc_only), "01")


def test_collect_data_on_read_only_lesion_dir(tmp_path):
    root = make_dataset(tmp_path / "bids", lesion_dir=tmp_path / "lesions")
    _make_read_only(tmp_path / "lesions")
    try:
        inputs = collect_data(load_layout(root, lesion_dir=tmp_path / "lesions"), "01")
    finally:
        _make_writable(tmp_path / "lesions")
    assert inputs.lesion_mask.parent == tmp_path / "lesions" / "sub-01" / "dwi"
    assert sorted(os.listdir(tmp_path / "lesions")) == ["dataset_description.json", "sub-01"]


def test_2d_trace_is_named_not_blamed_on_the_adc(tmp_path):
    """check_inputs: a 2D trace image is not 3D/4D, whatever the ADC map's grid."""
    from bids_stroke.workflows.base import check_inputs

    root = make_dataset(tmp_path / "bids", kind="trace", with_adc=True, shape=(8, 8, 1))
    trace = root / "sub-01" / "dwi" / "sub-01_rec-TRACE_dwi.nii.gz"
    write_tree(root, {str(trace.relative_to(root)): np.ones((8, 8), np.float32)})  # one 2D slice
    inputs = collect_data(load_layout(root), "01")
    with pytest.raises(BadInputError, match=rf"^{trace}: must be a 3D or 4D image\. "
                                            r"Got shape \(8, 8\) instead\.$") as exc:
        check_inputs(inputs)
    assert exc.value.exit_code == 65


# -------------------------------------------------------------- the ISLES22 case
def test_isles22_case_is_found_and_on_one_grid(isles_ds):
    layout = load_layout(isles_ds)
    assert select_subjects(layout) == [("strokecase0009", "0001")]
    inputs = collect_data(layout, "strokecase0009", "0001")
    assert inputs.kind == "trace"
    assert inputs.trace.name == f"{ISLES_STEM}_rec-TRACE_dwi.nii.gz"
    assert inputs.adc.name == f"{ISLES_STEM}_rec-ADC_dwi.nii.gz"
    assert inputs.lesion_mask.name == f"{ISLES_STEM}_label-lesion_mask.nii.gz"
    assert inputs.trace_b_value == 800.0
    assert inputs.metadata["Manufacturer"] == "Philips Medical Systems"
    trace = check_nifti(inputs.trace, load_data=False)
    mask = check_nifti(inputs.lesion_mask, load_data=False)
    assert trace.shape == (112, 112, 73)
    assert grids_match(trace, mask)
    assert grids_match(inputs.adc, inputs.trace)
