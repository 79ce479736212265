"""Model grid: crop box, model affine, resampling both ways (bids_stroke.preprocess.grid)."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_stroke.errors import BadInputError
from bids_stroke.preprocess.brainmask import voxel_sizes
from bids_stroke.preprocess.grid import MODEL_GRID, crop_box, model_grid_affine, resample_mask
from bids_stroke.spatial.resample import resample

NATIVE_SHAPE = (100, 90, 26)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_affine(rng, zooms, *, rotate=True):
    """A voxel-to-world affine with the given zooms, a random rotation and shift."""
    rotation = Rotation.random(random_state=rng).as_matrix() if rotate else np.eye(3)
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(zooms)
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    return affine


def ellipsoid_mask(shape, centre, radii):
    ijk = np.indices(shape).astype(float)
    r2 = sum(((ijk[a] - centre[a]) / radii[a]) ** 2 for a in range(3))
    return r2 <= 1


AFFINE_CASES = [
    ("axial 1.1x1.1x5", (1.1, 1.1, 5.0), False),
    ("oblique 1.1x1.1x5", (1.1, 1.1, 5.0), True),
    ("oblique 2x2x2", (2.0, 2.0, 2.0), True),
    ("oblique 0.9x1.3x4", (0.9, 1.3, 4.0), True),
    ("flipped 1.8x1.8x3", (-1.8, 1.8, 3.0), True),
]


@pytest.fixture(params=AFFINE_CASES, ids=[case[0] for case in AFFINE_CASES])
def native(request, rng):
    _, zooms, rotate = request.param
    affine = make_affine(rng, zooms, rotate=rotate)
    # off-centre, elongated brain; 60 x 55 x 18 voxels across
    mask = ellipsoid_mask(NATIVE_SHAPE, (47.3, 50.1, 12.4), (30.2, 27.6, 9.1))
    return affine, mask


def model_coords(points_native_vox, native_affine, model_affine):
    """Native voxel coordinates (n, 3) -> model voxel coordinates (n, 3)."""
    matrix = np.linalg.solve(model_affine, native_affine)
    return points_native_vox @ matrix[:3, :3].T + matrix[:3, 3]


def test_crop_box_contains_brain_tightly(native):
    affine, mask = native
    box = crop_box(mask, affine)
    model_affine = model_grid_affine(affine, box)
    coords = model_coords(np.argwhere(mask).astype(float), affine, model_affine)
    upper = np.array(MODEL_GRID) - 1
    assert np.all(coords >= -1e-9) and np.all(coords <= upper + 1e-9)
    # the box touches the brain along the slice axis and the wider in-plane axis
    np.testing.assert_allclose([coords[:, 2].min(), coords[:, 2].max()], [0, upper[2]], atol=1e-9)
    extent_vox = coords.max(axis=0) - coords.min(axis=0)
    assert extent_vox[:2].max() == pytest.approx(upper[0])
    assert extent_vox[:2].min() < upper[0] - 1  # the narrower axis is centred, not stretched
    centre_gap = (coords.min(axis=0) + coords.max(axis=0)) / 2 - upper / 2
    np.testing.assert_allclose(centre_gap, 0, atol=1e-9)


def test_crop_box_square_in_plane_mm(native):
    affine, mask = native
    box = crop_box(mask, affine)
    assert box["extent_mm"][0] == pytest.approx(box["extent_mm"][1])
    json.dumps(box)  # plain types, ready for a JSON sidecar
    model_affine = model_grid_affine(affine, box)
    zooms = voxel_sizes(model_affine)
    assert zooms[0] == pytest.approx(zooms[1])
    assert zooms[0] * (MODEL_GRID[0] - 1) == pytest.approx(box["extent_mm"][0])
    assert zooms[2] * (MODEL_GRID[2] - 1) == pytest.approx(box["extent_mm"][2])
    # world distance between the in-plane corners is the same along both axes
    corner = model_affine @ [0, 0, 0, 1]
    far_x = model_affine @ [MODEL_GRID[0] - 1, 0, 0, 1]
    far_y = model_affine @ [0, MODEL_GRID[1] - 1, 0, 1]
    assert np.linalg.norm(far_x - corner) == pytest.approx(np.linalg.norm(far_y - corner))


def test_crop_box_extent_matches_brain_in_mm(rng):
    affine = make_affine(rng, (1.1, 1.1, 5.0))
    mask = np.zeros((60, 60, 20), bool)
    mask[10:41, 20:31, 5:15] = True  # 30 x 10 x 9 voxel steps between outer centres
    box = crop_box(mask, affine)
    np.testing.assert_allclose(box["extent_mm"], [33.0, 33.0, 45.0])
    np.testing.assert_allclose(box["lower"], [10, 25 - 15, 5])
    np.testing.assert_allclose(box["upper"], [40, 25 + 15, 14])
    wide = crop_box(mask, affine, margin_mm=5.5)
    np.testing.assert_allclose(wide["extent_mm"], [44.0, 44.0, 56.0])
    np.testing.assert_allclose(wide["lower"], [5, 25 - 20, 3.9])


def test_model_affine_maps_box_corners_and_keeps_orientation(native):
    affine, mask = native
    box = crop_box(mask, affine)
    model_affine = model_grid_affine(affine, box)
    last = np.array(MODEL_GRID) - 1
    np.testing.assert_allclose(model_affine @ [0, 0, 0, 1], affine @ [*box["lower"], 1])
    np.testing.assert_allclose(model_affine @ [*last, 1], affine @ [*box["upper"], 1])
    directions = affine[:3, :3] / voxel_sizes(affine)
    model_directions = model_affine[:3, :3] / voxel_sizes(model_affine)
    np.testing.assert_allclose(model_directions, directions, atol=1e-12)


def test_voxel_round_trip_within_half_a_voxel(native, rng):
    """A point in the native image lands at the same place on the model grid and back."""
    affine, mask = native
    box = crop_box(mask, affine)
    brain_vox = np.argwhere(mask)
    zooms = voxel_sizes(affine)
    for _ in range(3):
        centre_vox = brain_vox[rng.integers(len(brain_vox))].astype(float)
        centre_mm = affine @ [*centre_vox, 1]
        # a Gaussian blob of 3 mm sigma around one native voxel centre
        ijk = np.indices(NATIVE_SHAPE).reshape(3, -1).T.astype(float)
        d_mm = (ijk - centre_vox) @ affine[:3, :3].T
        blob = np.exp(-(d_mm**2).sum(axis=1) / (2 * 3.0**2)).reshape(NATIVE_SHAPE)

        model_affine = model_grid_affine(affine, box)
        model = resample(blob, affine, model_affine, MODEL_GRID)
        assert model.shape == MODEL_GRID
        model_zooms = voxel_sizes(model_affine)
        peak = np.unravel_index(model.argmax(), MODEL_GRID)
        peak_native = np.linalg.solve(affine, model_affine @ [*peak, 1])[:3]
        # the model voxel holding the peak is the one nearest to the blob's centre
        expected = np.linalg.solve(model_affine, centre_mm)[:3]
        assert np.all(np.abs(np.array(peak) - expected) <= 0.5 + 1e-9)
        assert np.all(np.abs(peak_native - centre_vox) * zooms <= 0.5 * model_zooms + 1e-9)

        back = resample(model, model_affine, affine, NATIVE_SHAPE)
        assert back.shape == NATIVE_SHAPE
        w = np.where(back > 0.5 * back.max(), back, 0.0)
        centroid = (np.indices(NATIVE_SHAPE) * w).reshape(3, -1).sum(axis=1) / w.sum()
        assert np.all(np.abs(centroid - centre_vox) < 0.5)
        assert np.unravel_index(back.argmax(), NATIVE_SHAPE) == tuple(centre_vox.astype(int))


def test_resample_mask_preserves_volume(rng):
    affine = make_affine(rng, (2.0, 2.0, 4.0))
    mask = ellipsoid_mask((30, 30, 16), (14.5, 15.2, 7.4), (9.3, 7.1, 4.2))
    fine = affine @ np.diag([0.5, 0.5, 0.5, 1.0])
    fine[:3, 3] = (affine @ [-0.25, -0.25, -0.25, 1])[:3]
    for order in (0, 1):
        up = resample_mask(mask, affine, fine, (60, 60, 32), order=order)
        assert up.dtype == bool
        assert up.sum() / 8 == pytest.approx(mask.sum(), rel=0.05)
    # masks are values, not intensities: a mask of 255s resamples like one of 1s
    np.testing.assert_array_equal(
        resample_mask(mask.astype(np.uint8) * 255, affine, fine, (60, 60, 32)),
        resample_mask(mask, affine, fine, (60, 60, 32)),
    )


def test_model_grid_resampled_back_covers_the_box_only(native):
    affine, mask = native
    box = crop_box(mask, affine, margin_mm=4.0)
    model_affine = model_grid_affine(affine, box)
    back = resample(np.ones(MODEL_GRID), model_affine, affine, NATIVE_SHAPE)
    assert np.all(back[mask] > 0.999)
    every_voxel = np.indices(NATIVE_SHAPE).reshape(3, -1).T.astype(float)
    coords = model_coords(every_voxel, affine, model_affine)
    outside = np.any((coords < -1) | (coords > np.array(MODEL_GRID)), axis=1)
    assert outside.any() and np.all(back.reshape(-1)[outside] == 0)


def test_inputs_not_modified(native):
    affine, mask = native
    affine_copy, mask_copy = affine.copy(), mask.copy()
    box = crop_box(mask, affine)
    model_affine = model_grid_affine(affine, box)
    resample(mask.astype(float), affine, model_affine, MODEL_GRID)
    resample_mask(mask, affine, model_affine, MODEL_GRID)
    np.testing.assert_array_equal(affine, affine_copy)
    np.testing.assert_array_equal(mask, mask_copy)


def test_errors(rng):
    affine = make_affine(rng, (1.0, 1.0, 5.0))
    with pytest.raises(BadInputError, match="'brain_mask' must contain brain voxels"):
        crop_box(np.zeros((5, 5, 5)), affine)
    flat = np.zeros((10, 10, 5), bool)
    flat[2:8, 3:7, 2] = True
    with pytest.raises(BadInputError, match="more than one voxel along every axis"):
        crop_box(flat, affine)
    assert crop_box(flat, affine, margin_mm=2.0)["extent_mm"][2] == pytest.approx(4.0)
    singular = affine.copy()
    singular[:3, 2] = 0
    with pytest.raises(BadInputError, match="'affine' must be a finite, invertible"):
        crop_box(flat, singular)
    with pytest.raises(BadInputError, match="'box' must have 'upper' above 'lower'"):
        model_grid_affine(affine, {"lower": [0, 0, 3], "upper": [5, 5, 3]})
