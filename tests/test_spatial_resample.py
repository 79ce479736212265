"""The one resampler (bids_stroke.spatial.resample): identity, padding, dtypes, border modes."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_stroke.errors import BadInputError
from bids_stroke.spatial.resample import resample


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_affine(rng, zooms):
    """A voxel-to-world affine with the given zooms, a random rotation and shift."""
    affine = np.eye(4)
    affine[:3, :3] = Rotation.random(random_state=rng).as_matrix() @ np.diag(zooms)
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    return affine


def test_resample_identity_and_padding(rng):
    affine = make_affine(rng, (1.1, 1.1, 5.0))
    data = rng.normal(size=(8, 7, 6))
    np.testing.assert_allclose(resample(data, affine, affine, data.shape), data, atol=1e-9)
    # a grid shifted by 2 voxels along i: the last 2 planes fall outside -> cval
    shifted = affine.copy()
    shifted[:3, 3] += 2 * affine[:3, 0]
    out = resample(data, affine, shifted, data.shape, cval=-7.0)
    np.testing.assert_allclose(out[:-2], data[2:], atol=1e-9)
    np.testing.assert_allclose(out[-2:], -7.0)


def test_resample_4d_and_nearest_dtype(rng):
    affine = make_affine(rng, (2.0, 2.0, 2.0))
    data = rng.integers(0, 5, (6, 6, 6, 3)).astype(np.int16)
    out = resample(data, affine, affine, (6, 6, 6), order=0)
    assert out.shape == (6, 6, 6, 3) and out.dtype == np.int16
    np.testing.assert_array_equal(out, data)
    assert resample(data, affine, affine, (6, 6, 6)).dtype == np.float64


@pytest.mark.parametrize(("mode", "expected"), [
    # half a voxel beyond the last voxel centre (source values 1, 2, 3, 4)
    ("grid-constant", 2.0),   # halfway between the edge value 4 and the outside value 0
    ("constant", 0.0),        # beyond the outermost centre: outside
    ("nearest", 4.0),         # the edge repeated
])
def test_border_modes(mode, expected):
    data = np.broadcast_to(np.arange(1.0, 5.0)[:, None, None], (4, 3, 3)).copy()
    shifted = np.eye(4)
    shifted[0, 3] = 0.5  # destination voxel i sits at source i + 0.5
    out = resample(data, np.eye(4), shifted, data.shape, mode=mode)
    np.testing.assert_allclose(out[:3, 1, 1], [1.5, 2.5, 3.5])  # inside: same in every mode
    assert out[3, 1, 1] == pytest.approx(expected)


def test_inputs_not_modified_and_errors(rng):
    affine = make_affine(rng, (1.0, 1.0, 5.0))
    data = rng.normal(size=(4, 4, 4))
    copy, affine_copy = data.copy(), affine.copy()
    resample(data, affine, affine @ np.diag([0.5, 0.5, 0.5, 1.0]), (8, 8, 8))
    np.testing.assert_array_equal(data, copy)
    np.testing.assert_array_equal(affine, affine_copy)
    with pytest.raises(BadInputError, match="'src_affine' must be a finite, invertible"):
        resample(np.ones((3, 3, 3)), np.full((4, 4), np.nan), affine, (3, 3, 3))
    with pytest.raises(BadInputError, match="'data' must be an image of 3 or more"):
        resample(np.ones((3, 3)), affine, affine, (3, 3, 3))
    with pytest.raises(ValueError, match="'mode' must be one of"):
        resample(data, affine, affine, (4, 4, 4), mode="edge")
