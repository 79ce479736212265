"""Attention maps: upsampling to the model grid and back-projection to the native grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.model.attention import attention_image, to_native, upsample_attention
from bids_stroke.model.spec import MODEL_GRID


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(24, 24, 6), (12, 12, 3), (6, 6, 3)])
@pytest.mark.parametrize("mode", ["linear", "block"])
def test_upsampling_keeps_the_mass(rng, shape, mode):
    a = rng.random(shape)
    a /= a.sum()
    up = upsample_attention(a, mode=mode)
    assert up.shape == MODEL_GRID
    assert np.all(up >= 0)
    assert up.sum() == pytest.approx(1.0, abs=1e-9)


def test_block_upsampling_puts_each_voxel_on_its_block():
    a = np.zeros((6, 6, 3))
    a[1, 2, 0] = 1.0
    up = upsample_attention(a, mode="block")
    block = up[16:32, 32:48, 0:8]
    assert block.sum() == pytest.approx(1.0)
    assert np.allclose(block, 1.0 / block.size)


def test_upsampling_refuses_bad_shapes_and_modes():
    with pytest.raises(ValueError, match="'attention' must be a 3D map"):
        upsample_attention(np.ones((5, 6, 3)))
    with pytest.raises(ValueError, match="'mode' must be"):
        upsample_attention(np.ones((6, 6, 3)), mode="cubic")


def _grids():
    native_affine = np.array([[-1.1, 0, 0, 90], [0, 1.1, 0, -110], [0, 0, 4.0, -60], [0, 0, 0, 1]])
    native_shape = (160, 180, 30)
    # the model grid covers native voxels 20..140 x 30..150 x 3..27 (crop box corners)
    scale = np.diag([120 / 95, 120 / 95, 24 / 23, 1.0])
    scale[:3, 3] = [20, 30, 3]
    return native_affine, native_shape, native_affine @ scale


def test_back_projection_has_the_native_grid_and_follows_world_coordinates():
    native_affine, native_shape, model_affine = _grids()
    model_map = np.zeros(MODEL_GRID)
    model_map[40:50, 60:70, 10:14] = 1.0
    native = to_native(model_map, model_affine, native_affine, native_shape)
    assert native.shape == native_shape
    assert native.dtype == np.float32 and np.all(native >= 0)
    peak = np.array(np.unravel_index(np.argmax(native), native_shape))
    centre_model = np.array([44.5, 64.5, 11.5, 1.0])
    centre_world = model_affine @ centre_model
    centre_native = np.linalg.solve(native_affine, centre_world)[:3]
    assert np.all(np.abs(peak - centre_native) <= np.array([8, 8, 2]))
    assert native[:15].sum() == 0  # outside the crop box


def test_attention_image_carries_the_native_affine():
    native_affine, native_shape, model_affine = _grids()
    native_img = nib.Nifti1Image(np.zeros(native_shape + (2,), np.float32), native_affine)
    img = attention_image(np.full(MODEL_GRID, 1.0 / np.prod(MODEL_GRID)), model_affine, native_img)
    assert img.shape == native_shape
    np.testing.assert_allclose(img.affine, native_affine)
    np.testing.assert_allclose(img.get_qform(), native_affine, atol=1e-5)


def test_back_projection_refuses_singular_affines():
    _, native_shape, model_affine = _grids()
    with pytest.raises(ValueError, match="'native_affine' must be a finite, invertible"):
        to_native(np.zeros(MODEL_GRID), model_affine, np.zeros((4, 4)), native_shape)
