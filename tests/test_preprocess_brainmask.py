"""Automatic brain mask (bids_stroke.preprocess.brainmask)."""

import numpy as np
import pytest

from bids_stroke.errors import BadInputError
from bids_stroke.preprocess.brainmask import as_mask, brain_mask, voxel_sizes

THICK = (1.1, 1.1, 5.0)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def synthetic_head(rng, shape, voxel_size, brain_radii_mm, *, hole_column=False, blob=False):
    """Bright ellipsoid brain inside a thin dim scalp, plus Gaussian noise.

    Returns the image and the true brain (the hole, if any, belongs to the brain).
    """
    ijk = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2
    x, y, z = (((ijk[a] - centre[a]) * voxel_size[a]) for a in range(3))
    rx, ry, rz = brain_radii_mm
    brain = (x / rx) ** 2 + (y / ry) ** 2 + (z / rz) ** 2 <= 1
    head = (x / (rx + 5)) ** 2 + (y / (ry + 5)) ** 2 + (z / (rz + 7)) ** 2
    scalp = (head <= 1) & (head > 0.9)
    image = np.zeros(shape)
    image[brain] = 1.0
    image[scalp] = 0.3
    if hole_column:  # dark CSF-like column through every slice
        image[brain & (((x - 5) / 12) ** 2 + (y / 10) ** 2 <= 1)] = 0.1
    if blob:  # bright tissue outside the head (e.g. orbital fat), not connected
        image[((x - rx - 15) / 8) ** 2 + (y / 8) ** 2 + (z / 15) ** 2 <= 1] = 1.0
    image += rng.normal(0, 0.05, shape)
    return image, brain


def test_head_cut_by_the_field_of_view(rng):
    """The brain fills every slice; a dark column crosses them all (open in 3D)."""
    image, brain = synthetic_head(
        rng, (100, 80, 24), THICK, (35, 28, 100), hole_column=True, blob=True
    )
    mask = brain_mask(image, THICK)
    assert mask.dtype == bool and mask.shape == image.shape
    assert dice(mask, brain) > 0.9
    hole = brain & (image < 0.5)
    assert hole.sum() > 500
    assert mask[hole].all()  # holes filled slice by slice
    blob = image[90:] > 0.5
    assert blob.sum() > 200 and not mask[90:].any()  # only the largest component is kept


def test_head_inside_the_field_of_view_thick_slices(rng):
    """A thick-slice brain ending inside the image keeps its top and bottom slices."""
    image, brain = synthetic_head(rng, (80, 80, 30), THICK, (35, 28, 55))
    mask = brain_mask(image, THICK)
    assert dice(mask, brain) > 0.95
    brain_slices = np.flatnonzero(brain.any(axis=(0, 1)))
    np.testing.assert_array_equal(np.flatnonzero(mask.any(axis=(0, 1))), brain_slices)


def test_dilation_follows_voxel_size(rng):
    image, _ = synthetic_head(rng, (56, 48, 30), THICK, (24, 18, 55))
    plain = brain_mask(image, THICK, median_radius=2, dilate=0)
    dilated = brain_mask(image, THICK, median_radius=2, dilate=2)
    assert np.all(dilated >= plain) and dilated.sum() > plain.sum()
    # thick slices are not dilated into the next slice
    np.testing.assert_array_equal(dilated.any(axis=(0, 1)), plain.any(axis=(0, 1)))

    iso = (2.0, 2.0, 2.0)
    image, brain = synthetic_head(rng, (40, 36, 36), iso, (28, 22, 26))
    plain = brain_mask(image, iso, median_radius=2, dilate=0)
    dilated = brain_mask(image, iso, median_radius=2, dilate=1)
    assert dice(plain, brain) > 0.9
    assert dilated.any(axis=(0, 1)).sum() == plain.any(axis=(0, 1)).sum() + 2


def test_input_unchanged(rng):
    image, _ = synthetic_head(rng, (40, 40, 12), THICK, (18, 15, 30))
    copy = image.copy()
    brain_mask(image, THICK)
    np.testing.assert_array_equal(image, copy)


def test_errors():
    with pytest.raises(BadInputError, match=r"'image' must vary.*every voxel is 0"):
        brain_mask(np.zeros((20, 20, 10)), THICK)
    with pytest.raises(BadInputError, match=r"'image' must be a 3D image.*\(4, 4, 4, 2\)"):
        brain_mask(np.ones((4, 4, 4, 2)), THICK)
    image = np.ones((4, 4, 4))
    image[0, 0, 0] = np.nan
    with pytest.raises(BadInputError, match="'image' must hold finite values"):
        brain_mask(image, THICK)
    with pytest.raises(BadInputError, match="'voxel_size' must be three positive sizes"):
        brain_mask(np.arange(64.0).reshape(4, 4, 4), (1.0, 0.0, 5.0))


def test_as_mask_and_voxel_sizes():
    np.testing.assert_array_equal(as_mask(np.array([0, 2, -1, 0.5])), [False, True, True, True])
    with pytest.raises(BadInputError, match=r"'lesion' must have the shape of the image \(3,\)"):
        as_mask(np.zeros(4), name="lesion", shape=(3,))
    with pytest.raises(BadInputError, match="'mask' must hold finite values"):
        as_mask(np.array([np.nan, 1.0]))
    affine = np.array([[0, -2.0, 0, 5], [1.5, 0, 0, 1], [0, 0, 4, 2], [0, 0, 0, 1]])
    np.testing.assert_allclose(voxel_sizes(affine), [1.5, 2.0, 4.0])


def test_full_grid_is_dipy_median_otsu(rng):
    """grid_mm=0 filters on the image's own grid: dipy's median_otsu, voxel for voxel."""
    from dipy.segment.mask import median_otsu

    from bids_stroke.preprocess.brainmask import _fill_holes, _largest_component

    image, _ = synthetic_head(rng, (60, 50, 20), THICK, (26, 20, 40))
    ours = brain_mask(image, THICK, median_radius=2, numpass=2, dilate=0, grid_mm=0)
    _, theirs = median_otsu(image, median_radius=np.array([2, 2, 0]), numpass=2)
    theirs = _fill_holes(_largest_component(theirs))  # the same clean-up after it
    np.testing.assert_array_equal(ours, theirs)


def test_bin_and_unbin():
    from bids_stroke.preprocess.brainmask import _bin, _bin_factors, _unbin

    np.testing.assert_array_equal(_bin_factors((1.2, 1.5, 5.0), 4.0), [3, 3, 1])
    np.testing.assert_array_equal(_bin_factors((1.8, 1.8, 4.0), 0.0), [1, 1, 1])
    ramp = np.add.outer(np.add.outer(np.arange(13.0), 2 * np.arange(11.0)), np.zeros(4))
    coarse = _bin(ramp, (3, 2, 1))
    assert coarse.shape == (5, 6, 4)
    # a block's mean is the ramp at the block's centre (full blocks)
    assert coarse[1, 1, 0] == pytest.approx(ramp[3:6, 2:4, 0].mean())
    back = _unbin(coarse, (3, 2, 1), ramp.shape)
    # linear interpolation gives a linear ramp back exactly away from the (padded) edges
    np.testing.assert_allclose(back[1:11, 1:9], ramp[1:11, 1:9], atol=1e-9)


def test_coarse_grid_matches_the_full_grid(rng):
    """Filtering on a 4 mm grid finds the same brain as on the 1.1 mm grid."""
    image, brain = synthetic_head(rng, (100, 80, 24), THICK, (35, 28, 45))
    full = brain_mask(image, THICK, grid_mm=0)
    coarse = brain_mask(image, THICK)
    assert dice(coarse, brain) > 0.95
    assert dice(coarse, brain) >= dice(full, brain) - 0.005
    assert dice(coarse, full) > 0.95


def test_simulated_brains(simulated_cohort):
    """Against the simulator's brain on the native grid of each subject (every site kind)."""
    import csv

    from bids_stroke.simulate.truth import load_truth, native_brain, native_images

    with open(simulated_cohort / "participants.tsv") as f:
        subjects = [r["participant_id"][4:] for r in csv.DictReader(f, delimiter="\t")]
    inter = total = 0
    for sub in subjects:
        images = native_images(simulated_cohort, sub)
        truth = native_brain(load_truth(simulated_cohort, sub))
        mask = brain_mask(images["reference"], voxel_sizes(images["affine"]))
        assert dice(mask, truth) > 0.85, sub
        inter += np.count_nonzero(mask & truth)
        total += np.count_nonzero(mask) + np.count_nonzero(truth)
    assert 2 * inter / total > 0.88
