"""The command line on simulated cohorts: sessions, selection, and the group level's checks."""

from __future__ import annotations

import re

from bids_stroke.cli import main
from bids_stroke.errors import ExitCode


def _files(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_participant_level_with_sessions_and_selection(simulated_cohort_session, tmp_path, capsys):
    bids = simulated_cohort_session
    before = _files(bids)
    subjects = sorted(p.name for p in bids.glob("sub-*"))
    chosen = subjects[:2]
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "-w", str(tmp_path / "work"),
                 "--participant-label", *chosen, "--session-label", "ses-01"])
    err = capsys.readouterr().err
    assert code == ExitCode.SUCCESS, err
    assert "2 participant/session pair(s) selected" in err
    described = re.findall(r"(sub-\w+) ses-01: (4D DWI with bval/bvec|trace image)(.*)", err)
    assert sorted(d[0] for d in described) == chosen
    assert {kind for _, kind, _ in described} == {"4D DWI with bval/bvec", "trace image"}
    assert all("lesion mask" in rest and "NO lesion" not in rest for _, _, rest in described)
    for sub in chosen:
        folder = out / sub / "ses-01" / "dwi"
        assert (folder / f"{sub}_ses-01_space-model_desc-preproc_dwi.nii.gz").is_file()
        assert (folder / f"{sub}_ses-01_desc-lesion_measures.json").is_file()
    assert not (out / subjects[2]).exists()
    assert "Validating" in err
    assert _files(bids) == before


def test_group_level_on_a_simulated_cohort(simulated_cohort, tmp_path, capsys):
    code = main([str(simulated_cohort), str(tmp_path / "o"), "group"])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert err.count("excluded: no participant-level outputs") == 4
    code = main([str(simulated_cohort), str(tmp_path / "o"), "group", "--outcome-column", "mrs90"])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT and "mrs90" in err and "--outcome-column" in err
