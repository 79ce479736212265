"""The demo (bids-stroke-demo --quick): simulated cohort -> trained ensemble -> new patients'
predictions, attention maps and reports, with the quick protocol stated."""

from __future__ import annotations

import csv
import json

import pytest

from bids_stroke.bids.naming import ANY, find_derivatives, run_path
from bids_stroke.demo import PROFILES, main, run_demo
from bids_stroke.model.spec import SCALES


def _soop_ids(cohort):
    with (cohort / "truth" / "subjects.tsv").open(newline="") as fh:
        return {row["soop_id"] for row in csv.DictReader(fh, delimiter="\t")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    lines: list[str] = []
    result = run_demo(out, profile="quick", log=lines.append)
    return out, result, lines


def test_new_patients_get_predictions_attention_maps_and_reports(demo):
    out, result, _ = demo
    new = out / "new_patients" / "derivatives"
    predictions = find_derivatives(new, desc="ensemble", suffix="predictions", extension=".tsv")
    assert len(predictions) == PROFILES["quick"].n_new
    for scale in SCALES:
        native = find_derivatives(new, space=None, desc=scale, suffix="attention", extension=".nii.gz")
        template = find_derivatives(new, space=ANY, desc=scale, suffix="attention", extension=".nii.gz")
        assert len(native) == len(template) == PROFILES["quick"].n_new
    assert result["group_report"].is_file() and result["group_report"].name == "group.html"
    assert "ROC" in result["group_report"].read_text()
    html = result["patient_report"].read_text()
    assert "Probability of a poor outcome (ensemble)" in html
    assert f"{result['probability']:.3f}" in html
    assert "No prediction for this participant" not in html


def test_new_patients_have_lesions_the_ensemble_never_saw(demo):
    out, _, _ = demo
    trained, new = _soop_ids(out / "bids"), _soop_ids(out / "new_patients" / "bids")
    assert len(new) == PROFILES["quick"].n_new and not trained & new


def test_quick_protocol_is_stated_in_the_output_and_the_manifest(demo):
    out, _, lines = demo
    manifest = json.loads((run_path(out / "derivatives", "ensemble") / "manifest.json").read_text())
    protocol = manifest["extra"]["protocol"]
    assert protocol["name"] == "reduced"
    assert f"at most {PROFILES['quick'].max_epochs} epochs instead of 150" in protocol["deviations"]
    assert [v["name"] for v in manifest["variants"]] == list(PROFILES["quick"].variants)
    text = "\n".join(lines)
    assert "QUICK PROTOCOL, for demonstration only" in text and "demonstration only" in lines[-1]
    shown = [line.strip() for line in lines if line.strip().startswith("$ ")]
    assert [c.split()[1] for c in shown] == ["bids-stroke-simulate", "bids-stroke", "bids-stroke",
                                             "bids-stroke-simulate", "bids-stroke"]
    assert "participant" in shown[1] and "group" in shown[2] and "--model" in shown[4]


def test_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    assert main([str(tmp_path), "--quick"]) == 64
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
