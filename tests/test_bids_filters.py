"""The --bids-filter-file: reading and checking it, and the pybids filters it gives."""

from __future__ import annotations

import json

import pytest
from bids.layout import Query

from bids_stroke.bids.filters import entity_filters, load_bids_filters
from bids_stroke.errors import MissingInputError, UsageError


def test_load_bids_filters(tmp_path):
    path = tmp_path / "filters.json"
    path.write_text(json.dumps({"dwi": {"acquisition": "b1000", "run": 1},
                                "lesion": {"space": None}}))
    assert load_bids_filters(path) == {"dwi": {"acquisition": "b1000", "run": 1},
                                       "lesion": {"space": None}}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not valid JSON"),
        ('["dwi"]', "must hold a JSON object"),
        ('{"bold": {"task": "rest"}}', "keys must be among dwi, trace, adc, lesion, brain_mask. Got 'bold'"),
        ('{"dwi": "b1000"}', "'dwi' must map BIDS entities"),
        ('{"dwi": {"flavour": "b1000"}}', "Got 'flavour' instead"),
    ],
)
def test_load_bids_filters_errors(tmp_path, content, match):
    path = tmp_path / "filters.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=match) as exc:
        load_bids_filters(path)
    assert str(path) in str(exc.value)
    assert exc.value.exit_code == 64


def test_load_bids_filters_missing_file(tmp_path):
    path = tmp_path / "no.json"
    with pytest.raises(MissingInputError, match=f"--bids-filter-file {path} does not exist") as exc:
        load_bids_filters(path)
    assert exc.value.exit_code == 66


def test_entity_filters_resolve_aliases_null_and_any():
    filters = {"dwi": {"acq": "b1000", "rec": None, "run": "*", "desc": ["a", None]}}
    assert entity_filters(filters, "dwi") == {
        "acquisition": "b1000", "reconstruction": Query.NONE, "run": Query.ANY,
        "desc": ["a", Query.NONE],
    }
    assert entity_filters(filters, "trace") == {}
    assert entity_filters(None, "dwi") == {}
