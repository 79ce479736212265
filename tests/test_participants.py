"""Reading participants.tsv."""

from __future__ import annotations

import numpy as np
import pytest
from bids_factory import make_dataset, write_tree

from bids_stroke.bids.participants import read_participants
from bids_stroke.errors import BadInputError, ExitCode, MissingInputError


def test_read_participants_from_dataset(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02", "03"], kind="none",
                        participants_columns={"site": ["A", "B", "n/a"], "mrs": [1, "n/a", 4],
                                              "code": ["007", "010", "n/a"]})
    table = read_participants(root, required_columns={"site": "--site-column"})
    assert list(table.index) == ["sub-01", "sub-02", "sub-03"]
    assert table.index.name == "participant_id"
    assert list(table.columns) == ["site", "mrs", "code"]
    assert table.loc["sub-01", "site"] == "A"
    assert np.isnan(table.loc["sub-02", "mrs"])
    assert table.loc["sub-03", "mrs"] == 4
    assert table["site"].isna().tolist() == [False, False, True]


def test_read_participants_from_tsv_adds_prefix(tmp_path):
    path = write_tree(tmp_path, {"p.tsv": "participant_id\tsite\n01\tA\nsub-02\tB\n"}) / "p.tsv"
    table = read_participants(path, required_columns=["site"])
    assert list(table.index) == ["sub-01", "sub-02"]
    assert all(isinstance(i, str) for i in table.index)


def test_read_participants_keeps_ids_as_strings(tmp_path):
    path = write_tree(tmp_path, {"p.tsv": "participant_id\tage\n007\t61\n1e3\t70\nnan\t80\n"}) / "p.tsv"
    table = read_participants(path)
    assert list(table.index) == ["sub-007", "sub-1e3", "sub-nan"]


def test_read_participants_missing_file(tmp_path):
    with pytest.raises(MissingInputError, match=r"participants\.tsv does not exist") as exc:
        read_participants(tmp_path)
    assert exc.value.exit_code == ExitCode.MISSING_INPUT


def test_read_participants_missing_required_column(tmp_path):
    root = make_dataset(tmp_path / "bids", kind="none", participants_columns={"mrs": [2]})
    path = root / "participants.tsv"
    expected = (rf"{path}: missing column 'site' \(needed for the group level; columns present: "
                r"participant_id, mrs\)\. Use --site-column to name another column\.")
    with pytest.raises(BadInputError, match=expected) as exc:
        read_participants(root, required_columns={"mrs": "--outcome-column",
                                                  "site": "--site-column"})
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(BadInputError, match=r"missing column 'aspects' \(.*\)\.$"):
        read_participants(root, required_columns=["aspects"])


def test_read_participants_duplicates(tmp_path):
    path = write_tree(tmp_path, {"p.tsv": "participant_id\tsite\nsub-01\tA\n01\tB\nsub-02\tA\n"}) / "p.tsv"
    with pytest.raises(BadInputError, match=rf"{path}: participant_id must be unique\. Got duplicates sub-01"):
        read_participants(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("subject\tsite\n01\tA\n", "missing column 'participant_id'"),
        ("participant_id\tsite\nn/a\tA\n", r"empty participant_id on line\(s\) \[2\]"),
        ("", "not a readable tab-separated table"),
        ("participant_id\tsite\nsub-01\tA\tB\textra\n", "not a readable tab-separated table"),
    ],
)
def test_read_participants_bad_tables(tmp_path, content, match):
    path = write_tree(tmp_path, {"participants.tsv": content}) / "participants.tsv"
    with pytest.raises(BadInputError, match=match) as exc:
        read_participants(path)
    assert str(path) in str(exc.value)


# ------------------------------------------------------------ site labels
def test_read_participants_keeps_label_columns_as_text(tmp_path):
    """Site ``1`` and site ``01`` are two sites: pandas alone reads both as the number 1."""
    path = write_tree(tmp_path, {"p.tsv": "participant_id\tsite\tmrs\n01\t1\t2\n02\t01\t3\n"
                                          "03\t 2 \t1\n04\tn/a\t0\n05\t n/a\t0\n"}) / "p.tsv"
    table = read_participants(path, label_columns=["site", "absent"])
    assert table["site"].iloc[:3].tolist() == ["1", "01", "2"]
    assert table["site"].iloc[3:].isna().all()
    assert table["mrs"].tolist() == [2, 3, 1, 0, 0]  # other columns: inferred types
    numbers = write_tree(tmp_path, {"n.tsv": "participant_id\tsite\n01\t1\n02\t01\n"}) / "n.tsv"
    assert read_participants(numbers, label_columns=["site"])["site"].tolist() == ["1", "01"]
    assert read_participants(numbers)["site"].tolist() == [1, 1]  # what pandas alone makes of them


def _group_cohort(tmp_path, sites, mrs):
    """participants.tsv and empty stand-ins of the participant-level outputs it needs."""
    from bids_stroke.bids.naming import derivative_path

    out = tmp_path / "out"
    rows = "".join(f"sub-{i:02d}\t{site}\t{grade}\n" for i, (site, grade) in enumerate(zip(sites, mrs), 1))
    write_tree(tmp_path / "bids", {"participants.tsv": "participant_id\tsite\tmrs\n" + rows})
    for i in range(1, len(sites) + 1):
        source = {"subject": f"{i:02d}", "datatype": "dwi"}
        for entities in ({"space": "model", "desc": "preproc", "suffix": "dwi", "extension": ".nii.gz"},
                         {"desc": "brain", "suffix": "mask", "extension": ".nii.gz"},
                         {"desc": "lesion", "suffix": "measures", "extension": ".json"},
                         {"from": "dwi", "to": "MNI152NLin2009cAsym", "mode": "image", "suffix": "xfm",
                          "extension": ".h5"}):
            write_tree(out, {str(derivative_path(out, source, **entities).relative_to(out)): {}})
    return tmp_path / "bids", out


def test_group_inputs_keep_site_labels_as_written(tmp_path):
    from bids_stroke.config import Config
    from bids_stroke.workflows.group_inputs import collect_group_inputs

    bids, out = _group_cohort(tmp_path, ["1", "01", "01", "1"], [0, 4, 1, 5])
    config = Config(bids_dir=bids, output_dir=out, analysis_level="group", work_dir=tmp_path / "work")
    table = collect_group_inputs(config).table
    assert table["site"].tolist() == ["1", "01", "01", "1"]


def _group_workflow(tmp_path, sites):
    from types import SimpleNamespace

    import pandas as pd

    from bids_stroke.config import Config
    from bids_stroke.train.folds import loco_folds
    from bids_stroke.workflows.group import init_group_wf
    from bids_stroke.workflows.group_inputs import GroupInputs

    write_tree(tmp_path, {"cohort.npz": b"", "template.nii.gz": b""})  # only their names matter here
    table = pd.DataFrame({"participant_id": [f"sub-{i}" for i in range(len(sites))], "site": sites,
                          "outcome": [i % 2 for i in range(len(sites))],
                          **{key: "n/a" for key in ("preproc", "reference", "transform", "source")}})
    config = Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="group",
                    work_dir=tmp_path / "work", variants=["f8-g1.5", "f8-g1.5-bn"])
    return init_group_wf(config=config, inputs=GroupInputs(table=table, excluded=[], space="MNI"),
                         folds=loco_folds(sites), data=tmp_path / "cohort.npz", digest="0",
                         template=SimpleNamespace(path=tmp_path / "template.nii.gz"))


def test_group_workflow_node_names_are_unique_for_any_site_labels(tmp_path):
    """``site-02``/``site02`` and a site called like the final pseudo-fold (``all``)."""
    workflow = _group_workflow(tmp_path, ["site-02", "site-02", "site02", "site02", "all", "all"])
    names = workflow.list_node_names()
    assert len(names) == len(set(names)) == 4 * 2 + 4 + 3 + 1  # jobs, merges, results, bundle
    trains = [workflow.get_node(n) for n in names if n.startswith("train_")]
    out_dirs = sorted(node.inputs.out_dir for node in trains)
    folders = sorted(d.split("/models/")[1] for d in out_dirs)
    # the output folders are those of run_path: models/all/<variant>, models/loco/fold-<site>/<variant>
    assert folders[:2] == ["all/f8-g1.5", "all/f8-g1.5-bn"]
    assert "loco/fold-all/f8-g1.5" in folders and "loco/fold-site02/f8-g1.5" in folders
    assert sorted({node.inputs.fold["name"] for node in trains}) == ["all", "site-02", "site02"]


def test_site_labels_sharing_an_output_folder_are_refused(tmp_path):
    from bids_stroke.train.folds import loco_folds
    from bids_stroke.workflows.group import check_fold_folders

    tsv = tmp_path / "participants.tsv"
    check_fold_folders(loco_folds(["A", "A", "all", "all", "1", "01"]), tsv)  # 1/01 merged
    with pytest.raises(BadInputError, match=rf"^{tsv}: the site labels 'site-02', 'site02' differ only "
                                            r"by characters .* \(both become fold-site02\)") as exc:
        check_fold_folders(loco_folds(["site-02", "site-02", "site02", "site02", "A", "A"]), tsv)
    assert exc.value.exit_code == 65
