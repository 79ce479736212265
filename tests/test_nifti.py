"""NIfTI loading errors and grid comparisons."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from bids_factory import AFFINE, nifti

from bids_stroke.bids.nifti import check_nifti, check_same_grid, grids_match
from bids_stroke.errors import BadInputError, ExitCode, MissingInputError

ISLES = Path(__file__).parent / "data" / "isles22"


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "img.nii.gz"
    nifti(shape=(6, 5, 4), seed=3).to_filename(path)
    return path


def test_check_nifti_loads_data(good):
    img = check_nifti(good)
    assert isinstance(img, nb.Nifti1Image)
    assert img.shape == (6, 5, 4)
    expected = np.random.default_rng(3).uniform(0, 100, size=(6, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(img.get_fdata(), expected)
    np.testing.assert_allclose(img.affine, AFFINE)
    assert img.get_filename() == str(good)


def test_check_nifti_uncompressed(tmp_path):
    path = tmp_path / "img.nii"
    nifti(shape=(3, 3, 3, 2)).to_filename(path)
    assert check_nifti(path, ndim=(3, 4)).shape == (3, 3, 3, 2)


def test_check_nifti_not_gzip(tmp_path, good):
    fake = tmp_path / "plain.nii.gz"
    fake.write_bytes(gzip.decompress(good.read_bytes()))
    with pytest.raises(BadInputError, match=rf"{fake}: not gzip-compressed although named \.gz") as exc:
        check_nifti(fake)
    assert exc.value.exit_code == ExitCode.BAD_INPUT == 65


@pytest.mark.parametrize("keep", [0.3, 0.8])
def test_check_nifti_truncated(tmp_path, keep):
    """Cut in the header (0.3 of a small file) or in the voxel data (0.8 of a larger one)."""
    full = tmp_path / "full.nii.gz"
    nifti(shape=(4, 4, 4) if keep < 0.5 else (16, 16, 16)).to_filename(full)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(full.read_bytes()[: int(len(full.read_bytes()) * keep)])
    with pytest.raises(BadInputError, match=rf"{cut}: truncated or corrupt file") as exc:
        check_nifti(cut)
    assert exc.value.exit_code == 65


def test_check_nifti_truncated_uncompressed_data(tmp_path):
    path = tmp_path / "img.nii"
    nifti(shape=(8, 8, 8)).to_filename(path)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(BadInputError, match=rf"{path}: truncated or corrupt file"):
        check_nifti(path)
    assert check_nifti(path, load_data=False).shape == (8, 8, 8)


def test_check_nifti_corrupt_gzip_stream(tmp_path, good):
    data = bytearray(good.read_bytes())
    for i in range(20, len(data) - 20, 7):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match=rf"{bad}: "):
        check_nifti(bad)


@pytest.mark.parametrize("content", [b"hello, this is not an image at all" * 20, b""])
def test_check_nifti_not_nifti(tmp_path, content):
    path = tmp_path / "text.nii"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=rf"{path}: not a readable NIfTI image"):
        check_nifti(path)
    gz = tmp_path / "text.nii.gz"
    gz.write_bytes(gzip.compress(content))
    with pytest.raises(BadInputError, match=rf"{gz}: (not a readable NIfTI|truncated)"):
        check_nifti(gz)


def test_check_nifti_missing(tmp_path):
    with pytest.raises(MissingInputError, match="nope.nii.gz does not exist") as exc:
        check_nifti(tmp_path / "nope.nii.gz")
    assert exc.value.exit_code == 66


def test_check_nifti_ndim(good):
    with pytest.raises(BadInputError, match=r"must be a 4D image\. Got shape \(6, 5, 4\) instead"):
        check_nifti(good, ndim=4, load_data=False)


def test_grids_match_tolerance():
    a = nifti(shape=(4, 4, 4))
    b = nifti(shape=(4, 4, 4), affine=AFFINE + 1e-7)
    b.header.set_sform(b.affine, code=2)
    b.header.set_qform(b.affine, code=0)
    assert grids_match(a, b)
    assert not grids_match(a, nifti(shape=(4, 4, 4), affine=AFFINE + np.diag([0.01, 0, 0, 0])))
    assert grids_match(a, nifti(shape=(4, 4, 4), affine=AFFINE + 0.01), atol=0.02)
    assert not grids_match(a, nifti(shape=(4, 4, 5)))
    assert grids_match(a, nifti(shape=(4, 4, 4, 3)))


def test_check_same_grid_names_file(tmp_path):
    ref = tmp_path / "dwi.nii.gz"
    mask = tmp_path / "mask.nii.gz"
    nifti(shape=(4, 4, 4)).to_filename(ref)
    nifti(shape=(4, 4, 4), affine=AFFINE * 2).to_filename(mask)
    with pytest.raises(BadInputError, match=rf"{mask}: the lesion mask must be on the grid of {ref}"):
        check_same_grid(mask, ref)
    check_same_grid(ref, ref)


def test_isles22_mask_is_on_the_dwi_grid():
    dwi_path = ISLES / "sub-strokecase0009_ses-0001_dwi.nii.gz"
    msk_path = ISLES / "sub-strokecase0009_ses-0001_msk.nii.gz"
    if not dwi_path.is_file():
        pytest.skip(f"{ISLES} is not there")
    dwi = check_nifti(dwi_path, load_data=False)
    mask = check_nifti(msk_path)
    assert not np.array_equal(dwi.affine, mask.affine)
    assert (dwi.header["sform_code"], dwi.header["qform_code"]) != \
        (mask.header["sform_code"], mask.header["qform_code"])
    assert grids_match(dwi, mask)
    assert grids_match(dwi_path, msk_path)
    check_same_grid(msk_path, dwi_path)
    assert int((mask.get_fdata() > 0).sum()) == 523
