"""Participant and session labels: prefixes, label files, invalid labels."""

from __future__ import annotations

import re

import pytest

from bids_stroke.bids.labels import normalize_labels
from bids_stroke.errors import BadInputError, ExitCode, MissingInputError, UsageError


def test_normalize_labels_strips_prefix_and_deduplicates():
    assert normalize_labels(["sub-01", "02", "01", "sub-02", "3a"]) == ["01", "02", "3a"]
    assert normalize_labels(["ses-pre", "post"], prefix="ses-") == ["pre", "post"]
    assert normalize_labels(None) == []
    assert normalize_labels("sub-07") == ["07"]


def test_normalize_labels_reads_label_files(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("# participants to run\nsub-03 04  # tail comment\n\n05\n03\n")
    assert normalize_labels(["01", str(labels), "sub-06"]) == ["01", "03", "04", "05", "06"]
    assert normalize_labels([labels]) == ["03", "04", "05"]


@pytest.mark.parametrize("bad", ["x_y", "", "sub-", "a-b", "01 02"])
def test_normalize_labels_rejects_invalid(bad):
    expected = "'participant_label' must be alphanumeric BIDS labels. Got '.*' instead."
    with pytest.raises(UsageError, match=expected) as exc:
        normalize_labels([bad])
    assert exc.value.exit_code == ExitCode.USAGE


def test_normalize_labels_message_names_value():
    with pytest.raises(UsageError, match=r"Got 'x_y' instead\."):
        normalize_labels(["sub-x_y"])
    with pytest.raises(UsageError, match="'session_label' must be"):
        normalize_labels(["a.b"], prefix="ses-")


@pytest.mark.parametrize("name", ["labels.txt", "subjects.TSV", "lists/run.csv", "labels/", "./01"])
def test_missing_label_file_is_named(tmp_path, monkeypatch, name):
    """A value that looks like a path names a file: missing, it is 66, not 'not alphanumeric'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels").mkdir()  # a folder is no label file either
    with pytest.raises(MissingInputError, match=rf"^'participant_label': the label file "
                                                rf"{re.escape(str(tmp_path / name))} does not exist") as exc:
        normalize_labels(["01", name])
    assert exc.value.exit_code == ExitCode.MISSING_INPUT == 66
    with pytest.raises(MissingInputError, match="'session_label': the label file"):
        normalize_labels([tmp_path / "nope" / name], prefix="ses-")


def test_label_file_that_is_not_text(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"sub-01\n\xff\xfe\n")
    with pytest.raises(BadInputError, match=rf"^{labels}: a label file must be UTF-8 text") as exc:
        normalize_labels([str(labels)])
    assert exc.value.exit_code == 65
