"""Custom Keras layers: shapes, attention properties, config round-trip through JSON."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from bids_stroke.model.layers import EnsembleStack, PCAttention


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("local_width,global_width", [(6, 10), (10, 10)])
def test_pc_attention_shapes_and_normalisation(rng, local_width, global_width):
    layer = PCAttention(name="att")
    local = rng.normal(size=(2, 5, 4, 3, local_width)).astype("float32")
    global_ = rng.normal(size=(2, global_width)).astype("float32")
    attended, attention = layer([local, global_])
    assert tuple(attended.shape) == (2, global_width)
    assert tuple(attention.shape) == (2, 5, 4, 3)
    a = np.asarray(attention)
    assert np.all(a >= 0)
    np.testing.assert_allclose(a.reshape(2, -1).sum(1), 1.0, atol=1e-6)
    assert (layer.projection is None) == (local_width == global_width)
    assert layer.compute_output_shape([local.shape, global_.shape]) == ((2, global_width), (2, 5, 4, 3))


def test_pc_attention_matches_the_published_formula(rng):
    layer = PCAttention()
    local = rng.normal(size=(2, 3, 3, 2, 4)).astype("float32")
    global_ = rng.normal(size=(2, 7)).astype("float32")
    attended, attention = layer([local, global_])
    w, u = np.asarray(layer.projection), np.asarray(layer.u)
    projected = local @ w
    c = ((projected + global_[:, None, None, None, :]) * u).sum(-1).reshape(2, -1)
    a = np.exp(c - c.max(1, keepdims=True))
    a /= a.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(attention).reshape(2, -1), a, rtol=1e-5, atol=1e-6)
    g_s = np.einsum("bn,bnc->bc", a, projected.reshape(2, -1, 7))
    np.testing.assert_allclose(np.asarray(attended), g_s, rtol=1e-4, atol=1e-5)


def test_pc_attention_rejects_wrong_ranks():
    with pytest.raises(ValueError, match="'input_shape' of PCAttention"):
        PCAttention().build([(2, 4, 4, 8), (2, 8)])


def test_pc_attention_config_round_trip():
    layer = PCAttention(u_initializer="zeros", name="attention2")
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, PCAttention)
    assert clone.get_config() == layer.get_config()
    assert config["registered_name"] == "bids_stroke>PCAttention"


def test_ensemble_stack_shapes_mean_and_config(rng):
    parts = [rng.normal(size=(2, 3, 4)).astype("float32") for _ in range(5)]
    layer = EnsembleStack(name="stack")
    stacked, mean = layer(parts)
    assert tuple(stacked.shape) == (2, 5, 3, 4)
    np.testing.assert_allclose(np.asarray(mean), np.mean(parts, axis=0), atol=1e-6)
    assert layer.compute_output_shape([p.shape for p in parts]) == ((2, 5, 3, 4), (2, 3, 4))
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, EnsembleStack) and clone.get_config() == layer.get_config()
