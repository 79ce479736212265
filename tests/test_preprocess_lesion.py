"""Lesion volume and side (bids_stroke.preprocess.lesion)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from bids_stroke.errors import BadInputError
from bids_stroke.preprocess import lesion
from bids_stroke.preprocess.lesion import (
    lesion_side,
    lesion_side_from_points,
    lesion_volume_ml,
    voxel_centres_mm,
)


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def test_volume_of_a_box_with_anisotropic_voxels(rng):
    mask = np.zeros((40, 40, 20), np.uint8)
    mask[10:20, 5:25, 3:7] = 1  # 10 * 20 * 4 = 800 voxels
    affine = np.eye(4)
    affine[:3, :3] = Rotation.random(random_state=rng).as_matrix() @ np.diag([1.1, 1.1, 5.0])
    affine[:3, 3] = [-80, 12, 40]
    # 800 voxels * 6.05 mm³ = 4840 mm³ = 4.84 mL, whatever the rotation
    assert lesion_volume_ml(mask, affine) == pytest.approx(4.84)
    flipped = affine @ np.diag([-1, 1, 1, 1])
    assert lesion_volume_ml(mask, flipped) == pytest.approx(4.84)
    assert lesion_volume_ml(np.zeros((4, 4, 4)), affine) == 0.0


def test_voxel_centres(rng):
    mask = np.zeros((5, 5, 5), bool)
    mask[1, 2, 3] = mask[4, 0, 0] = True
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = [-10, 0, 5]
    np.testing.assert_allclose(voxel_centres_mm(mask, affine), [[-8, 6, 17], [-2, 0, 5]])


def template_mask(x_ranges):
    """A 2 mm MNI-like grid (x from -90 mm) with boxes at the given x ranges (mm)."""
    affine = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    mask = np.zeros((91, 109, 91), bool)
    for x_low, x_high in x_ranges:
        i_low, i_high = int((x_low + 90) / 2), int((x_high + 90) / 2)
        mask[i_low:i_high, 50:60, 40:45] = True
    return mask, affine


@pytest.mark.parametrize(
    ("x_ranges", "side"),
    [
        ([(-60, -20)], "left"),
        ([(20, 60)], "right"),
        ([(-40, -20), (20, 40)], "bilateral"),
        ([(-60, -10), (10, 26)], "bilateral"),  # right holds 8/33 voxels >= 20 %
        ([(-60, -10), (10, 20)], "left"),  # right holds 5/30 voxels < 20 %
        ([(-10, 50)], "right"),  # crosses the midline: 5.5/30 voxels on the left
        ([], "none"),
    ],
)
def test_side_of_template_masks(x_ranges, side):
    mask, affine = template_mask(x_ranges)
    assert lesion_side(mask, affine) == side


def test_side_from_points_threshold():
    points = np.zeros((10, 3))
    points[:, 0] = [-5] * 8 + [5] * 2  # exactly 20 % on the right
    assert lesion_side_from_points(points) == "bilateral"
    assert lesion_side_from_points(points, min_fraction=0.25) == "left"
    points[:, 0] = [-5] * 9 + [5]
    assert lesion_side_from_points(points) == "left"
    points[:, 0] = [5] * 9 + [-5]
    assert lesion_side_from_points(points) == "right"
    # all points left of a shifted midline
    assert lesion_side_from_points(points, midline_mm=10.0) == "left"
    points[:, 0] = 0.0  # on the midline: half to each side
    assert lesion_side_from_points(points) == "bilateral"
    assert lesion_side_from_points(np.empty((0, 3))) == "none"


def test_side_errors():
    match = r"'points_mm' must be finite coordinates of shape \(n, 3\)"
    with pytest.raises(BadInputError, match=match):
        lesion_side_from_points(np.zeros((4, 2)))
    with pytest.raises(BadInputError, match="'points_mm' must be finite"):
        lesion_side_from_points([[np.nan, 0, 0]])
    with pytest.raises(BadInputError, match="'affine' must be a finite 4 × 4 matrix"):
        lesion_volume_ml(np.ones((2, 2, 2)), np.eye(3))


# --- given masks made binary ------------------------------------------------------------
def _blob(shape=(10, 10, 10)):
    data = np.zeros(shape, np.float32)
    data[3:6, 3:6, 3:6] = 1
    return data


def test_binary_masks_are_taken_as_they_are():
    for data in (_blob(), _blob().astype(np.uint8), _blob() > 0, _blob()[..., None]):
        mask, info = lesion.binarize_lesion(data)
        assert mask.dtype == bool and mask.shape == (10, 10, 10) and mask.sum() == 27
        assert info == {"LesionMaskType": "binary"}


def test_probability_maps_are_thresholded_at_one_half():
    """A probability map was counted as lesion wherever non-zero (1241 mL instead of 204)."""
    data = _blob() * 0.9
    data[data == 0] = 0.1  # low probability everywhere else
    data[3, 3, 3] = 0.5  # on the threshold: lesion
    data[3, 3, 4] = 0.49
    mask, info = lesion.binarize_lesion(data)
    assert mask.sum() == 26 and mask[3, 3, 3] and not mask[3, 3, 4]
    assert info == {"LesionMaskType": "probability", "LesionThreshold": lesion.PROBABILITY_THRESHOLD}
    assert lesion.PROBABILITY_THRESHOLD == 0.5


def test_label_maps_need_the_lesion_label():
    """A label map was counted as lesion wherever non-zero (2586 mL)."""
    data = _blob().astype(np.int16)
    data[0:2] = 2  # another structure
    with pytest.raises(BadInputError, match="label map .*--lesion-label"):
        lesion.binarize_lesion(data)
    mask, info = lesion.binarize_lesion(data, label=1)
    assert mask.sum() == 27 and info == {"LesionMaskType": "labels", "LesionLabel": 1}
    assert lesion.binarize_lesion(data, label=2)[0].sum() == 200
    with pytest.raises(BadInputError, match="no voxel has the lesion label 7"):
        lesion.binarize_lesion(data, label=7)
    # binary masks ignore the label
    assert lesion.binarize_lesion(_blob(), label=3)[0].sum() == 27


@pytest.mark.parametrize("change, reason", [
    (lambda d: np.where(d > 0, np.nan, d), "finite"),
    (lambda d: -d, "negative"),
    (lambda d: d * 3.5, "neither a binary"),
    (lambda d: np.ones_like(d), "whole field of view"),
    (lambda d: np.stack([d, d], axis=-1), "3D"),
    (lambda d: d[..., 0], "3D"),
])
def test_unusable_lesion_masks_are_refused(change, reason):
    with pytest.raises(BadInputError, match=reason):
        lesion.binarize_lesion(change(_blob()))
