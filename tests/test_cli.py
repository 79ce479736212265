"""The command line: options, --version, --help, and the exit code of every bad input.

Each bad-input test also checks that the run wrote nothing: not OUTPUT_DIR, not a file in
BIDS_DIR.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bids_factory import make_dataset

from bids_stroke import __version__
from bids_stroke.cli import build_parser, config_from_args, main
from bids_stroke.config import VARIANT_NAMES, Config
from bids_stroke.errors import ExitCode, UsageError

ROOT = Path(__file__).resolve().parent.parent


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


@pytest.fixture()
def dataset(tmp_path):
    """Two participants, 4D DWI with lesion masks, participants.tsv with site and mrs."""
    root = make_dataset(
        tmp_path / "bids",
        subjects=["01", "02"],
        participants_columns={"site": ["A", "B"], "mrs": [1, 4]},
    )
    return root


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("bids-stroke: error:")]


def test_version_prints_the_version_file(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == (ROOT / "version").read_text().strip() == __version__


def test_run_py_entry_point():
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_help_documents_every_option(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for option in (
        "--participant-label", "--session-label", "--bids-filter-file", "--skip-bids-validation",
        "--work-dir", "--nprocs", "--omp-nthreads", "--mem-gb", "--nipype-plugin", "--random-seed",
        "--lesion-dir", "--lesion-source", "--model", "--site-column", "--outcome-column", "--poor-threshold",
        "--aspects-column", "--max-epochs", "--patience", "--variants", "--bootstrap", "--verbose",
    ):
        assert option in out, option
    assert "exit codes" in out and "73" in out


def test_every_option_reaches_the_config(dataset, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("# participants\nsub-02\n")
    argv = [
        str(dataset), str(tmp_path / "out"), "group",
        "--participant_label", "sub-01", str(labels), "--session-label", "ses-1",
        "-w", str(tmp_path / "w"), "--nprocs", "3", "--omp_nthreads", "2", "--mem-gb", "7.5",
        "--nipype-plugin", "SLURM", "--random-seed", "11", "--site-column", "centre",
        "--outcome_column", "mrs90", "--poor-threshold", "2", "--aspects-column", "asp",
        "--max-epochs", "5", "--patience", "2", "--variants", "f8-g2", "f16-g2-bn", "f8-g2",
        "--bootstrap", "100", "--lesion-source", "auto", "--learning-rate", "1e-3", "--size-branch", "mean",
        "--clinical-columns", "age", "nihss", "age", "-vv",
    ]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.participant_label == ["01", "02"]
    assert config.session_label == ["1"]
    assert (config.nprocs, config.omp_nthreads, config.mem_gb) == (3, 2, 7.5)
    assert config.nipype_plugin == "SLURM" and config.random_seed == 11
    assert (config.site_column, config.outcome_column, config.aspects_column) == ("centre", "mrs90", "asp")
    assert (config.poor_threshold, config.max_epochs, config.patience, config.bootstrap) == (2, 5, 2, 100)
    assert config.variants == ["f8-g2", "f16-g2-bn"]
    assert config.lesion_source == "auto"
    assert (config.learning_rate, config.size_branch, config.clinical_columns) == (1e-3, "mean", ["age", "nihss"])
    assert config.verbose == 2 and config.work_dir == tmp_path / "w"
    # the config round-trips through the JSON written with the outputs
    saved = config.save(tmp_path / "config.json")
    assert Config.load(saved) == config
    assert json.loads(saved.read_text())["bids_stroke_version"] == __version__


def test_defaults_follow_the_interface(dataset, tmp_path):
    out = tmp_path / "o"
    parsed = config_from_args(build_parser().parse_args([str(dataset), str(out), "participant"]))
    default = Config(bids_dir=dataset, output_dir=out, analysis_level="participant")
    for field in dataclasses.fields(Config):
        if field.name != "run_id":
            assert getattr(parsed, field.name) == getattr(default, field.name), field.name
    # the defaults INTERFACE.md documents
    assert (default.site_column, default.outcome_column, default.aspects_column) == ("site", "mrs", "aspects")
    assert (default.poor_threshold, default.max_epochs, default.patience, default.bootstrap) == (3, 150, 30, 10000)
    assert default.variants == list(VARIANT_NAMES) and len(set(VARIANT_NAMES)) == 8
    assert default.nipype_plugin == "MultiProc" and default.random_seed == 0
    assert default.lesion_source == "given-or-auto"
    assert (default.learning_rate, default.size_branch, default.clinical_columns) == (1e-4, "none", None)
    # 'none' turns the clinical models off; mixed with columns it is a usage error
    none = config_from_args(build_parser().parse_args([str(dataset), str(out), "group", "--clinical-columns", "none"]))
    assert none.clinical_columns == []
    with pytest.raises(UsageError, match="'none' cannot be combined"):
        config_from_args(build_parser().parse_args([str(dataset), str(out), "group", "--clinical-columns", "none",
                                                    "age"]))
    assert default.work_dir == Path("work").absolute()
    assert parsed.resolved_nprocs() >= 1 and 1 <= parsed.resolved_omp_nthreads() <= 8


def test_default_threads_keep_registration_reproducible_and_are_recorded(dataset, tmp_path, monkeypatch):
    """One ANTs thread per participant process by default (multi-threaded ANTs changes its
    result from run to run); one thread per training job on TensorFlow (the CPU: jobs side
    by side), the processes' threads for one job at a time on another Keras backend."""
    participant = config_from_args(build_parser().parse_args([str(dataset), str(tmp_path), "participant",
                                                              "--nprocs", "4"]))
    group = config_from_args(build_parser().parse_args([str(dataset), str(tmp_path), "group", "--nprocs", "4"]))
    chosen = config_from_args(build_parser().parse_args([str(dataset), str(tmp_path), "participant",
                                                         "--nprocs", "4", "--omp-nthreads", "3"]))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert (participant.resolved_omp_nthreads(), group.resolved_omp_nthreads(), chosen.resolved_omp_nthreads()) \
        == (1, 1, 3)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert (participant.resolved_omp_nthreads(), group.resolved_omp_nthreads()) == (1, 4)
    assert participant.to_dict()["resources"] == {"nprocs": 4, "omp_nthreads": 1}


@pytest.mark.parametrize(
    "options",
    [
        ["--nprocs", "0"],
        ["--omp-nthreads", "x"],
        ["--mem-gb", "-1"],
        ["--nipype-plugin", "Threads"],
        ["--poor-threshold", "7"],
        ["--variants", "f32-g3"],
        ["--bootstrap", "-5"],
        ["--random-seed", "1.5"],
        ["--no-such-option"],
    ],
)
def test_bad_option_values_are_usage_errors(capsys, dataset, tmp_path, options):
    code, _, err = run_cli(capsys, dataset, tmp_path / "out", "participant", *options)
    assert code == ExitCode.USAGE
    assert "error:" in err
    assert not (tmp_path / "out").exists()


def _assert_nothing_written(bids: Path, before: dict[str, float], out: Path) -> None:
    assert _snapshot(bids) == before, "BIDS_DIR was modified"
    assert not out.exists(), "OUTPUT_DIR was created"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_level", ExitCode.UNKNOWN_LEVEL),
        ("missing_bids_dir", ExitCode.MISSING_INPUT),
        ("missing_description", ExitCode.MISSING_INPUT),
        ("no_dwi", ExitCode.MISSING_INPUT),
        ("unknown_participant", ExitCode.NO_DATA_SELECTED),
        ("unknown_session", ExitCode.NO_DATA_SELECTED),
        ("output_is_bids_dir", ExitCode.USAGE),
        ("output_in_subject_folder", ExitCode.USAGE),
        ("output_is_ancestor", ExitCode.USAGE),
        ("output_not_creatable", ExitCode.CANNOT_CREATE_OUTPUT),
        ("not_gzip", ExitCode.BAD_INPUT),
        ("not_nifti", ExitCode.BAD_INPUT),
        ("lesion_on_other_grid", ExitCode.BAD_INPUT),
        ("missing_site_column", ExitCode.BAD_INPUT),
        ("missing_outcome_column", ExitCode.BAD_INPUT),
        ("missing_lesion_dir", ExitCode.MISSING_INPUT),
        ("invalid_bids", ExitCode.VALIDATION_FAILED),
        ("model_tampered", ExitCode.BAD_INPUT),
        ("model_missing", ExitCode.MISSING_INPUT),
    ],
)
def test_bad_input_exit_codes(capsys, tmp_path, dataset, case, expected, request):
    bids, out, level, extra = dataset, tmp_path / "out", "participant", ["--skip-bids-validation"]
    dwi = bids / "sub-01" / "dwi" / "sub-01_dwi.nii.gz"
    named = None  # a file or value the error line must name
    if case == "unknown_level":
        level, named = "subject", "subject"
    elif case == "missing_bids_dir":
        bids, named = tmp_path / "nowhere", "nowhere"
    elif case == "missing_description":
        (bids / "dataset_description.json").unlink()
        named = "dataset_description.json"
    elif case == "no_dwi":
        bids = make_dataset(tmp_path / "nodwi", subjects=["01"], kind="none")
        named = "no DWI"
    elif case == "unknown_participant":
        extra += ["--participant-label", "03"]
        named = "01, 02"  # the labels that do exist
    elif case == "unknown_session":
        extra += ["--session-label", "7"]
        named = "7"
    elif case == "output_is_bids_dir":
        out, named = bids, "BIDS_DIR itself"
    elif case == "output_in_subject_folder":
        out, named = bids / "sub-01" / "out", "sub-*"
    elif case == "output_is_ancestor":
        out, named = tmp_path, "contains BIDS_DIR"
    elif case == "output_not_creatable":
        (tmp_path / "file").write_text("")
        out, named = tmp_path / "file" / "out", "file"
    elif case == "not_gzip":
        extra += ["--participant-label", "01"]
        raw = gzip.decompress(dwi.read_bytes())
        dwi.write_bytes(raw)  # plain .nii content under a .nii.gz name
        named = "sub-01_dwi.nii.gz"
    elif case == "not_nifti":
        extra += ["--participant-label", "01"]
        dwi.write_bytes(gzip.compress(b"this is not a nifti file" * 20))
        named = "sub-01_dwi.nii.gz"
    elif case == "lesion_on_other_grid":
        extra += ["--participant-label", "01"]
        import nibabel as nib
        import numpy as np

        mask = next((bids / "derivatives").rglob("sub-01_*lesion_mask.nii.gz"))
        img = nib.load(mask)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1.5, 1.5, 1, 1])), mask)
        named = mask.name
    elif case in ("missing_site_column", "missing_outcome_column"):
        level, extra = "group", []
        extra += ["--outcome-column", "mrs90"] if case == "missing_outcome_column" else ["--site-column", "centre"]
        named = "participants.tsv"
    elif case == "missing_lesion_dir":
        extra += ["--lesion-dir", str(tmp_path / "nolesions")]
        named = "nolesions"
    elif case == "invalid_bids":
        extra = []
        (bids / "sub-01" / "dwi" / "sub-01_badname.nii.gz").write_bytes(dwi.read_bytes())
        named = "not a valid BIDS dataset"
    elif case == "model_tampered":
        model = tmp_path / "model"
        shutil.copytree(request.getfixturevalue("untrained_bundle"), model)
        keras_file = next(model.glob("*.keras"))
        keras_file.write_bytes(keras_file.read_bytes() + b"tampered")
        extra += ["--model", str(model)]
        named = "does not match the manifest"
    elif case == "model_missing":
        extra += ["--model", str(tmp_path / "nomodel")]
        named = "nomodel"
    before = _snapshot(bids) if bids.exists() else {}
    code, _, err = run_cli(capsys, bids, out, level, *extra)
    assert code == expected, err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    assert named in lines[0] or named in err, err
    if bids.exists():
        assert _snapshot(bids) == before, "BIDS_DIR was modified"
    if out not in (bids, tmp_path) and not out.is_relative_to(bids):
        assert not out.exists(), "OUTPUT_DIR was created"


def test_group_level_needs_participant_outputs(capsys, dataset, tmp_path):
    code, _, err = run_cli(capsys, dataset, tmp_path / "out", "group")
    assert code == ExitCode.BAD_INPUT
    assert "sub-01 excluded: no participant-level outputs" in err  # listed one by one
    assert "no participant has both an outcome and participant-level outputs" in _error_lines(err)[0]
    assert not (tmp_path / "out").exists()


def test_trace_without_b_value_is_bad_input(capsys, tmp_path):
    bids = make_dataset(tmp_path / "bids", subjects=["01"], kind="trace", metadata={})  # no sidecar
    code, _, err = run_cli(capsys, bids, tmp_path / "out", "participant", "--skip-bids-validation")
    assert code == ExitCode.BAD_INPUT
    assert "b-value of this trace image is unknown" in _error_lines(err)[0]
    assert "sub-01_rec-TRACE_dwi.nii.gz" in _error_lines(err)[0]
    assert not (tmp_path / "out").exists()


def test_main_is_the_console_script(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), str(tmp_path / "none"), str(tmp_path / "o"), "participant"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == ExitCode.MISSING_INPUT
    assert result.stderr.strip().splitlines()[-1].startswith("bids-stroke: error: BIDS_DIR")


@pytest.mark.parametrize("where", ["derivatives/lesions", "derivatives/lesions/out", "derivatives"])
def test_output_dir_is_never_an_input_dataset(capsys, tmp_path, where):
    """A lesion dataset without GeneratedBy is read as input: OUTPUT_DIR may not be it, lie
    inside it or contain it (64), and nothing is written into it."""
    root = make_dataset(tmp_path / "bids", subjects=["01"], derivative_generated_by=False)
    before = _snapshot(root)
    description = (root / "derivatives/lesions/dataset_description.json").read_bytes()
    code, _, err = run_cli(capsys, root, root / where, "participant", "--skip-bids-validation",
                           "-w", tmp_path / "work")
    assert code == ExitCode.USAGE
    assert _error_lines(err) == [line for line in err.splitlines() if "error" in line.lower()]
    assert len(_error_lines(err)) == 1 and "derivatives/lesions" in _error_lines(err)[0]
    assert "Traceback" not in err
    assert _snapshot(root) == before
    assert (root / "derivatives/lesions/dataset_description.json").read_bytes() == description


@pytest.mark.parametrize("error, code, line", [
    (OSError(28, "No space left on device", "/out/dataset_description.json"), ExitCode.CANNOT_CREATE_OUTPUT,
     "bids-stroke: error: /out/dataset_description.json: cannot write: No space left on device."),
    (ZeroDivisionError("float division by zero"), ExitCode.FAILURE,
     "bids-stroke: error: unexpected ZeroDivisionError: float division by zero (run with -v for the traceback; "
     "please report it)"),
])
def test_the_last_guard_gives_one_line_and_an_exit_code(capsys, monkeypatch, dataset, tmp_path, error, code, line):
    """A full disk exited 1 with a traceback; anything unforeseen is one line too."""
    from bids_stroke.workflows import base

    def fail(config):
        raise error

    monkeypatch.setattr(base, "run", fail)
    status, _, err = run_cli(capsys, dataset, tmp_path / "out", "participant")
    assert status == code
    assert _error_lines(err) == [line] and "Traceback" not in err


def test_every_exit_code_is_documented_with_an_example():
    """The README's table and --help list every code of the execution specification."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Exit codes and errors"):readme.index("### After a crash")]
    rows = {int(line.split("|")[1]): line for line in table.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip().isdigit()}
    assert sorted(rows) == sorted(int(code) for code in ExitCode)
    assert all("bids-stroke: error:" in rows[int(code)] for code in ExitCode if code != ExitCode.SUCCESS)
    helptext = build_parser().format_help()
    assert all(f"\n  {int(code):<3d} " in helptext for code in ExitCode)
