"""Fused ensemble inference and the participant-level prediction."""

from __future__ import annotations

import types

import numpy as np
import pytest

from bids_stroke.config import VARIANT_NAMES
from bids_stroke.errors import BadInputError
from bids_stroke.model.ensemble import FusedEnsemble, predict_participant
from bids_stroke.model.spec import SCALES
from bids_stroke.model.variants import build_variant

SMALL = (32, 32, 8, 1)


@pytest.fixture(scope="module")
def models():
    return [build_variant(name, SMALL, seed=i) for i, name in enumerate(VARIANT_NAMES)]


@pytest.fixture(scope="module")
def ensemble(models):
    return FusedEnsemble(models)


def test_fused_call_equals_the_separate_models(models, ensemble):
    x = np.random.default_rng(0).normal(size=(2,) + SMALL[:3]).astype("float32")
    out = ensemble.predict(x)
    assert out["names"] == VARIANT_NAMES
    assert out["probability"].shape == (2, 8)
    separate = [model.predict_on_batch(x[..., None]) for model in models]
    probabilities = np.stack([s["probability"][:, 0] for s in separate], axis=1)
    np.testing.assert_allclose(out["probability"], probabilities, atol=1e-5)
    np.testing.assert_allclose(out["ensemble_probability"], probabilities.mean(1), atol=1e-5)
    for scale in SCALES:
        maps = np.stack([np.asarray(s[scale]) for s in separate], axis=1)
        np.testing.assert_allclose(out["attention"][scale], maps, atol=1e-5)
        np.testing.assert_allclose(out["ensemble_attention"][scale], maps.mean(1), atol=1e-5)
        sums = out["ensemble_attention"][scale].reshape(2, -1).sum(1)
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def test_input_shapes_accepted_and_refused(ensemble):
    one = np.zeros(SMALL[:3], np.float32)
    assert ensemble.predict(one)["probability"].shape == (1, 8)
    assert ensemble.predict(one[None, ..., None])["probability"].shape == (1, 8)
    with pytest.raises(ValueError, match="'volumes' must have shape"):
        ensemble.predict(np.zeros((16, 16, 8)))


def test_models_must_be_compatible(models):
    with pytest.raises(ValueError, match="distinct names"):
        FusedEnsemble([models[0], models[0]])
    with pytest.raises(ValueError, match="one input shape"):
        FusedEnsemble([models[0], build_variant("f8-g2", (32, 32, 16, 1))])


def test_predict_participant(models, ensemble):
    bundle = types.SimpleNamespace(ensemble=ensemble, threshold=0.5, manifest={})
    x = np.random.default_rng(1).normal(size=SMALL[:3]).astype("float32")
    out = predict_participant(bundle, x)
    assert [row["model"] for row in out["rows"]] == list(VARIANT_NAMES) + ["ensemble"]
    for row in out["rows"]:
        assert row["threshold"] == 0.5
        assert row["prediction"] == int(row["probability_poor"] >= 0.5)
    expected = np.mean([out["probability"][name] for name in VARIANT_NAMES])
    assert out["probability"]["ensemble"] == pytest.approx(expected, abs=1e-6)
    assert out["model_grid_attention"]["a2"].shape == SMALL[:3]
    for scale in SCALES:
        assert out["model_grid_attention"][scale].sum() == pytest.approx(1.0, abs=1e-6)
        assert set(out["attention"][scale]) == set(VARIANT_NAMES)
    with pytest.raises(ValueError, match="'model_input' must have shape"):
        predict_participant(bundle, np.zeros((8, 8, 8)))


def test_predict_participant_adds_the_bundles_clinical_fusion(ensemble):
    """With a fusion in the manifest and every covariate known: sigmoid(b + w . [logit, age,
    nihss]); a missing covariate gives no fused row; a malformed fusion is refused."""
    fusion = {"columns": ["age", "nihss"], "feature_names": ["ensemble_logit", "age", "nihss"],
              "coef": [0.8, 0.03, 0.1], "intercept": -3.0}
    bundle = types.SimpleNamespace(ensemble=ensemble, threshold=0.5, manifest={"extra": {"clinical_fusion": fusion}})
    x = np.random.default_rng(2).normal(size=SMALL[:3]).astype("float32")
    out = predict_participant(bundle, x, covariates={"age": 70.0, "nihss": 12.0})
    p = out["probability"]["ensemble"]
    z = -3.0 + 0.8 * np.log(p / (1 - p)) + 0.03 * 70 + 0.1 * 12
    assert out["probability"]["ensemble+clinical"] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-9)
    assert [row["model"] for row in out["rows"]][-2:] == ["ensemble", "ensemble+clinical"]
    assert "ensemble+clinical" not in predict_participant(bundle, x, covariates={"age": 70.0, "nihss": None})[
        "probability"]
    assert "ensemble+clinical" not in predict_participant(bundle, x)["probability"]
    bundle.manifest["extra"]["clinical_fusion"] = {**fusion, "coef": [0.8]}
    with pytest.raises(BadInputError, match="clinical_fusion"):
        predict_participant(bundle, x, covariates={"age": 70.0, "nihss": 12.0})
