"""Participant and session labels: prefixes, label files, invalid labels."""

from __future__ import annotations

import pytest

from bids_stroke.bids.labels import normalize_labels
from bids_stroke.errors import ExitCode, UsageError


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
