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
