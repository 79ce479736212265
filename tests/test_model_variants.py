"""The eight variants: names and hyper-parameters, shapes, attention maps, gradients, and
learning a separable synthetic task."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from bids_stroke.config import VARIANT_NAMES
from bids_stroke.model.attention import upsample_attention
from bids_stroke.model.layers import PCAttention
from bids_stroke.model.variants import (
    INPUT_SHAPE,
    VARIANTS,
    build_variant,
    check_input_shape,
    model_flops,
)

SMALL = (32, 32, 8, 1)


def test_variants_are_the_configured_factorial():
    assert tuple(VARIANTS) == VARIANT_NAMES
    combos = {(s.initial_filters, s.growth, s.bottleneck) for s in VARIANTS.values()}
    assert combos == {(f, g, b) for f in (8, 16) for g in (1.5, 2.0) for b in (False, True)}
    for spec in VARIANTS.values():
        assert spec.widths[0] == spec.initial_filters
        assert all(w % 4 == 0 for w in spec.widths)
        assert spec.bottleneck_width(1) is None


@pytest.mark.parametrize("name", ["f8-g1.5", "f16-g2-bn"])
def test_output_shapes_and_attention_sum_to_one(name):
    model = build_variant(name, SMALL, seed=0)
    x = np.random.default_rng(0).normal(size=(3,) + SMALL).astype("float32")
    out = model.predict_on_batch(x)
    assert out["probability"].shape == (3, 1)
    assert np.all((out["probability"] > 0) & (out["probability"] < 1))
    expected = {"a1": (3, 8, 8, 2), "a2": (3, 4, 4, 1), "a3": (3, 2, 2, 1)}
    for scale, shape in expected.items():
        a = np.asarray(out[scale])
        assert a.shape == shape
        assert np.all(a >= 0)
        np.testing.assert_allclose(a.reshape(3, -1).sum(axis=1), 1.0, atol=1e-5)


def test_full_size_attention_grids():
    model = build_variant("f8-g1.5-bn", INPUT_SHAPE, seed=0)
    shapes = {k: tuple(v.shape) for k, v in model.output.items()}
    assert shapes == {"probability": (None, 1), "a1": (None, 24, 24, 6),
                      "a2": (None, 12, 12, 3), "a3": (None, 6, 6, 3)}


def test_seed_determines_weights():
    a, b, c = (build_variant("f8-g2", SMALL, seed=s) for s in (1, 1, 2))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_documented_table_matches_the_models():
    from bids_stroke.model import variants

    documented = {}
    for line in variants.__doc__.splitlines():
        fields = line.split()
        if fields and fields[0] in VARIANT_NAMES:
            documented[fields[0]] = (int(fields[-2].replace(",", "")), float(fields[-1]))
    assert set(documented) == set(VARIANT_NAMES)
    for row in variants.variant_table():
        assert documented[row["name"]] == (row["parameters"], round(row["flops"] / 1e9, 3))


def test_bad_name_and_shape_are_refused():
    with pytest.raises(ValueError, match="'name' must be one of"):
        build_variant("f32-g3", SMALL)
    with pytest.raises(ValueError, match="'input_shape' must be"):
        check_input_shape((96, 96, 20, 1))


def test_flops_count_the_convolutions():
    model = build_variant("f8-g1.5", INPUT_SHAPE)
    first = 2 * math.prod(INPUT_SHAPE[:3]) * 27 * 1 * 8
    assert model_flops(model) > first
    bn = build_variant("f8-g1.5-bn", INPUT_SHAPE)
    assert model_flops(bn) < model_flops(model)
    assert bn.count_params() < model.count_params()


@pytest.mark.parametrize("name", ["f8-g1.5", "f8-g2-bn"])
def test_gradients_reach_every_trainable_weight(name):
    import tensorflow as tf  # the tests run on the TensorFlow backend

    model = build_variant(name, SMALL, seed=3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4,) + SMALL).astype("float32")
    y = np.array([[0.0], [1.0], [0.0], [1.0]], dtype="float32")
    with tf.GradientTape() as tape:
        p = model(x, training=True)["probability"]
        loss = keras.ops.mean(keras.losses.binary_crossentropy(y, p))
    grads = tape.gradient(loss, model.trainable_variables)
    names = [v.path for v in model.trainable_variables]
    assert any(n.endswith("/u") for n in names) and any(n.endswith("/projection") for n in names)
    for var, grad in zip(model.trainable_variables, grads):
        assert grad is not None, var.path
        assert float(np.abs(np.asarray(grad)).max()) > 0, var.path


def test_attention_layers_project_only_where_widths_differ():
    model = build_variant("f8-g1.5", SMALL)
    layers = [model.get_layer(f"attention{s}") for s in (1, 2, 3)]
    assert [layer.projection is not None for layer in layers] == [True, True, False]
    assert all(isinstance(layer, PCAttention) for layer in layers)


def _blob_volumes(n, rng, shape=(32, 32, 16)):
    """Noise volumes; label 1 volumes carry a bright blob in the left half (x < 16)."""
    x = rng.normal(0.0, 0.1, (n,) + shape).astype("float32")
    y = (np.arange(n) % 2).astype("float32")
    rng.shuffle(y)
    masks = np.zeros((n,) + shape, bool)
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    for i in np.flatnonzero(y):
        centre = np.array([rng.uniform(5, 11), rng.uniform(6, 26), rng.uniform(4, 12)])
        radius = rng.uniform(3.0, 4.0)
        mask = (((grid - centre) * [1, 1, 2]) ** 2).sum(-1) <= radius**2
        x[i][mask] += 1.0
        masks[i] = mask
    return x[..., None], y, masks


def test_small_variant_learns_blob_on_the_left_and_attends_to_it():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    x_train, y_train, _ = _blob_volumes(160, rng)
    x_test, y_test, masks = _blob_volumes(60, rng)
    keras.utils.set_random_seed(0)
    model = build_variant("f8-g1.5", x_train.shape[1:], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"probability": "binary_crossentropy"})
    model.fit(x_train, {"probability": y_train}, batch_size=16, epochs=3, verbose=0)
    out = model.predict(x_test, verbose=0)
    assert roc_auc_score(y_test, out["probability"][:, 0]) >= 0.9

    positives = np.flatnonzero(y_test)
    inside = [
        (upsample_attention(out["a2"][i], masks.shape[1:], mode="block") * masks[i]).sum()
        for i in positives
    ]
    share = masks[positives].mean()
    assert np.mean(inside) > share


def test_mean_size_branch_adds_the_global_feature_and_leaves_attention_alone():
    """``size_branch="mean"``: the output unit also sees the whole-volume mean of the deepest
    features (one more input per deepest channel); the trunk and attention are the paper's."""
    paper = build_variant("f8-g1.5", SMALL, seed=3)
    sized = build_variant("f8-g1.5", SMALL, seed=3, size_branch="mean")
    width = VARIANTS["f8-g1.5"].widths[-1]
    assert sized.get_layer("probability").kernel.shape[0] == paper.get_layer("probability").kernel.shape[0] + width
    x = np.random.default_rng(1).normal(size=(2,) + SMALL).astype("float32")
    out_paper, out_sized = paper.predict_on_batch(x), sized.predict_on_batch(x)
    for scale in ("a1", "a2", "a3"):
        np.testing.assert_array_equal(out_paper[scale], out_sized[scale])
    # the branch is the deepest features' mean over the whole volume
    deepest = [layer for layer in sized.layers if layer.name.startswith("level5_conv")][-1]
    probe = keras.Model(sized.input, [sized.get_layer("attended_features").output, deepest.output])
    features, level5 = probe.predict_on_batch(x)
    np.testing.assert_allclose(features[:, -width:], np.asarray(level5).mean(axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)
    # the branch's inputs are the global feature itself: zero its weights and the heads agree
    kernel, bias = paper.get_layer("probability").get_weights()
    sized.get_layer("probability").set_weights([np.concatenate([kernel, np.zeros((width, 1), "float32")]), bias])
    np.testing.assert_allclose(sized.predict_on_batch(x)["probability"], out_paper["probability"], atol=1e-6)
    with pytest.raises(ValueError, match="size_branch"):
        build_variant("f8-g1.5", SMALL, size_branch="sum")
