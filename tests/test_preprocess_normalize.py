"""Lesion-aware intensity normalisation (bids_stroke.preprocess.normalize)."""

import numpy as np
import pytest

from bids_stroke.errors import BadInputError
from bids_stroke.preprocess.normalize import normalize_intensity

SHAPE = (20, 18, 8)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def case(rng):
    image = rng.uniform(200, 400, SHAPE)
    brain = np.zeros(SHAPE, bool)
    brain[3:17, 2:16, 1:7] = True
    lesion = np.zeros(SHAPE, bool)
    lesion[5:9, 4:8, 2:5] = True
    image[lesion] *= 3.0  # a bright DWI lesion would bias a whole-brain reference
    image[~brain] = 5000.0  # scalp/background must not count either
    return image, brain, lesion


def test_mean_of_non_lesioned_brain_is_one(case):
    image, brain, lesion = case
    normalized, reference = normalize_intensity(image, brain, lesion)
    healthy = brain & ~lesion
    assert normalized[healthy].mean() == pytest.approx(1.0, abs=1e-6)
    assert reference == pytest.approx(image[healthy].mean())
    assert reference < image[brain].mean()  # the lesion was left out
    np.testing.assert_allclose(normalized[lesion], image[lesion] / reference)
    assert np.all(normalized[~brain] == 0)
    assert normalized.dtype == np.float64


def test_empty_lesion_uses_the_whole_brain(case):
    image, brain, _ = case
    for lesion in (None, np.zeros(SHAPE, bool), np.zeros(SHAPE, np.uint8)):
        normalized, reference = normalize_intensity(image, brain, lesion)
        assert reference == pytest.approx(image[brain].mean())
        assert normalized[brain].mean() == pytest.approx(1.0, abs=1e-6)


def test_numeric_masks_and_inputs_unchanged(case):
    image, brain, lesion = case
    copies = [a.copy() for a in case]
    expected = normalize_intensity(image, brain, lesion)
    got = normalize_intensity(image, brain.astype(np.float32), lesion.astype(np.int16) * 2)
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1] == expected[1]
    for array, copy in zip(case, copies):
        np.testing.assert_array_equal(array, copy)


def test_lesion_covering_the_brain(case):
    image, brain, _ = case
    match = r"'brain_mask' must contain voxels outside the lesion\. Got \d+ brain voxels"
    with pytest.raises(BadInputError, match=match):
        normalize_intensity(image, brain, brain | np.roll(brain, 1, axis=0))


def test_empty_brain_mask(case):
    image, _, lesion = case
    with pytest.raises(BadInputError, match="Got 0 brain voxels"):
        normalize_intensity(image, np.zeros(SHAPE, bool), lesion)


@pytest.mark.parametrize("value", [0.0, -3.0, np.nan])
def test_non_positive_reference(case, value):
    image, brain, lesion = case
    image = image.copy()
    image[brain & ~lesion] = value
    match = "'image' must have a positive mean over the non-lesioned brain"
    with pytest.raises(BadInputError, match=match):
        normalize_intensity(image, brain, lesion)


def test_shape_mismatch(case):
    image, brain, lesion = case
    match = r"'lesion_mask' must have the shape of the image \(20, 18, 8\)\. Got \(20, 18, 7\)"
    with pytest.raises(BadInputError, match=match):
        normalize_intensity(image, brain, lesion[..., :7])
    with pytest.raises(BadInputError, match="'brain_mask' must have the shape"):
        normalize_intensity(image, brain[1:], lesion)
    with pytest.raises(BadInputError, match="'image' must be a 3D image"):
        normalize_intensity(image[..., None], brain, lesion)
