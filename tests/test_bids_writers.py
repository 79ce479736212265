"""The atomic writers: nothing half-written, reproducible bytes, BIDS TSVs."""

from __future__ import annotations

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.bids import writers as d

def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub-01" / "x.json"
    d.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with d.atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"a": 1}  # old content intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # no temp file left


def test_write_nifti_is_reproducible_and_has_sidecar(tmp_path):
    img = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.diag([2.0, 2.0, 5.0, 1.0]))
    first = d.write_nifti(tmp_path / "a_dwi.nii.gz", img, {"SkullStripped": True})
    second = d.write_nifti(tmp_path / "b_dwi.nii.gz", img)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes())[:4] != b""  # valid gzip
    back = nib.load(first)
    np.testing.assert_array_equal(back.get_fdata(), img.get_fdata())
    np.testing.assert_allclose(back.affine, img.affine)
    assert json.loads((tmp_path / "a_dwi.json").read_text()) == {"SkullStripped": True}
    assert not (tmp_path / "b_dwi.json").exists()
    with pytest.raises(ValueError, match=r"must end in \.nii\.gz"):
        d.write_nifti(tmp_path / "c.nii", img)


def test_write_tsv_uses_bids_missing_values(tmp_path):
    pd = pytest.importorskip("pandas")
    d.write_tsv(tmp_path / "t.tsv", pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None]}))
    assert (tmp_path / "t.tsv").read_text() == "a\tb\n1.0\tx\nn/a\tn/a\n"


def test_a_killed_runs_temporary_files_are_removed_and_nothing_else(tmp_path):
    from bids_stroke.bids.writers import atomic_output, remove_partial_writes

    out = tmp_path / "sub-01" / "dwi"
    out.mkdir(parents=True)
    final = out / "sub-01_desc-brain_mask.nii.gz"
    final.write_bytes(b"done")
    with pytest.raises(KeyboardInterrupt):  # what a killed writer leaves: its temporary name
        with atomic_output(out / "sub-01_desc-preproc_dwi.nii.gz") as tmp:
            tmp.write_bytes(b"half")
            left = tmp.with_name(tmp.name.replace(".nii.gz", ".kept.nii.gz"))
            os.link(tmp, left)
            raise KeyboardInterrupt
    others = [out / ".tmp-notours-x.json", out / ".hidden", out / "tmp-0123456789ab-x.json"]
    for path in others:
        path.write_text("keep")
    assert remove_partial_writes(tmp_path / "sub-01") == [left]
    assert sorted(p.name for p in out.iterdir()) == sorted([final.name, *(p.name for p in others)])
    assert remove_partial_writes(tmp_path / "nothing") == []
