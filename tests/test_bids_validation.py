"""BIDS validation with bids-validator-deno, and the summary of its report."""

from __future__ import annotations

import pytest
from bids_factory import make_dataset

from bids_stroke.bids.validation import (
    accept_derived_dwi,
    find_validator,
    run_validator,
    summarise_issues,
    validate_bids,
)
from bids_stroke.errors import BidsStrokeError, BidsValidationError, ExitCode, MissingInputError

REPORT = {
    "issues": {
        "issues": [
            {"code": "DWI_MISSING_BVAL", "severity": "error", "location": "/sub-01/dwi/a_dwi.nii.gz"},
            {"code": "DWI_MISSING_BVAL", "severity": "error", "location": "/sub-02/dwi/b_dwi.nii.gz"},
            {"code": "DWI_MISSING_BVAL", "severity": "error", "location": "/sub-02/dwi/b_dwi.nii.gz"},
            {"code": "MISSING_DATASET_DESCRIPTION", "severity": "error",
             "affects": ["/dataset_description.json"]},
            {"code": "JSON_KEY_RECOMMENDED", "subCode": "HEDVersion", "severity": "warning",
             "location": "/dataset_description.json"},
            {"code": "JSON_KEY_RECOMMENDED", "subCode": "GeneratedBy", "severity": "warning",
             "location": "/dataset_description.json"},
        ]
        + [{"code": f"CODE_{i}", "severity": "error", "location": f"/f{i}"} for i in range(6)],
        "codeMessages": {
            "DWI_MISSING_BVAL": "DWI scans must have a corresponding '.bval' file.\n",
            "JSON_KEY_RECOMMENDED": "A JSON file is missing a key listed as recommended.",
        },
    },
    "summary": {"subjects": ["01", "02"]},
}


def test_summarise_issues_groups_by_code():
    errors, warnings = summarise_issues(REPORT, max_lines=3)
    assert errors == [
        "DWI_MISSING_BVAL: DWI scans must have a corresponding '.bval' file. "
        "(2 files, e.g. /sub-01/dwi/a_dwi.nii.gz)",
        "MISSING_DATASET_DESCRIPTION: MISSING_DATASET_DESCRIPTION (1 file, e.g. /dataset_description.json)",
        "CODE_0: CODE_0 (1 file, e.g. /f0)",
        "... and 5 more",
    ]
    assert warnings == [
        "JSON_KEY_RECOMMENDED: A JSON file is missing a key listed as recommended. "
        "[GeneratedBy, HEDVersion] (1 file, e.g. /dataset_description.json)"
    ]


def test_summarise_issues_empty():
    assert summarise_issues({"issues": {"issues": [], "codeMessages": {}}}) == ([], [])


def test_find_validator_missing():
    with pytest.raises(BidsStrokeError, match="--skip-bids-validation") as exc:
        find_validator("/nonexistent/bids-validator-deno")
    assert exc.value.exit_code == ExitCode.FAILURE
    with pytest.raises(BidsStrokeError, match="--skip-bids-validation"):
        run_validator(".", executable="no-such-validator-here")


def test_run_validator_missing_dataset(tmp_path):
    with pytest.raises(MissingInputError, match=str(tmp_path / "nope")):
        run_validator(tmp_path / "nope")


def test_run_validator_reports_json(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], kind=["4d", "trace"],
                        with_adc=True, derived_bvals=True,
                        participants_columns={"site": ["A", "B"]})
    report = run_validator(root)
    assert set(report) >= {"issues", "summary"}
    assert sorted(report["summary"]["subjects"]) == ["01", "02"]
    assert [i for i in report["issues"]["issues"] if i["severity"] == "error"] == []
    warnings = validate_bids(root)
    assert isinstance(warnings, list)
    assert all(": " in line for line in warnings)


def test_validate_bids_broken_dataset(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01"], kind="trace", lesion_entity=None,
                        extra_files={"sub-01/dwi/sub-01_foo-bar_dwi.nii.gz": None,
                                     "dataset_description.json": {"Name": "no version"}})
    with pytest.raises(BidsValidationError) as exc:
        validate_bids(root)
    assert exc.value.exit_code == ExitCode.VALIDATION_FAILED == 16
    lines = str(exc.value).splitlines()
    assert lines[0].startswith(f"{root} is not a valid BIDS dataset: ")
    assert lines[0].endswith(" errors")
    text = str(exc.value)
    assert "sub-01_foo-bar_dwi.nii.gz" in text
    assert "BIDSVersion" in text
    assert "rec-TRACE" not in text  # the trace image without bval is accepted
    assert "--skip-bids-validation" in lines[-1]
    assert len(lines) <= 8


def test_accept_derived_dwi_only_relaxes_trace_and_adc_images():
    report = {"issues": {"issues": [
        {"code": "DWI_MISSING_BVAL", "severity": "error", "location": "/sub-01/dwi/sub-01_rec-TRACE_dwi.nii.gz"},
        {"code": "VOLUME_COUNT_MISMATCH", "severity": "error", "location": "/sub-02/dwi/sub-02_rec-ADC_dwi.nii.gz"},
        {"code": "DWI_MISSING_BVEC", "severity": "error", "location": "/sub-03/dwi/sub-03_dwi.nii.gz"},
        {"code": "EMPTY_FILE", "severity": "error", "location": "/sub-01/dwi/sub-01_rec-TRACE_dwi.nii.gz"},
    ], "codeMessages": {}}}
    relaxed = accept_derived_dwi(report)
    assert [i["severity"] for i in relaxed["issues"]["issues"]] == ["warning", "warning", "error", "error"]
    assert report["issues"]["issues"][0]["severity"] == "error"  # input untouched
    errors, warnings = summarise_issues(relaxed)
    assert any("accepted by bids-stroke" in line for line in warnings)
    assert [line.split(":")[0] for line in errors] == ["DWI_MISSING_BVEC", "EMPTY_FILE"]


def test_clinical_trace_export_without_bval_passes_validation(tmp_path):
    root = make_dataset(tmp_path / "bids", subjects=["01", "02"], kind=["4d", "trace"], with_adc=True,
                        participants_columns={"site": ["A", "B"]})
    raw_errors = {i["code"] for i in run_validator(root)["issues"]["issues"] if i["severity"] == "error"}
    assert "DWI_MISSING_BVAL" in raw_errors  # the validator itself refuses the layout
    warnings = validate_bids(root)  # bids-stroke accepts it, and says so
    assert any(line.startswith("DWI_MISSING_BVAL: accepted by bids-stroke") for line in warnings)
