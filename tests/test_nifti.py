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
    for load_data in (True, False):  # the header alone shows it: 2048 bytes claimed
        with pytest.raises(BadInputError, match=rf"{path}: truncated or corrupt file: the header "
                                                r"claims 2048 bytes .* holds 600 bytes"):
            check_nifti(path, load_data=load_data)


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
    reason = "not a readable NIfTI image" if content else r"the file is empty \(0 bytes\)"
    with pytest.raises(BadInputError, match=rf"{path}: {reason}"):
        check_nifti(path)
    if not content:  # not "rename it to .nii": an empty file is no image whatever its name
        empty = tmp_path / "empty.nii.gz"
        empty.write_bytes(b"")
        with pytest.raises(BadInputError, match=r"empty \(0 bytes\)"):
            check_nifti(empty)
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


# ------------------------------------------------------------ header checks
def _with_header(path: Path, header_class=nb.Nifti1Header, **fields) -> Path:
    """Rewrite the stored header of ``path`` with ``fields`` (raw, nibabel fixes nothing)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fobj:
        raw = fobj.read()
    header = header_class.from_fileobj(__import__("io").BytesIO(raw), check=False)
    for key, value in fields.items():
        header[key] = value
    with opener(path, "wb") as fobj:
        fobj.write(header.binaryblock + raw[header.sizeof_hdr:])
    return path


@pytest.fixture(params=[".nii.gz", ".nii"])
def suffix(request):
    return request.param


def _image(tmp_path, suffix, shape=(6, 5, 4)) -> Path:
    path = tmp_path / f"img{suffix}"
    nifti(shape=shape, seed=3).to_filename(path)
    return path


@pytest.mark.parametrize("dim, reason", [
    ([2, 6, 5, 1, 1, 1, 1, 1], r"must be a 3D or 4D image\. Got shape \(6, 5\) instead"),
    ([5, 6, 5, 4, 1, 1, 1, 1], r"must be a 3D or 4D image\. Got shape \(6, 5, 4, 1, 1\) instead"),
    ([3, 6, 0, 4, 1, 1, 1, 1], r"every dimension must hold at least one voxel\. Got shape \(6, 0, 4\)"),
    ([3, 6, -5, 4, 1, 1, 1, 1], r"every dimension must hold at least one voxel"),
])
def test_check_nifti_refuses_bad_dimensions(tmp_path, suffix, dim, reason):
    path = _with_header(_image(tmp_path, suffix), dim=dim)
    for load_data in (True, False):
        with pytest.raises(BadInputError, match=rf"^{path}: {reason}") as exc:
            check_nifti(path, load_data=load_data)
        assert exc.value.exit_code == 65


@pytest.mark.parametrize("pixdim", [[1, 0, 2, 2], [1, 2, float("nan"), 2], [1, 2, 2, -2],
                                    [1, 2, 2, float("inf")]])
def test_check_nifti_refuses_bad_voxel_sizes(tmp_path, suffix, pixdim):
    """pixdim gives the affine when there is no sform (qform or no transform at all)."""
    for qform_code in (0, 1):
        path = _with_header(_image(tmp_path, suffix), sform_code=0, qform_code=qform_code,
                            pixdim=pixdim + [1, 1, 1, 1])
        with pytest.raises(BadInputError,
                           match=rf"^{path}: voxel sizes \(pixdim\) must be positive and finite"):
            check_nifti(path)


def test_check_nifti_ignores_pixdim_under_an_sform(tmp_path, suffix):
    path = _with_header(_image(tmp_path, suffix), pixdim=[1, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(check_nifti(path).affine, AFFINE)


@pytest.mark.parametrize("srow_x, reason", [
    ([float("nan"), 0, 0, -8], "must be finite numbers"),
    ([2, 0, 0, float("inf")], "must be finite numbers"),
    ([0, 0, 0, 0], "must be invertible"),
    ([0, 2, 0, -8], "must be invertible"),  # the x axis is the y axis: coplanar voxel axes
])
def test_check_nifti_refuses_bad_affines(tmp_path, suffix, srow_x, reason):
    path = _with_header(_image(tmp_path, suffix), sform_code=2, srow_x=srow_x)
    for load_data in (True, False):
        with pytest.raises(BadInputError, match=rf"^{path}: the affine \(sform/qform\) {reason}"):
            check_nifti(path, load_data=load_data)


@pytest.mark.parametrize("dim", [
    [3, 1024, 1024, 256, 1, 1, 1, 1],  # 1 GiB of float32 in a file of about 1 KiB
    [3, 32767, 32767, 32767, 1, 1, 1, 1],  # the largest NIfTI-1 dimensions
])
def test_check_nifti_refuses_data_larger_than_the_file(tmp_path, suffix, dim):
    path = _with_header(_image(tmp_path, suffix), dim=dim)
    claimed = int(np.prod(dim[1:4], dtype=object)) * 4
    where = "more than a gzip file of" if suffix == ".nii.gz" else "but the file holds"
    for load_data in (True, False):
        with pytest.raises(BadInputError, match=rf"^{path}: truncated or corrupt file: the header "
                                                rf"claims {claimed} bytes .*{where}"):
            check_nifti(path, load_data=load_data)


def test_check_nifti_refuses_astronomic_nifti2_sizes(tmp_path, suffix):
    """10^53 voxels: no integer overflow, no MemoryError."""
    path = tmp_path / f"img2{suffix}"
    nb.Nifti2Image(np.ones((6, 5, 4), np.float32), AFFINE).to_filename(path)
    _with_header(path, nb.Nifti2Header, dim=[4, 10**13, 10**13, 10**13, 10**14, 1, 1, 1])
    with pytest.raises(BadInputError, match=rf"^{path}: truncated or corrupt file: the header "
                                            rf"claims {4 * 10**53} bytes"):
        check_nifti(path)


def test_check_nifti_bounds_gzip_claims(tmp_path, monkeypatch):
    """A .nii.gz of zeros compresses ~1000:1; its claim is bounded by a maximum instead."""
    from bids_stroke.bids import nifti as nifti_module

    path = tmp_path / "zeros.nii.gz"
    nifti(np.zeros((64, 64, 32)), dtype=np.float32).to_filename(path)  # 512 KiB of voxel data
    assert check_nifti(path).shape == (64, 64, 32)
    monkeypatch.setattr(nifti_module, "MAX_GZIP_DATA_BYTES", 2**18)
    with pytest.raises(BadInputError, match=rf"^{path}: too large: the header claims 524288 bytes "
                                            r".* more than the 262144 bytes this App reads"):
        check_nifti(path, load_data=False)
