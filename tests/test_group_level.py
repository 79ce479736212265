"""The group level end to end on a tiny simulated cohort (3 sites, 24 participants).

Two variants, two epochs: the numbers mean nothing, the plumbing is what is tested —
folds, jobs, resumption, outputs, and the final bundle used by ``participant --model``.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from bids_stroke.cli import main
from bids_stroke.errors import BadInputError, ExitCode
from bids_stroke.simulate import simulate_cohort

VARIANTS = ("f8-g1.5", "f8-g1.5-bn")
#: The clinical models come by default: the simulator's participants.tsv has age and NIHSS.
GROUP_OPTIONS = ["--variants", *VARIANTS, "--max-epochs", "2", "--patience", "2", "--bootstrap", "200",
                 "--nprocs", "2", "--random-seed", "7"]
FUSIONS = ("lr_clinical", "volume+clinical", "ensemble+clinical")


@pytest.fixture(scope="module")
def group_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("group")
    bids = simulate_cohort(tmp / "bids", n_subjects=24, n_sites=3, seed=11, downsample=4)
    out, work = tmp / "out", tmp / "work"
    code = main([str(bids), str(out), "participant", "-w", str(work), "--nprocs", "2", "--skip-bids-validation"])
    assert code == ExitCode.SUCCESS
    code = main([str(bids), str(out), "group", "-w", str(work), *GROUP_OPTIONS])
    return {"bids": bids, "out": out, "work": work, "code": code, "tmp": tmp}


def _predictions(out):
    return pd.read_csv(out / "group" / "desc-loco_predictions.tsv", sep="\t", dtype={"participant_id": str})


def test_group_run_writes_every_output(group_run):
    out = group_run["out"]
    assert group_run["code"] == ExitCode.SUCCESS
    pred = _predictions(out)
    assert len(pred) == 24 and pred["participant_id"].is_unique
    assert list(pred.columns[:4]) == ["participant_id", "site", "fold", "outcome"]
    for column in (*VARIANTS, "ensemble", "lr_volume"):
        assert pred[column].between(0, 1).all(), column
    # out-of-center: each participant is predicted by the fold that held out its site
    assert (pred["fold"] == pred["site"]).all()
    assert (pred["ensemble"] - pred[list(VARIANTS)].mean(axis=1)).abs().max() < 1e-5
    assert set(pred["lesion_source"]) == {"given"}  # given masks win over the automatic ones
    for name in ("desc-loco_metrics.tsv", "desc-comparisons_stats.tsv", "desc-cohort_table.tsv",
                 "desc-decision_curve.tsv"):
        assert (out / "group" / name).is_file(), name
    metrics = pd.read_csv(out / "group" / "desc-loco_metrics.tsv", sep="\t")
    assert {"ensemble", "lr_volume", *VARIANTS} <= set(metrics.iloc[:, 0])
    # each job: model, training curve, done-marker
    sites = sorted(pred["site"].unique())
    for site in sites:
        for variant in VARIANTS:
            job = out / "models" / "loco" / f"fold-{site}" / variant
            assert {p.name for p in job.iterdir()} >= {"model.keras", "training_curve.tsv", "done.json"}
            with (job / "training_curve.tsv").open() as fh:
                assert next(csv.reader(fh, delimiter="\t")) == ["epoch", "loss", "val_loss", "val_auc"]
            done = json.loads((job / "done.json").read_text())
            assert done["options"]["fold"] == site and done["options"]["epochs"] == 2
    # out-of-center attention in template space, for every participant and scale
    for pid in pred["participant_id"]:
        maps = sorted((out / pid / "dwi").glob(f"{pid}_space-*_res-2_desc-loco*_attention.nii.gz"))
        assert [m.name.split("desc-")[1].split("_")[0] for m in maps] == ["locoa1", "locoa2", "locoa3"]
    # group maps (per scale x hemisphere, lesion probability) and the reports
    assert list((out / "group").glob("hemi-*_space-*_res-2_desc-a1_attention.nii.gz"))
    assert list((out / "group").glob("hemi-*_space-*_res-2_label-lesion_desc-all_probseg.nii.gz"))
    assert (out / "group.html").is_file() and (out / "logs" / "CITATION.md").is_file()
    manifest = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())
    assert [v["name"] for v in manifest["variants"]] == list(VARIANTS)
    assert manifest["cohort"]["n"] == 24 and manifest["seed"] == 7
    # the resolved training precision is recorded with the bundle and every job
    assert manifest["extra"]["train_precision"] in ("float32", "bfloat16")
    assert done["options"]["precision"] == manifest["extra"]["train_precision"]
    # every derivative written follows the BIDS schema's entity order
    from test_bids_naming import entity_order_errors, schema_entity_order

    order = schema_entity_order()
    names = {p.name for folder in ("sub-*", "group") for p in out.glob(f"{folder}/**/*") if p.is_file()}
    assert len(names) > 50
    assert {name: entity_order_errors(name, order) for name in names if entity_order_errors(name, order)} == {}


def test_model_card_is_built_from_the_group_tables(group_run):
    """The bundle's model card (manifest and Markdown) holds the numbers of the group tables."""
    out = group_run["out"]
    manifest = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())
    card = manifest["model_card"]
    metrics = pd.read_csv(out / "group" / "desc-loco_metrics.tsv", sep="\t", na_values=["n/a"]).set_index("model")
    assert [row["model"] for row in card["performance"]] == ["ensemble", "lr_volume", *FUSIONS]
    for row in card["performance"]:
        for key in ("auc", "auc_ci_low", "brier", "calibration_slope", "calibration_intercept_ci_high"):
            want = metrics.loc[row["model"], key]
            assert (row[key] is None and np.isnan(want)) or row[key] == want, (row["model"], key)
    assert card["training_cohort"]["n"] == 24 and len(card["training_cohort"]["sites"]) == 3
    assert card["clinical_models"] == {"columns": ["age", "nihss"], "note": None}
    assert any("simulated" in item for item in card["limitations"])
    markdown = (out / "models" / "ensemble" / "model_card.md").read_text()
    assert card["summary"] in markdown and "| ensemble+clinical |" in markdown


def test_clinical_fusion_is_a_model_of_its_own(group_run):
    """The default clinical columns (age, NIHSS): lr_clinical, volume+clinical and
    ensemble+clinical are LOCO models in every table, the last two compared with each other,
    and the final fusion is in the bundle."""
    out = group_run["out"]
    pred = _predictions(out)
    covariates = pd.read_csv(group_run["bids"] / "participants.tsv", sep="\t").set_index("participant_id")
    known = pred["participant_id"].map(covariates[["age", "nihss"]].notna().all(axis=1))
    for model in FUSIONS:
        assert pred.loc[known, model].between(0, 1).all() and pred.loc[~known, model].isna().all(), model
    assert known.sum() >= 20
    metrics = pd.read_csv(out / "group" / "desc-loco_metrics.tsv", sep="\t")
    assert set(FUSIONS) <= set(metrics.iloc[:, 0])
    comparisons = pd.read_csv(out / "group" / "desc-comparisons_stats.tsv", sep="\t")
    assert ((comparisons["reference"] == "ensemble+clinical") & (comparisons["model"] == "volume+clinical")).sum() == 1
    assert ((comparisons["reference"] == "ensemble") & comparisons["model"].isin(FUSIONS)).sum() == 3
    # each job keeps its inner held-out (validation) predictions for the fusion of its fold
    for done_path in (out / "models" / "loco").glob("fold-*/*/done.json"):
        done = json.loads(done_path.read_text())
        assert len(done["validation_index"]) == len(done["validation_probabilities"]) == done["n_validation"]
    fusion = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())["extra"]["clinical_fusion"]
    assert fusion["columns"] == ["age", "nihss"] and len(fusion["coef"]) == 3
    assert fusion["feature_names"][1:] == ["age", "nihss"]


def test_final_bundle_predicts_new_participants(group_run, tmp_path, capsys):
    bids, out = group_run["bids"], group_run["out"]
    new_out = tmp_path / "new"
    code = main([str(bids), str(new_out), "participant", "-w", str(group_run["work"]), "--participant-label", "001",
                 "--model", str(out / "models" / "ensemble"), "--skip-bids-validation"])
    assert code == ExitCode.SUCCESS
    rows = pd.read_csv(new_out / "sub-001" / "dwi" / "sub-001_desc-ensemble_predictions.tsv", sep="\t")
    assert list(rows["model"]) == [*VARIANTS, "ensemble", "ensemble+clinical"]
    # the model card's one-line summary: printed, in the predictions' sidecar and the report
    summary = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())["model_card"]["summary"]
    assert f"Model card: {summary}" in capsys.readouterr().err
    sidecar = json.loads((new_out / "sub-001" / "dwi" / "sub-001_desc-ensemble_predictions.json").read_text())
    assert sidecar["ModelCard"] == summary
    assert str(escape(summary)) in (new_out / "sub-001.html").read_text()
    # the bundle's fusion applied to this participant's ensemble logit, age and NIHSS
    fusion = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())["extra"]["clinical_fusion"]
    covariates = pd.read_csv(bids / "participants.tsv", sep="\t").set_index("participant_id").loc["sub-001"]
    p = rows.set_index("model")["probability_poor"]
    z = fusion["intercept"] + np.dot(fusion["coef"], [np.log(p["ensemble"] / (1 - p["ensemble"])),
                                                      covariates["age"], covariates["nihss"]])
    assert p["ensemble+clinical"] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-6)


def test_clinical_column_that_is_absent_or_not_numeric_is_refused(group_run, tmp_path, capsys):
    bids, out = tmp_path / "bids", tmp_path / "out"
    shutil.copytree(group_run["bids"], bids, symlinks=True)
    shutil.copytree(group_run["out"], out, ignore=shutil.ignore_patterns("models", "group"))
    options = [*GROUP_OPTIONS, "--clinical-columns", "age", "height"]
    code = main([str(bids), str(out), "group", "-w", str(tmp_path / "w"), *options])
    assert code == ExitCode.BAD_INPUT
    assert "participants.tsv: no column 'height' for --clinical-columns" in capsys.readouterr().err
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    table.loc[2, "nihss"] = "severe"
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)
    code = main([str(bids), str(out), "group", "-w", str(tmp_path / "w"), *GROUP_OPTIONS,
                 "--clinical-columns", "age", "nihss"])
    assert code == ExitCode.BAD_INPUT
    assert not (out / "models").exists()  # refused before any training
    err = capsys.readouterr().err
    assert "must hold numbers for --clinical-columns" in err and "'severe'" in err and "Traceback" not in err


def _resolve(table, clinical_columns, tmp_path):
    from types import SimpleNamespace

    from bids_stroke.train.folds import loco_folds
    from bids_stroke.workflows.group_fusion import resolve_clinical_columns

    config = SimpleNamespace(clinical_columns=clinical_columns, bids_dir=tmp_path)
    return resolve_clinical_columns(config, table, loco_folds(table["site"].to_numpy(str)))


def test_default_clinical_columns_are_skipped_with_a_note_when_unusable(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(30)], "site": list("ABC") * 10,
                          "outcome": [0, 1] * 15, "age": rng.normal(70, 9, 30), "nihss": rng.integers(0, 20, 30)})
    assert _resolve(table, None, tmp_path) == (["age", "nihss"], None)
    columns, note = _resolve(table.drop(columns="nihss"), None, tmp_path)
    assert columns == [] and "no column nihss" in note and "lr_clinical" in note
    text = table.astype({"nihss": object})
    text.loc[3, "nihss"] = "severe"
    columns, note = _resolve(text, None, tmp_path)
    assert columns == [] and "'severe'" in note
    sparse = table.copy()
    sparse.loc[sparse["site"] != "A", "age"] = np.nan  # fold A trains on B and C: no age there
    columns, note = _resolve(sparse, None, tmp_path)
    assert columns == [] and "to train fold A" in note
    assert _resolve(table, [], tmp_path)[0] == [] and "none" in _resolve(table, [], tmp_path)[1]
    with pytest.raises(BadInputError, match="no column 'height'"):
        _resolve(table, ["height"], tmp_path)


def test_killed_run_resumes_with_the_same_predictions(group_run, tmp_path):
    """Jobs without a done-marker (a killed run) are trained again, the others reused."""
    out = tmp_path / "out"
    shutil.copytree(group_run["out"], out)
    reference = _predictions(out)
    unfinished = sorted((out / "models" / "loco").glob("fold-*"))[0] / VARIANTS[1]
    finished = sorted((out / "models" / "loco").glob("fold-*"))[-1] / VARIANTS[0]
    shutil.rmtree(unfinished)
    (out / "group" / "desc-loco_predictions.tsv").unlink()
    kept = (finished / "model.keras").stat().st_mtime_ns
    code = main([str(group_run["bids"]), str(out), "group", "-w", str(tmp_path / "fresh_work"), *GROUP_OPTIONS])
    assert code == ExitCode.SUCCESS
    assert (unfinished / "done.json").is_file()
    assert (finished / "model.keras").stat().st_mtime_ns == kept  # not retrained
    pd.testing.assert_frame_equal(_predictions(out), reference, check_exact=False, atol=1e-6)


def test_slurm_plugin_trains_the_jobs_as_sbatch_jobs(group_run, slurm_cluster, tmp_path, monkeypatch):
    """``--nipype-plugin SLURM`` submits each job with sbatch, and resumes like MultiProc."""
    for key, value in slurm_cluster.items():
        monkeypatch.setenv(key, value)
    out, work = tmp_path / "out", tmp_path / "slurm_work"
    shutil.copytree(group_run["out"], out)
    reference = _predictions(out)
    fold = sorted((out / "models" / "loco").glob("fold-*"))[1]
    for variant in VARIANTS:
        shutil.rmtree(fold / variant)
    (out / "group" / "desc-loco_predictions.tsv").unlink()
    code = main([str(group_run["bids"]), str(out), "group", "-w", str(work), *GROUP_OPTIONS,
                 "--nipype-plugin", "SLURM"])
    assert code == ExitCode.SUCCESS
    assert all((fold / variant / "done.json").is_file() for variant in VARIANTS)
    pd.testing.assert_frame_equal(_predictions(out), reference, check_exact=False, atol=1e-6)
    # the retrained jobs ran as SLURM jobs: their epoch lines are in SLURM's job logs
    logs = "".join(p.read_text(errors="replace") for p in work.rglob("slurm-*.out"))
    site = fold.name.removeprefix("fold-")
    for variant in VARIANTS:
        assert f"job {site} {variant}: epoch 2/2" in logs, variant
    assert not list(work.rglob("batchscript_*models_*.sh"))  # the merges ran in the main process


def test_single_site_is_refused(group_run, tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(group_run["bids"], bids)
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    table["site"] = "site01"
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)
    code = main([str(bids), str(group_run["out"]), "group", "-w", str(tmp_path / "w"), *GROUP_OPTIONS])
    assert code == ExitCode.BAD_INPUT
    assert "participants.tsv" in capsys.readouterr().err


def test_bad_mrs_values_are_refused(group_run, tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(group_run["bids"], bids)
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    table.loc[0, "mrs"] = "2.5"
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)
    code = main([str(bids), str(group_run["out"]), "group", "-w", str(tmp_path / "w"), *GROUP_OPTIONS])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert "mRS grades 0-6" in err and "2.5" in err


def test_group_level_runs_on_a_cohort_without_lesion_masks(group_run, tmp_path):
    """No lesion dataset at all: the automatic masks give the lesion-aware steps, the side for
    the oversampling and the volume baseline, and the reports say so."""
    bids = tmp_path / "bids"
    shutil.copytree(group_run["bids"], bids, ignore=shutil.ignore_patterns("derivatives"))
    out, work = tmp_path / "out", tmp_path / "work"
    assert main([str(bids), str(out), "participant", "-w", str(work), "--nprocs", "2",
                 "--skip-bids-validation"]) == ExitCode.SUCCESS
    assert main([str(bids), str(out), "group", "-w", str(work), "--variants", VARIANTS[0], "--max-epochs", "1",
                 "--patience", "1", "--bootstrap", "100", "--nprocs", "2"]) == ExitCode.SUCCESS
    pred = _predictions(out)
    assert len(pred) == 24 and set(pred["lesion_source"]) == {"auto"}
    assert pred["lr_volume"].between(0, 1).all()
    for sub in pred["participant_id"]:
        measures = json.loads((out / sub / "dwi" / f"{sub}_desc-lesion_measures.json").read_text())
        assert measures["LesionSource"] == "auto" and measures["LesionVolume"] is not None
        assert (out / sub / "dwi" / f"{sub}_label-lesion_desc-auto_mask.nii.gz").is_file()
    assert "24 automatic lesion masks" in (out / "group.html").read_text()
    # one variant leaves too few inner held-out predictions for ensemble+clinical: with the
    # default clinical columns it is skipped with a note, the other clinical models stay
    assert pred["lr_clinical"].notna().any() and "ensemble+clinical" not in pred
    note = json.loads((out / "models" / "ensemble" / "manifest.json").read_text())["model_card"]["clinical_models"]
    assert note["note"].startswith("ensemble+clinical is skipped")
    assert str(escape(note["note"])) in (out / "group.html").read_text()
    assert "clinical_fusion" not in json.loads((out / "models" / "ensemble" / "manifest.json").read_text())["extra"]
    assert "automatic lesion mask (trace + ADC)" in (out / f"{pred['participant_id'][0]}.html").read_text()



def test_real_lesion_benchmark_reads_its_numbers_from_the_group_tables(group_run):
    import importlib.util
    from pathlib import Path

    from sklearn.metrics import roc_auc_score

    from bids_stroke.stats.delong import delong_test

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "real_lesions.py"
    spec = importlib.util.spec_from_file_location("real_lesions", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    lines = benchmark.report(group_run["out"], {"group": 90.0}, "t")
    pred = _predictions(group_run["out"])
    by_model = {line.split(":")[0].split(" ", 1)[1]: line for line in lines if ": LOCO AUC" in line}
    assert set(by_model) >= {"ensemble", "lr_volume", *VARIANTS, *FUSIONS}
    known = pred[["outcome", "ensemble+clinical", "lr_volume"]].dropna()
    auc = roc_auc_score(known["outcome"], known["ensemble+clinical"])
    assert f"LOCO AUC {auc:.3f} [" in by_model["ensemble+clinical"]
    test = delong_test(known["outcome"].to_numpy(), known["ensemble+clinical"].to_numpy(),
                       known["lr_volume"].to_numpy())
    assert f"DeLong z {test.z:.2f}, p {test.p_value:.4f}" in by_model["ensemble+clinical"]
    assert "vs lr_volume" not in by_model["lr_volume"]
    assert any(line.startswith("t ensemble+clinical vs volume+clinical: AUC") for line in lines)
    assert lines[-1] == "wall time group: 1.5 min"
