"""The ensemble bundle: manifest content, save -> load, and refusals."""

from __future__ import annotations

import json
import time
import zipfile

import keras
import numpy as np
import pytest

from bids_stroke import __version__
from bids_stroke.errors import BadInputError, ExitCode, MissingInputError
from bids_stroke.model.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    ZIP_DATE_TIME,
    load_bundle,
    save_bundle,
    save_keras,
    sha256,
)
from bids_stroke.model.ensemble import predict_participant
from bids_stroke.model.variants import build_variant

SMALL = (32, 32, 8, 1)
NAMES = ("f8-g1.5", "f8-g2-bn")
COHORT = {"n": 40, "sites": ["A", "B", "C"], "prevalence": 0.42}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    models = [build_variant(name, SMALL, seed=i) for i, name in enumerate(NAMES)]
    folder = tmp_path_factory.mktemp("bundle") / "ensemble"
    save_bundle(models, folder, threshold=0.4, cohort=COHORT, seed=7)
    return models, folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


def test_manifest_content(saved):
    models, folder = saved
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["bids_stroke_version"] == __version__
    assert manifest["keras_backend"] == keras.backend.backend()
    assert manifest["input_shape"] == list(SMALL)
    assert manifest["threshold"] == 0.4 and manifest["seed"] == 7
    assert manifest["cohort"] == COHORT
    for entry, model in zip(manifest["variants"], models):
        assert entry["name"] == model.name and entry["file"] == f"{model.name}.keras"
        assert entry["parameters"] == model.count_params()
        assert entry["hyperparameters"]["name"] == model.name
        assert entry["sha256"] == sha256(folder / entry["file"])
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_save_load_gives_identical_outputs(saved):
    models, folder = saved
    bundle = load_bundle(folder / MANIFEST)
    assert bundle.names == NAMES and bundle.threshold == 0.4
    x = np.random.default_rng(0).normal(size=(2,) + SMALL).astype("float32")
    for original, loaded in zip(models, bundle.models):
        a, b = original.predict_on_batch(x), loaded.predict_on_batch(x)
        for key in a:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
    out = predict_participant(bundle, x[0, ..., 0])
    assert out["rows"][-1]["model"] == "ensemble"


def test_saves_are_byte_reproducible(saved, tmp_path):
    """The same models give the same .keras bytes and the same manifest, whenever saved: no
    save date in the zip entries nor in Keras's metadata.json."""
    models, folder = saved
    time.sleep(1.1)  # Keras's date_saved has 1 s resolution
    again = tmp_path / "again"
    save_bundle(models, again, threshold=0.4, cohort=COHORT, seed=7)
    for name in (MANIFEST, *(f"{n}.keras" for n in NAMES)):
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name
    with zipfile.ZipFile(folder / f"{NAMES[0]}.keras") as archive:
        assert {info.date_time for info in archive.infolist()} == {ZIP_DATE_TIME}
        assert json.loads(archive.read("metadata.json")) == {"keras_version": keras.__version__}
    alone = save_keras(models[0], tmp_path / "alone.keras")
    assert alone.read_bytes() == (folder / f"{NAMES[0]}.keras").read_bytes()
    assert keras.saving.load_model(alone, compile=False, safe_mode=True).name == NAMES[0]
    with pytest.raises(ValueError, match="must end with .keras"):
        save_keras(models[0], tmp_path / "model.h5")


def test_tampered_file_is_refused(saved, tmp_path):
    copy = _copy(saved[1], tmp_path)
    target = copy / f"{NAMES[1]}.keras"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="SHA-256") as info:
        load_bundle(copy)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert str(target) in str(info.value)


def test_missing_file_wrong_version_and_missing_bundle_are_refused(saved, tmp_path):
    copy = _copy(saved[1], tmp_path)
    (copy / f"{NAMES[0]}.keras").unlink()
    with pytest.raises(BadInputError, match="missing"):
        load_bundle(copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format_version"] = 99
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BadInputError, match="'format_version' must be"):
        load_bundle(copy)
    manifest["format_version"] = FORMAT_VERSION
    manifest["variants"][0]["file"] = "../elsewhere.keras"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BadInputError, match="must be a .keras file name"):
        load_bundle(copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(BadInputError, match="manifest.json: missing"):
        load_bundle(copy)
    with pytest.raises(MissingInputError):
        load_bundle(tmp_path / "nowhere")


FUSION = {"columns": ["age"], "feature_names": ["ensemble_logit", "age"], "coef": [0.8, 0.03],
          "intercept": -3.0, "mean": [0.0, 70.0], "scale": [1.0, 9.0], "C": "inf"}


@pytest.mark.parametrize(("key", "value"), [
    ("threshold", "high"), ("threshold", 1.5), ("threshold", -0.1), ("threshold", float("nan")),
    ("threshold", True), ("threshold", None), ("input_shape", [32, "32", 8, 1]), ("input_shape", [32, 32, 0, 1]),
    ("input_shape", "32x32x8"), ("format_version", True), ("extra", ["a list"]),
    ("extra.clinical_fusion.intercept", "low"), ("extra.clinical_fusion.intercept", float("inf")),
    ("extra.clinical_fusion.coef", [0.8, "0.03"]), ("extra.clinical_fusion.feature_names", ["age"]),
    ("extra.clinical_fusion.mean", [0.0, None]), ("extra.clinical_fusion.scale", [1.0, 0.0]),
    ("extra.clinical_fusion.C", "big"), ("extra.protocol", "reduced"),
    ("extra.protocol", {"name": "reduced", "deviations": "few epochs"}),
])
def test_manifest_numbers_of_the_wrong_type_or_range_are_refused(saved, tmp_path, key, value):
    """A field the loader uses that is not a finite number of its range is refused with an error
    naming the manifest and the key, not a traceback in the first use of the number."""
    copy = _copy(saved[1], tmp_path)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["extra"] = {"clinical_fusion": dict(FUSION)}
    (copy / MANIFEST).write_text(json.dumps(manifest))
    assert load_bundle(copy).threshold == 0.4  # the well-formed fusion is accepted
    *parents, last = key.split(".")
    target = manifest
    for parent in parents:
        target = target[parent]
    target[last] = value
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BadInputError, match=f"'{key}' must") as info:
        load_bundle(copy)
    assert info.value.exit_code == ExitCode.BAD_INPUT and str(copy / MANIFEST) in str(info.value)


def test_participant_model_with_a_non_numeric_threshold_exits_65(saved, tmp_path, capsys):
    """``participant --model`` with ``"threshold": "high"``: one error line, exit 65, no traceback."""
    from bids_factory import make_dataset

    from bids_stroke.cli import main

    bids = make_dataset(tmp_path / "bids", subjects=["01"], participants_columns={"site": ["A"], "mrs": [1]})
    copy = _copy(saved[1], tmp_path)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["threshold"] = "high"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    code = main([str(bids), str(tmp_path / "out"), "participant", "--skip-bids-validation", "--model", str(copy)])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT, err
    assert f"{copy / MANIFEST}: 'threshold' must be a number in [0, 1]. Got 'high'" in err
    assert "Traceback" not in err


def test_save_refuses_bad_arguments(saved, tmp_path):
    models, _ = saved
    with pytest.raises(ValueError, match="'threshold' must be in"):
        save_bundle(models, tmp_path / "b", threshold=1.5, cohort=COHORT, seed=0)
    with pytest.raises(ValueError, match="'cohort' must have the keys"):
        save_bundle(models, tmp_path / "b", threshold=0.5, cohort={"n": 3}, seed=0)
    with pytest.raises(ValueError, match="distinct variants"):
        save_bundle([models[0], models[0]], tmp_path / "b", threshold=0.5, cohort=COHORT, seed=0)
