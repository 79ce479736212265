"""Augmentation: shapes, zeros kept, parameter ranges, exact rotation, noise level, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bids_stroke.train.augment import (
    GAMMA_RANGE,
    MAX_ANGLE,
    MAX_SIGMA,
    AugmentationParameters,
    apply_augmentation,
    augment_batch,
    draw_parameters,
    power_law,
    rotate_z,
)


def _head(value=1.0, shape=(32, 32, 8), radius=8.0):
    """A cylinder of brain (``value``) in a zero background."""
    x, y = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape[:2]), indexing="ij")
    inside = (x**2 + y**2) <= radius**2
    return np.repeat(np.where(inside, value, 0.0)[..., None], shape[2], axis=2).astype(np.float32)


def _batch(n=6, value=1.0):
    rng = np.random.default_rng(0)
    head = _head(value)
    return (head[None] * rng.uniform(0.5, 1.5, (n,) + head.shape))[..., None].astype(np.float32)


def test_shapes_kept_and_input_untouched():
    batch = _batch()
    copy = batch.copy()
    out = augment_batch(batch, np.random.default_rng(1))
    assert out.shape == batch.shape and out.dtype == np.float32
    assert np.array_equal(batch, copy)
    assert augment_batch(batch[..., 0], np.random.default_rng(1)).shape == batch.shape[:-1]
    with pytest.raises(ValueError, match="'batch'"):
        augment_batch(np.zeros((2, 8, 8, 8, 2)), np.random.default_rng(0))


def test_drawn_parameters_stay_in_range():
    p = draw_parameters(np.random.default_rng(2), 20000)
    assert GAMMA_RANGE[0] <= p.gamma.min() < 0.902 and 1.098 < p.gamma.max() <= GAMMA_RANGE[1]
    assert -MAX_ANGLE <= p.angle.min() < -14.9 and 14.9 < p.angle.max() <= MAX_ANGLE
    assert 0 <= p.sigma.min() < 1e-4 and 0.0099 < p.sigma.max() <= MAX_SIGMA


def test_power_law_keeps_zeros():
    volume = _head(1.0) * np.linspace(0.2, 3, 32)[:, None, None].astype(np.float32)
    out = power_law(volume, 1.1)
    assert np.array_equal(out == 0, volume == 0)
    assert np.allclose(out, volume**1.1, rtol=1e-6)


def test_zeros_outside_the_brain_stay_zero():
    batch = _batch(8)
    out = augment_batch(batch, np.random.default_rng(3))
    x, y = np.meshgrid(*(np.arange(32) - 15.5,) * 2, indexing="ij")
    far = (x**2 + y**2) > 9.5**2  # beyond the brain's reach under any rotation
    assert np.all(out[:, far] == 0)
    assert np.all(out[:, ~far].std() > 0)


def test_gamma_of_the_batch_within_range():
    batch = np.full((400, 16, 16, 8, 1), 2.0, dtype=np.float32)
    out = augment_batch(batch, np.random.default_rng(4), max_angle=0.0, max_sigma=0.0)
    gamma = np.log2(out[:, 8, 8, 4, 0])
    assert np.allclose(out, out[:, :1, :1, :1], atol=1e-6)  # one gamma per volume
    assert GAMMA_RANGE[0] - 1e-6 <= gamma.min() < 0.91 and 1.09 < gamma.max() <= GAMMA_RANGE[1] + 1e-6


def test_rotation_is_about_z_and_matches_scipy():
    rng = np.random.default_rng(5)
    volume = rng.random((32, 24, 8)).astype(np.float32)
    for angle in (-15.0, 7.5, 90.0):
        expected = ndimage.rotate(volume, angle, axes=(0, 1), reshape=False, order=1)
        assert np.allclose(rotate_z(volume, angle), expected, atol=1e-6)
    point = np.zeros((21, 21, 5), dtype=np.float32)
    point[15, 10, 2] = 1.0  # 5 voxels from the centre along the first axis
    turned = rotate_z(point, 90.0)
    assert np.argwhere(turned > 0.5).tolist() == [[10, 15, 2]]
    assert turned[:, :, [0, 1, 3, 4]].max() == 0  # nothing moves across slices


def _angle_of(volume):
    centre = (np.array(volume.shape[:2]) - 1) / 2
    com = np.array(ndimage.center_of_mass(volume.sum(axis=2))) - centre
    return np.degrees(np.arctan2(com[1], com[0]))


def test_rotation_of_a_bright_blob_by_a_known_angle():
    blob = np.zeros((41, 41, 4), dtype=np.float32)
    blob[29:32, 19:22, :] = 1.0  # centred 10 voxels along the first axis
    turned = rotate_z(blob, 15.0)
    assert _angle_of(turned) == pytest.approx(15.0, abs=0.3)
    assert np.array(ndimage.center_of_mass(turned[..., 0])) == pytest.approx(
        [20 + 10 * np.cos(np.radians(15)), 20 + 10 * np.sin(np.radians(15))], abs=0.05)


def test_rotation_of_the_batch_within_range():
    blob = np.zeros((200, 47, 47, 8, 1), dtype=np.float32)
    blob[:, 35:38, 22:25] = 1.0  # 13 voxels from the centre along the first axis
    out = augment_batch(blob, np.random.default_rng(6), gamma_range=(1, 1), max_sigma=0.0)
    angles = np.array([_angle_of(v[..., 0]) for v in out])
    assert np.all(np.abs(angles) <= MAX_ANGLE + 0.3)
    assert angles.min() < -13 and angles.max() > 13


def test_noise_level_at_most_sigma():
    batch = np.ones((200, 16, 16, 8, 1), dtype=np.float32)
    out = augment_batch(batch, np.random.default_rng(7), gamma_range=(1, 1), max_angle=0.0)
    std = (out - batch).reshape(200, -1).std(axis=1)
    assert std.max() <= MAX_SIGMA * 1.05
    assert std.min() < 0.001 and std.max() > 0.009
    sigma = np.array([0.0, 0.005, 0.01])
    out = apply_augmentation(np.ones((3, 32, 32, 16)), AugmentationParameters(
        np.ones(3), np.zeros(3), sigma), np.random.default_rng(0))
    assert (out - 1).reshape(3, -1).std(axis=1) == pytest.approx(sigma, abs=2e-4)


def test_same_seed_same_output():
    batch = _batch()
    a = augment_batch(batch, np.random.default_rng(8))
    b = augment_batch(batch, np.random.default_rng(8))
    c = augment_batch(batch, np.random.default_rng(9))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
