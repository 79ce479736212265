"""Registration of a simulated b = 0 image to the 2 mm T2w template, and warps.

The "b = 0" image is the template's brain-extracted T2w image seen by a scanner with a
known head pose (a rotation and a translation: native world → template world ``M``), on
a thick-slice grid (1.8 × 1.8 × 5 mm), with the through-plane blur of 5 mm slices. Three
small spheres ("blobs") off the mid-line (the template is left-right symmetric, so only
off-mid-line points reveal a flip) have known positions in both spaces.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_stroke.errors import BadInputError, MissingInputError, UsageError
from bids_stroke.spatial import (
    apply_to_native,
    apply_to_template,
    apply_transform,
    get_template_set,
    register_to_template,
    save_transforms,
    warp_mask,
)
from bids_stroke.spatial.registration import to_ants

SHAPE = (128, 128, 36)
ZOOMS = (1.8, 1.8, 5.0)
#: Native world positions (mm) of the blobs: left frontal, right parietal, left temporal.
BLOBS = np.array([[-30.0, 25.0, 20.0], [35.0, -40.0, 45.0], [-45.0, -10.0, -5.0]])
BLOB_RADIUS_MM = 7.0


def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(4)
    r[i, i] = r[j, j] = np.cos(a)
    r[i, j], r[j, i] = -np.sin(a), np.sin(a)
    return r


def _world_grid(shape, affine) -> np.ndarray:
    vox = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return vox @ affine[:3, :3].T + affine[:3, 3]


def _resample(data, data_affine, shape, out_affine, world_map=np.eye(4), order=1):
    """Sample ``data`` at ``world_map @ (out grid world points)``."""
    to_vox = np.linalg.inv(data_affine) @ world_map @ out_affine
    vox = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    coords = vox.reshape(-1, 3) @ to_vox[:3, :3].T + to_vox[:3, 3]
    return ndimage.map_coordinates(np.asarray(data, np.float32), coords.T,
                                   order=order).reshape(shape)


def _centroid_mm(img) -> np.ndarray:
    data = np.asarray(img.dataobj) > 0
    assert data.any()
    return np.asarray(img.affine[:3, :3] @ np.argwhere(data).mean(0) + img.affine[:3, 3])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spatial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEMPLATEFLOW_HOME", str(tmp / "templateflow"))
        templates = get_template_set("MNI152NLin2009cSym", cache=tmp / "cache")
    t2 = templates.t2w_brain.load()
    mask = templates.mask.load()
    pose = _rotation(2, 8.0) @ _rotation(0, -5.0)
    pose[:3, 3] = [4.0, -6.0, 3.0]
    native = np.diag([*ZOOMS, 1.0])
    native[:3, 3] = -np.array(ZOOMS) * (np.array(SHAPE) - 1) / 2 + [0.0, -18.0, 18.0]
    thick = ndimage.gaussian_filter1d(np.asarray(t2.dataobj, np.float32), 1.0, axis=2)
    b0 = nib.Nifti1Image(_resample(thick, t2.affine, SHAPE, native, pose), native)
    native_mask = nib.Nifti1Image(
        (_resample(np.asarray(mask.dataobj), mask.affine, SHAPE, native, pose) > 0.5)
        .astype(np.uint8), native)
    world = _world_grid(SHAPE, native)
    blobs = [nib.Nifti1Image((np.linalg.norm(world - c, axis=-1) <= BLOB_RADIUS_MM)
                             .astype(np.uint8), native) for c in BLOBS]
    # the b = 0 image resampled onto the template grid through the true pose
    truth = _resample(np.asarray(b0.dataobj), native, t2.shape, t2.affine,
                      np.linalg.inv(pose))
    result = register_to_template(b0, t2, transform="SyN", seed=0, threads=1)
    return {"tmp": tmp, "templates": templates, "t2": t2, "mask": mask, "pose": pose,
            "b0": b0, "native_mask": native_mask, "blobs": blobs, "truth": truth,
            "result": result}


def test_warped_b0_matches_the_template_and_the_true_pose(case):
    inside = np.asarray(case["mask"].dataobj) > 0
    warped = np.asarray(case["result"].warped.dataobj)
    assert case["result"].warped.shape == case["t2"].shape
    assert np.allclose(case["result"].warped.affine, case["t2"].affine)
    t2 = np.asarray(case["t2"].dataobj)
    r_truth = np.corrcoef(warped[inside], case["truth"][inside])[0, 1]
    r_template = np.corrcoef(warped[inside], t2[inside])[0, 1]
    # the b = 0 image put on the template grid as if no registration had been done
    unregistered = _resample(np.asarray(case["b0"].dataobj), case["b0"].affine,
                             t2.shape, case["t2"].affine)
    r_before = np.corrcoef(unregistered[inside], t2[inside])[0, 1]
    assert r_truth > 0.9, r_truth
    assert r_template > 0.85, r_template
    assert r_before < 0.6, r_before


def test_blobs_round_trip_native_template_native(case):
    result, pose = case["result"], case["pose"]
    for centre, blob in zip(BLOBS, case["blobs"]):
        in_template = warp_mask(blob, result.forward, case["t2"])
        expected = pose[:3, :3] @ centre + pose[:3, 3]
        assert np.linalg.norm(_centroid_mm(in_template) - expected) < 4.0
        # the volume (mL) is kept within a fifth of the sphere's volume
        volume = 4 / 3 * np.pi * BLOB_RADIUS_MM ** 3
        assert abs(np.count_nonzero(np.asarray(in_template.dataobj)) * 8.0 - volume) \
            < 0.2 * volume
        back = warp_mask(in_template, result.inverse, case["b0"])
        assert back.shape == case["b0"].shape
        assert np.allclose(back.affine, case["b0"].affine)
        assert np.linalg.norm(_centroid_mm(back) - centre) < 4.0


def test_template_labels_reach_the_native_grid(case):
    labels = np.zeros(case["t2"].shape, np.int16)
    world = _world_grid(case["t2"].shape, case["t2"].affine)
    targets = [case["pose"][:3, :3] @ c + case["pose"][:3, 3] for c in BLOBS]
    for label, target in enumerate(targets, start=1):
        labels[np.linalg.norm(world - target, axis=-1) <= 8.0] = label
    native = apply_to_native(nib.Nifti1Image(labels, case["t2"].affine),
                             case["result"].inverse, case["b0"],
                             interpolation="genericLabel")
    data = np.asarray(native.dataobj)
    assert data.dtype == np.int16
    assert set(np.unique(data)) == {0, 1, 2, 3}
    for label, centre in enumerate(BLOBS, start=1):
        found = nib.Nifti1Image((data == label).astype(np.uint8), native.affine)
        assert np.linalg.norm(_centroid_mm(found) - centre) < 4.0


def test_saved_transforms_reproduce_the_in_memory_result(case, tmp_path):
    result = case["result"]
    forward, inverse = save_transforms(result, tmp_path / "xfm" / "fwd.h5",
                                       tmp_path / "xfm" / "inv.h5")
    assert forward.read_bytes() == result.forward
    assert inverse.read_bytes() == result.inverse
    assert sorted(p.name for p in forward.parent.iterdir()) == ["fwd.h5", "inv.h5"]
    from_file = apply_to_template(case["b0"], forward, case["templates"].t2w_brain)
    assert np.allclose(from_file.affine, case["t2"].affine)
    a = np.asarray(from_file.dataobj)
    b = np.asarray(result.warped.dataobj)
    assert np.max(np.abs(a - b)) < 1e-3 * np.ptp(b)
    from_bytes = apply_to_template(case["b0"], result.forward, case["t2"])
    assert np.array_equal(np.asarray(from_bytes.dataobj), a)
    with pytest.raises(UsageError, match="must end in '.h5'"):
        save_transforms(result, tmp_path / "fwd.mat", tmp_path / "inv.h5")
    with pytest.raises(MissingInputError, match="does not exist"):
        apply_to_template(case["b0"], tmp_path / "missing.h5", case["t2"])


def test_same_seed_gives_the_same_registration(case):
    again = register_to_template(case["b0"], case["t2"], transform="SyN", seed=0,
                                 threads=1)
    assert np.array_equal(np.asarray(again.warped.dataobj),
                          np.asarray(case["result"].warped.dataobj))
    blob = case["blobs"][0]
    assert np.array_equal(np.asarray(warp_mask(blob, again.forward, case["t2"]).dataobj),
                          np.asarray(warp_mask(blob, case["result"].forward,
                                               case["t2"]).dataobj))
    assert "--random-seed" in again.command and again.threads == 1
    # the same transform is the same bytes (no HDF5 time stamps), and reads the same
    assert again.forward == case["result"].forward and again.inverse == case["result"].inverse
    assert again.cpu_seconds > 0 and again.seconds > 0


def test_masked_affine_registration(case):
    result = register_to_template(case["b0"], case["t2"], moving_mask=case["native_mask"],
                                  fixed_mask=case["mask"], transform="Affine")
    assert "[fixed_mask,moving_mask]" in result.command
    for centre, blob in zip(BLOBS, case["blobs"]):
        expected = case["pose"][:3, :3] @ centre + case["pose"][:3, 3]
        found = _centroid_mm(warp_mask(blob, result.forward, case["t2"]))
        assert np.linalg.norm(found - expected) < 4.0


def test_cropped_template_registration(case):
    """With a template mask, SyN runs on the template cropped around it: the same answer."""
    from bids_stroke.spatial.registration import _mask_box

    t2, mask = case["t2"], case["mask"]
    box = _mask_box(mask, t2, 8.0)
    inside = np.argwhere(np.asarray(mask.dataobj) > 0)
    for axis, part in enumerate(box):
        # the mask's extent plus 4 voxels (8 mm at 2 mm), within the grid
        assert part.start == max(inside[:, axis].min() - 4, 0)
        assert part.stop == min(inside[:, axis].max() + 5, t2.shape[axis])
    assert np.prod([p.stop - p.start for p in box]) < 0.7 * np.prod(t2.shape)
    assert _mask_box(case["native_mask"], t2, 8.0) is None  # another grid: not cropped

    cropped, whole = (register_to_template(case["b0"], t2, moving_mask=case["native_mask"],
                                           fixed_mask=mask, crop_margin_mm=margin)
                      for margin in (8.0, None))
    warped = np.asarray(cropped.warped.dataobj)
    assert cropped.warped.shape == t2.shape and np.allclose(cropped.warped.affine, t2.affine)
    outside = np.ones(t2.shape, bool)
    outside[box] = False
    assert not warped[outside].any()
    brain = np.asarray(mask.dataobj) > 0
    assert np.corrcoef(warped[brain], case["truth"][brain])[0, 1] > 0.9
    for centre, blob in zip(BLOBS, case["blobs"]):
        expected = case["pose"][:3, :3] @ centre + case["pose"][:3, 3]
        found = [_centroid_mm(warp_mask(blob, r.forward, t2)) for r in (cropped, whole)]
        assert np.linalg.norm(found[0] - expected) < 4.0
        assert np.linalg.norm(found[0] - found[1]) < 2.0
        back = warp_mask(warp_mask(blob, cropped.forward, t2), cropped.inverse, case["b0"])
        assert np.linalg.norm(_centroid_mm(back) - centre) < 4.0


def test_registration_rejects_bad_input(case):
    b0, t2 = case["b0"], case["t2"]
    with pytest.raises(UsageError, match="'transform' must be one of"):
        register_to_template(b0, t2, transform="BSpline")
    with pytest.raises(UsageError, match="'threads' must be a positive integer"):
        register_to_template(b0, t2, threads=0)
    with pytest.raises(UsageError, match="'seed'"):
        register_to_template(b0, t2, seed=-1)
    with pytest.raises(BadInputError, match="'moving_mask' must be on the grid"):
        register_to_template(b0, t2, moving_mask=case["mask"])
    with pytest.raises(BadInputError, match="constant"):
        register_to_template(nib.Nifti1Image(np.ones(SHAPE, np.float32), b0.affine), t2)
    with pytest.raises(MissingInputError, match="does not exist"):
        register_to_template(case["tmp"] / "nothing.nii.gz", t2)


# --- conversions and warps on small synthetic grids -----------------------------------

def _oblique_affine() -> np.ndarray:
    affine = _rotation(0, 20.0) @ _rotation(2, -30.0) @ np.diag([-1.5, 2.0, 3.0, 1.0])
    affine[:3, 3] = [40.0, -20.0, 10.0]
    return affine


def test_to_ants_keeps_voxel_to_world_map():
    import ants

    affine = _oblique_affine()
    data = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32)
    image = to_ants(nib.Nifti1Image(data, affine))
    assert np.array_equal(image.numpy(), data)
    for index in [(0, 0, 0), (5, 1, 4), (2, 6, 3)]:
        lps = ants.transform_index_to_physical_point(image, index)
        ras = affine[:3, :3] @ np.array(index) + affine[:3, 3]
        assert np.allclose(np.array(lps) * [-1, -1, 1], ras, atol=1e-4)
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(BadInputError, match="shear"):
        to_ants(nib.Nifti1Image(data, sheared))


@pytest.fixture
def identity_h5(tmp_path):
    import ants

    path = tmp_path / "identity.mat"
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform",
                                                    dimension=3), str(path))
    return path


def test_identity_warp_onto_a_flipped_grid_flips_the_data(identity_h5):
    rng = np.random.default_rng(1)
    data = rng.random((8, 9, 7)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = [-7.0, -8.0, -9.0]
    # the same voxels with the x and z axes reversed (LAI instead of RAS)
    flipped = affine @ np.array([[-1, 0, 0, 7], [0, 1, 0, 0], [0, 0, -1, 6], [0, 0, 0, 1]])
    out = apply_transform(nib.Nifti1Image(data, affine), identity_h5,
                          nib.Nifti1Image(np.zeros(data.shape, np.uint8), flipped))
    assert np.array_equal(out.affine, flipped)
    assert out.get_data_dtype() == np.float32
    assert np.allclose(np.asarray(out.dataobj), data[::-1, :, ::-1], atol=1e-5)


def test_apply_transform_handles_4d_labels_and_bad_arguments(identity_h5):
    affine = _oblique_affine()
    labels = np.zeros((6, 7, 5, 2), np.uint8)
    labels[2:4, 3:5, 1:3, 0] = 3
    labels[1:3, 1:3, 2:4, 1] = 7
    out = apply_transform(nib.Nifti1Image(labels, affine), identity_h5,
                          nib.Nifti1Image(np.zeros((6, 7, 5)), affine),
                          interpolation="nearestNeighbor")
    assert out.shape == labels.shape and out.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(out.dataobj), labels)
    mask = warp_mask(nib.Nifti1Image(labels[..., 0], affine), identity_h5,
                     nib.Nifti1Image(np.zeros((6, 7, 5)), affine))
    assert np.array_equal(np.asarray(mask.dataobj), (labels[..., 0] > 0).astype(np.uint8))
    with pytest.raises(UsageError, match="'interpolation' must be one of"):
        apply_transform(nib.Nifti1Image(labels, affine), identity_h5,
                        nib.Nifti1Image(np.zeros((6, 7, 5)), affine), interpolation="cubic")
    with pytest.raises(UsageError, match="'threshold' must be in"):
        warp_mask(nib.Nifti1Image(labels[..., 0], affine), identity_h5,
                  nib.Nifti1Image(np.zeros((6, 7, 5)), affine), threshold=0)
    with pytest.raises(UsageError, match="'transform' must be a path"):
        apply_transform(nib.Nifti1Image(labels, affine), 3,
                        nib.Nifti1Image(np.zeros((6, 7, 5)), affine))
