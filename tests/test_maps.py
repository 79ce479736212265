"""Group maps: voxel-wise means, classification groups, hemisphere splits, summaries, files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from bids_stroke.bids.naming import sidecar_path
from bids_stroke.maps import (
    CLASSIFICATION_GROUPS,
    attention_summary,
    classification_groups,
    group_map_path,
    hemisphere_of,
    map_groups,
    mean_map,
    summary_path,
    write_group_maps,
)

SHAPE = (20, 24, 20)
AFFINE = np.array([[2.0, 0, 0, -20], [0, 2.0, 0, -24], [0, 0, 2.0, -20], [0, 0, 0, 1]])
SPACE = "MNI152NLin2009cSym"


@pytest.fixture
def rng():
    return np.random.default_rng(20220)


def test_mean_map_is_voxelwise_mean(rng):
    arrays = [rng.random(SHAPE).astype(np.float32) for _ in range(5)]
    np.testing.assert_allclose(mean_map(arrays), np.mean(arrays, axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean_map(np.stack(arrays)), np.mean(arrays, axis=0), rtol=1e-6)


def test_mean_map_errors():
    with pytest.raises(ValueError, match="at least one"):
        mean_map([])
    with pytest.raises(ValueError, match="shape"):
        mean_map([np.zeros((2, 2, 2)), np.zeros((2, 2, 3))])


def test_classification_groups_partition_participants(rng):
    n = 200
    outcome = rng.integers(0, 2, n)
    probability = rng.random(n)
    groups = classification_groups(outcome, probability, 0.4)
    assert set(groups) <= set(CLASSIFICATION_GROUPS)
    masks = {g: groups == g for g in CLASSIFICATION_GROUPS}
    assert sum(m.astype(int) for m in masks.values()).tolist() == [1] * n
    tn, fp, fn, tp = confusion_matrix(outcome, probability >= 0.4, labels=[0, 1]).ravel()
    assert [masks[g].sum() for g in ("TP", "FP", "FN", "TN")] == [tp, fp, fn, tn]


def test_classification_groups_threshold_is_inclusive_and_per_participant():
    assert classification_groups([1, 0], [0.5, 0.5], 0.5).tolist() == ["TP", "FP"]
    assert classification_groups([1, 1], [0.5, 0.5], [0.4, 0.6]).tolist() == ["TP", "FN"]
    with pytest.raises(ValueError, match="'outcome' must be 0"):
        classification_groups([2], [0.5], 0.5)
    with pytest.raises(ValueError, match="finite"):
        classification_groups([1], [np.nan], 0.5)


def test_hemisphere_splits_and_groups_partition(rng):
    sides = ["left", "right", "bilateral", "none", "Left", None, "R", "left"]
    assert [hemisphere_of(s) for s in sides] == ["L", "R", None, None, "L", None, "R", "L"]
    groups = classification_groups(rng.integers(0, 2, len(sides)), rng.random(len(sides)), 0.5)
    sets = map_groups(sides, list(groups))
    for hemi, members in (("L", {0, 4, 7}), ("R", {1, 6})):
        in_hemi = [s for s in sets if s.hemi == hemi]
        assert set(in_hemi[0].members) == members and in_hemi[0].group == "all"
        parts = [set(s.members) for s in in_hemi[1:]]
        assert [s.group for s in in_hemi[1:]] == list(CLASSIFICATION_GROUPS)
        assert set().union(*parts) == members and sum(map(len, parts)) == len(members)


def test_attention_summary():
    att = np.zeros(SHAPE)
    lesion = np.zeros(SHAPE)
    att[5:8, 5:8, 5:8] = 1.0
    lesion[5:8, 5:8, 5:8] = 0.5
    assert attention_summary(att, lesion)["fraction_in_lesion"] == pytest.approx(1.0)
    att[15, 15, 15] = 27.0
    res = attention_summary(att, lesion)
    assert res["fraction_in_lesion"] == pytest.approx(0.5)
    assert res["correlation"] == pytest.approx(np.corrcoef(att.ravel(), lesion.ravel())[0, 1])
    assert np.isnan(attention_summary(np.zeros(SHAPE), lesion)["fraction_in_lesion"])
    mask = np.zeros(SHAPE, bool)
    mask[:10] = True
    assert attention_summary(att, lesion, mask)["correlation"] == pytest.approx(
        np.corrcoef(att[mask], lesion[mask])[0, 1])


def _cohort(tmp_path, rng):
    rows, data = [], {}
    spec = [("01", "left", 1, 0.9), ("02", "left", 0, 0.2), ("03", "left", 1, 0.8), ("04", "right", 1, 0.1),
            ("05", "right", 0, 0.7), ("06", "bilateral", 1, 0.9), ("07", "left", 0, 0.6)]
    for label, side, outcome, p in spec:
        row = {"participant_id": f"sub-{label}", "outcome": outcome, "probability": p, "threshold": 0.5,
               "side": side}
        lesion = np.zeros(SHAPE, np.float32)
        x = 3 if side == "left" else 14
        lesion[x:x + 3, 10:13, 8:11] = 1
        arrays = {"lesion": lesion}
        for scale in ("a1", "a2", "a3"):
            arrays[f"attention_{scale}"] = rng.random(SHAPE).astype(np.float32)
        for key, arr in arrays.items():
            path = tmp_path / "in" / f"sub-{label}_{key}.nii.gz"
            path.parent.mkdir(exist_ok=True)
            nib.Nifti1Image(arr, AFFINE).to_filename(path)
            row[key] = str(path)
        data[label] = arrays
        rows.append(row)
    return pd.DataFrame(rows), data


def test_write_group_maps_means_counts_and_summary(tmp_path, rng):
    table, data = _cohort(tmp_path, rng)
    out = tmp_path / "out"
    written = write_group_maps(out, table, space=SPACE, metadata={"Variants": ["f8-g2"]})
    assert all(p.is_file() for p in written)

    left = ["01", "02", "03", "07"]
    path = group_map_path(out, space=SPACE, hemi="L", scale="a2")
    assert path.name == f"hemi-L_space-{SPACE}_res-2_desc-a2_attention.nii.gz"
    img = nib.load(path)
    np.testing.assert_allclose(img.get_fdata(), np.mean([data[s]["attention_a2"] for s in left], axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(img.affine, AFFINE)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["NumberOfParticipants"] == 4 and meta["Variants"] == ["f8-g2"]

    tp = group_map_path(out, space=SPACE, hemi="L", group="TP", scale="a1")
    assert tp.name == f"hemi-L_space-{SPACE}_res-2_desc-a1TP_attention.nii.gz"
    np.testing.assert_allclose(nib.load(tp).get_fdata(),
                               np.mean([data[s]["attention_a1"] for s in ("01", "03")], axis=0), rtol=1e-6)
    assert json.loads(sidecar_path(tp).read_text())["Participants"] == ["sub-01", "sub-03"]

    prob = group_map_path(out, space=SPACE, hemi="R", group="all")
    assert prob.name == f"hemi-R_space-{SPACE}_res-2_label-lesion_desc-all_probseg.nii.gz"
    np.testing.assert_allclose(nib.load(prob).get_fdata(),
                               np.mean([data[s]["lesion"] for s in ("04", "05")], axis=0))
    assert json.loads(sidecar_path(prob).read_text())["NumberOfParticipants"] == 2

    # empty groups get no map; bilateral lesions enter no hemisphere
    assert not group_map_path(out, space=SPACE, hemi="R", group="TP", scale="a1").exists()
    summary = pd.read_csv(summary_path(out, space=SPACE), sep="\t", na_values="n/a")
    assert len(summary) == 2 * 5 * 3
    row = summary[(summary.scale == "a1") & (summary.hemi == "L") & (summary.group == "all")].iloc[0]
    assert row.n == 4
    lesion_mean = np.mean([data[s]["lesion"] for s in left], axis=0)
    expected = attention_summary(nib.load(group_map_path(out, space=SPACE, hemi="L", scale="a1")).get_fdata(),
                                 lesion_mean)
    assert row.fraction_in_lesion == pytest.approx(expected["fraction_in_lesion"])
    assert row.correlation == pytest.approx(expected["correlation"])
    assert summary[(summary.hemi == "R") & (summary.group == "TP")].n.eq(0).all()
    assert summary.n[summary.group != "all"].sum() == 3 * 6


def test_group_map_sidecars_name_their_sources_as_bids_uris(tmp_path, rng):
    """The maps average files of OUTPUT_DIR: their sidecars' Sources are ``bids::`` URIs."""
    table, _ = _cohort(tmp_path, rng)
    write_group_maps(tmp_path, table, space=SPACE)
    meta = json.loads(sidecar_path(group_map_path(tmp_path, space=SPACE, hemi="L", group="TP", scale="a1")).read_text())
    assert meta["Sources"] == [f"bids::in/sub-{label}_attention_a1.nii.gz" for label in ("01", "03")]
    meta = json.loads(sidecar_path(group_map_path(tmp_path, space=SPACE, hemi="R")).read_text())
    assert meta["Sources"] == [f"bids::in/sub-{label}_lesion.nii.gz" for label in ("04", "05")]


def test_write_group_maps_from_arrays_and_missing_maps(tmp_path, rng):
    arrays = [rng.random(SHAPE).astype(np.float32) for _ in range(3)]
    table = pd.DataFrame({
        "participant_id": ["sub-a", "sub-b", "sub-c"], "outcome": [1, 0, 1], "probability": [0.9, 0.1, 0.3],
        "threshold": 0.5, "side": ["left"] * 3, "a1": arrays, "a2": [arrays[0], None, arrays[2]],
        "a3": arrays, "lesion": [np.ones(SHAPE, np.float32)] * 3,
    })
    write_group_maps(tmp_path, table, space=SPACE, affine=AFFINE)
    a2 = group_map_path(tmp_path, space=SPACE, hemi="L", scale="a2")
    np.testing.assert_allclose(nib.load(a2).get_fdata(), (arrays[0] + arrays[2]) / 2, rtol=1e-6)
    assert json.loads(sidecar_path(a2).read_text())["NumberOfParticipants"] == 2
    with pytest.raises(ValueError, match="'participants' must have the columns"):
        write_group_maps(tmp_path, table.drop(columns="side"), space=SPACE, affine=AFFINE)
