"""The command line on simulated cohorts: every participant's inputs are found and checked.

In this version the participant level stops (exit 1, "not implemented yet") once the
dataset is validated and every participant's inputs are found and read; the group level
once participants.tsv is checked. Neither writes anything.
"""

from __future__ import annotations

import re

import pytest

from bids_stroke.cli import main
from bids_stroke.errors import ExitCode


def _files(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("which", ["simulated_cohort", "simulated_cohort_session"])
def test_participant_level_checks_every_simulated_participant(which, request, tmp_path, capsys):
    bids = request.getfixturevalue(which)
    before = _files(bids)
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "-w", str(tmp_path / "work")])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILURE, err
    subjects = sorted(p.name for p in bids.glob("sub-*"))
    described = re.findall(r"(sub-\w+)(?: ses-\w+)?: (4D DWI with bval/bvec|trace image)(.*)", err)
    assert sorted(d[0] for d in described) == subjects
    # the lesion masks of derivatives/lesions are found for everyone, on the DWI grid
    assert all("lesion mask" in rest and "NO lesion" not in rest for _, _, rest in described)
    # both export kinds are recognised; trace sites come with their ADC map
    kinds = {kind for _, kind, _ in described}
    assert kinds == {"4D DWI with bval/bvec", "trace image"}
    assert all("ADC" in rest for _, kind, rest in described if kind == "trace image")
    assert "not implemented yet" in err.splitlines()[-1]
    assert "Validating" in err and "validation skipped" not in err
    assert _files(bids) == before and not out.exists()


def test_participant_selection_on_a_simulated_cohort(simulated_cohort, tmp_path, capsys):
    code = main([str(simulated_cohort), str(tmp_path / "o"), "participant", "--skip-bids-validation",
                 "--participant-label", "sub-002", "001"])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILURE
    assert "2 participant/session pair(s) selected" in err
    assert "sub-003" not in err


def test_group_level_on_a_simulated_cohort(simulated_cohort, tmp_path, capsys):
    code = main([str(simulated_cohort), str(tmp_path / "o"), "group"])
    err = capsys.readouterr().err
    assert code == ExitCode.FAILURE
    assert "participants.tsv (4 rows) was checked" in err
    code = main([str(simulated_cohort), str(tmp_path / "o"), "group", "--outcome-column", "mrs90"])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT and "mrs90" in err and "--outcome-column" in err
