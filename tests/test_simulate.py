"""Tests of the semi-synthetic cohort simulator (bids_stroke.simulate)."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage, stats

from bids_stroke.simulate import cli, load_truth, simulate_cohort, site_profiles
from bids_stroke.simulate import cohort, sources
from bids_stroke.simulate.anatomy import TISSUES, load_anatomy, tissue_signal
from bids_stroke.simulate.sites import PROFILES, gradient_table
from bids_stroke.simulate.warp import random_warp
from bids_stroke.simulate.writers import write_nifti


def _validator():
    exe = shutil.which("bids-validator-deno") or str(
        Path(sys.executable).with_name("bids-validator-deno"))
    if not Path(exe).exists():
        pytest.skip("bids-validator-deno is not installed")
    return exe


def _dwi_files(root, sub, ses=None):
    folder = Path(root) / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "dwi"
    return sorted(folder.iterdir())


def _load(path):
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine


def _trace_image(root, sub, ses=None):
    """The diffusion-weighted (trace) image of a subject, and its affine."""
    files = _dwi_files(root, sub, ses)
    trace = [f for f in files if f.name.endswith("_rec-TRACE_dwi.nii.gz")]
    if trace:
        return _load(trace[0])
    nii = next(f for f in files if f.name.endswith("_dwi.nii.gz"))
    data, aff = _load(nii)
    bvals = np.loadtxt(str(nii).replace(".nii.gz", ".bval"))
    b = bvals[bvals > 0].min()
    return np.exp(np.log(np.maximum(data[..., bvals == b], 1)).mean(-1)), aff


def _subjects(root):
    lines = (Path(root) / "participants.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"))) for ln in lines[1:]]


# --- pure functions -----------------------------------------------------------------


def test_lesion_is_bright_on_trace_and_dark_on_adc():
    frac = np.zeros((5, 3), np.float32)
    frac[0] = [0.6, 0.6, 0.6]
    frac[1] = [0.4, 0.4, 0.4]
    lesion = np.array([0.0, 0.5, 1.0], np.float32)
    s0 = tissue_signal(frac, lesion, 0)
    s1 = tissue_signal(frac, lesion, 1000)
    adc = np.log(s0 / s1) / 1000
    assert s1[2] > 1.5 * s1[0] and s1[0] < s1[1] < s1[2]
    assert adc[2] < 0.7 * adc[0]
    assert adc[2] == pytest.approx(TISSUES["lesion"].adc, rel=1e-4)
    csf = np.zeros((5, 1), np.float32)
    csf[2] = 1
    assert tissue_signal(csf, None, 0)[0] > s0[0]  # CSF bright on b0
    assert tissue_signal(csf, None, 1000)[0] < s1[0]  # and dark on trace


def test_warp_inverse_recovers_points():
    rng = np.random.default_rng(0)
    anatomy = load_anatomy()
    warp = random_warp(rng, anatomy.shape, anatomy.affine)
    assert 2.0 <= np.sqrt((warp.field ** 2).sum(0)).max() <= 4.0 + 1e-5
    p = rng.uniform(-70, 70, (3, 500))
    q = warp.scanner_to_template_points(p)
    assert np.abs(q - p).max() > 1.0  # it moves points
    assert np.abs(warp.template_to_scanner_points(q) - p).max() < 1e-3


def test_site_profiles_differ_and_include_trace_and_multishell():
    prof = site_profiles(11, seed=0)
    assert len({p.spacing[0] for p in prof}) >= 6
    assert len({p.slice_thickness for p in prof}) >= 4
    assert all(3 <= p.slice_thickness <= 5 and 1.1 <= p.spacing[0] <= 1.9 for p in prof)
    assert len({p.n_slices for p in prof}) >= 6
    assert {b for p in prof for b in p.bvals} == {1000, 1400, 2000}
    for k in range(2, 12):
        assert any(p.kind == "trace" for p in site_profiles(k, seed=0))
    multi = [p for p in prof if len(p.bvals) > 1]
    assert multi and set(gradient_table(multi[0])[0]) == {0, 1000, 1400, 2000}
    assert all(p.n_slices * p.spacing[2] >= 140 for p in prof)
    extra = site_profiles(14, seed=5)
    assert extra[:11] == list(PROFILES) and extra == site_profiles(14, seed=5)
    assert extra[11:] != site_profiles(14, seed=6)[11:]


def test_subject_images_do_not_depend_on_clinical_values():
    """Same plan with another mRS/age/NIHSS/sex gives the same images."""
    src = sources.read_sources(sources.shipped_dir() / "lesions",
                               sources.shipped_dir() / "participants.tsv")
    plan = cohort.plan_cohort(src, n_subjects=2, n_sites=2, seed=9, downsample=4)[1]
    other = dataclasses.replace(plan, source=dataclasses.replace(
        plan.source, mrs=6 - plan.source.mrs, age=20.0, nihss=42.0, sex="X"))
    anatomy = load_anatomy()
    a, b = cohort.simulate_subject(plan, anatomy), cohort.simulate_subject(other, anatomy)
    for key in a["images"]:
        np.testing.assert_array_equal(a["images"][key], b["images"][key])
    np.testing.assert_array_equal(a["mask"], b["mask"])


def test_plan_ignores_outcomes():
    """Patients, order and sites come from the seed: flipping outcomes changes nothing."""
    src = sources.read_sources(sources.shipped_dir() / "lesions",
                               sources.shipped_dir() / "participants.tsv")
    flipped = [dataclasses.replace(s, mrs=6 - s.mrs) for s in src]
    a = cohort.plan_cohort(src, n_subjects=20, n_sites=4, seed=2)
    b = cohort.plan_cohort(flipped, n_subjects=20, n_sites=4, seed=2)
    assert [(p.source.soop_id, p.site.name, p.seed) for p in a] == \
           [(p.source.soop_id, p.site.name, p.seed) for p in b]
    assert sorted(np.bincount([int(p.site.name[4:]) for p in a])[1:]) == [5, 5, 5, 5]


def test_nifti_files_are_deterministic_with_the_simulator_header(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    write_nifti(tmp_path / "a.nii.gz", data, affine, code=4, intent="vector")
    write_nifti(tmp_path / "b.nii.gz", data, affine, code=4, intent="vector")
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()
    img = nib.load(tmp_path / "a.nii.gz")
    assert img.get_data_dtype() == np.int16
    assert int(img.header["sform_code"]) == 4 and int(img.header["qform_code"]) == 4
    assert img.header.get_intent()[0] == "vector"
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz", "b.nii.gz"]


# --- the written dataset --------------------------------------------------------------


@pytest.mark.parametrize("which", ["simulated_cohort", "simulated_cohort_session"])
def test_dataset_passes_bids_validator(which, request):
    root = request.getfixturevalue(which)
    res = subprocess.run([_validator(), "--format", "json", str(root)],
                         capture_output=True, text=True, timeout=120)
    report = json.loads(res.stdout)
    errors = [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert errors == []
    # every image is validated: .bidsignore hides only the ground truth
    assert (root / ".bidsignore").read_text().split() == ["truth"]
    n_images = len(list(root.glob("sub-*/**/*_dwi.nii.gz")))
    assert any(root.glob("sub-*/**/*_rec-TRACE_dwi.nii.gz"))
    assert report["summary"]["totalFiles"] >= 2 * n_images  # images + sidecars at least


def test_dataset_metadata(simulated_cohort):
    desc = json.loads((simulated_cohort / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and "ds004889" in json.dumps(desc)
    der = simulated_cohort / "derivatives" / "lesions" / "dataset_description.json"
    lesion_description = json.loads(der.read_text())
    assert lesion_description["DatasetType"] == "derivative"
    # every lesion mask says so, and names its DWI through the lesion dataset's DatasetLinks
    raw = (der.parent / lesion_description["DatasetLinks"]["raw"]).resolve()
    masks = sorted(der.parent.glob("sub-*/**/*_label-lesion_mask.nii.gz"))
    assert masks and raw == simulated_cohort.resolve()
    for mask in masks:
        meta = json.loads(mask.with_name(mask.name.replace(".nii.gz", ".json")).read_text())
        (uri,) = meta["Sources"]
        scheme, name, relative = uri.split(":", 2)
        assert meta["Type"] == "Lesion" and (scheme, name) == ("bids", "raw") and (raw / relative).is_file()
        assert relative.startswith(mask.name.split("_")[0] + "/") and relative.endswith("_dwi.nii.gz")
    rows = _subjects(simulated_cohort)
    assert list(rows[0]) == ["participant_id", "site", "mrs", "age", "nihss", "sex"]
    truth = {ln.split("\t")[0]: ln.split("\t")[2] for ln in
             (simulated_cohort / "truth" / "subjects.tsv").read_text().splitlines()[1:]}
    src = {s.soop_id: s for s in sources.read_sources(
        sources.shipped_dir() / "lesions", sources.shipped_dir() / "participants.tsv")}
    for r in rows:
        assert int(r["mrs"]) == src[truth[r["participant_id"]]].mrs
    described = json.loads((simulated_cohort / "participants.json").read_text())
    assert set(rows[0]) == set(described) and "discharge" in described["mrs"]["Description"].lower()


def test_sites_differ_and_trace_site_has_no_bval(simulated_cohort):
    rows = _subjects(simulated_cohort)
    assert len({r["site"] for r in rows}) == 3
    zooms, bvals, kinds = set(), set(), set()
    for r in rows:
        sub = r["participant_id"][4:]
        files = _dwi_files(simulated_cohort, sub)
        names = [f.name for f in files]
        if any("rec-TRACE" in n for n in names):
            kinds.add("trace")
            assert not any(n.endswith((".bval", ".bvec")) for n in names)
            assert any("rec-ADC" in n for n in names)
            side = json.loads(next(f for f in files if "rec-TRACE" in f.name
                                   and f.suffix == ".json").read_text())
            bvals.add(side["DiffusionBValue"])
            img = nib.load(str(next(f for f in files if "rec-TRACE" in f.name
                                    and f.name.endswith(".nii.gz"))))
            assert img.ndim == 3
        else:
            kinds.add("dwi4d")
            nii = next(f for f in files if f.name.endswith("_dwi.nii.gz"))
            img = nib.load(str(nii))
            bv = np.loadtxt(str(nii).replace(".nii.gz", ".bval"))
            vec = np.loadtxt(str(nii).replace(".nii.gz", ".bvec"))
            assert img.shape[3] == bv.size == vec.shape[1] and (bv == 0).sum() >= 1
            for b in set(bv) - {0}:
                assert (bv == b).sum() >= 3
            bvals.update(bv[bv > 0].tolist())
        assert img.get_data_dtype() == np.int16
        zooms.add(tuple(np.round(img.header.get_zooms()[:3], 2)) + img.shape[2:3])
    assert kinds == {"trace", "dwi4d"} and {1000, 1400, 2000} <= bvals
    assert len(zooms) == 3


def test_same_seed_gives_identical_files(simulated_cohort, simulated_cohort_session,
                                         tmp_path):
    again = simulate_cohort(tmp_path / "again", n_subjects=4, n_sites=3, seed=3,
                            downsample=2)
    cmp = filecmp.dircmp(simulated_cohort, again)

    def walk(c):
        assert not c.left_only and not c.right_only
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files,
                                               shallow=False)
        assert mismatch == [] and errors == []
        for sub in c.subdirs.values():
            walk(sub)

    walk(cmp)
    a = _trace_image(simulated_cohort, "001")[0]
    b = _trace_image(simulated_cohort_session, "001", "01")[0]
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_session_layout(simulated_cohort_session):
    root = simulated_cohort_session
    for r in _subjects(root):
        sub = r["participant_id"][4:]
        names = [f.name for f in _dwi_files(root, sub, "01")]
        assert names and all(n.startswith(f"sub-{sub}_ses-01_") for n in names)
        mask = (root / "derivatives" / "lesions" / f"sub-{sub}" / "ses-01" / "dwi"
                / f"sub-{sub}_ses-01_label-lesion_mask.nii.gz")
        assert mask.is_file()
        assert load_truth(root, sub, "01").info["soop_id"].startswith("sub-")


def test_native_mask_is_bright_and_maps_onto_truth(simulated_cohort):
    """The native mask sits on bright trace voxels and warps back onto the MNI lesion.

    Pooled over subjects whose lesion is at least 5 mL: voxels of 2.4–3.6 mm in plane
    (downsample 2) and 3–5 mm slices blur a lesion boundary by up to half a voxel, which
    costs a 5–50 mL lesion 10–30 % of Dice; a misplaced or unwarped mask (a few mm off,
    or mirrored) falls far below 0.6.
    """
    anatomy = load_anatomy()
    inter = total = 0
    for r in _subjects(simulated_cohort):
        sub = r["participant_id"][4:]
        truth = load_truth(simulated_cohort, sub)
        mpath = (simulated_cohort / "derivatives" / "lesions" / f"sub-{sub}" / "dwi"
                 / f"sub-{sub}_label-lesion_mask.nii.gz")
        mask, maff = _load(mpath)
        trace, taff = _trace_image(simulated_cohort, sub)
        assert mask.dtype == np.uint8 and mask.shape == trace.shape[:3]
        np.testing.assert_allclose(maff, taff, atol=1e-5)
        if truth.lesion.sum() < 5000:
            continue
        ijk = np.indices(mask.shape).reshape(3, -1).astype(float)
        tv = np.rint(truth.native_to_template(ijk)).astype(int)
        ok = np.all((tv >= 0) & (tv < np.array(anatomy.shape)[:, None]), axis=0)
        brain = np.zeros(mask.size, bool)
        brain[ok] = anatomy.brain[tuple(tv[:, ok])]
        lesion = mask.ravel() > 0
        assert trace.ravel()[lesion].mean() > 1.3 * trace.ravel()[brain & ~lesion].mean()
        lo = np.argwhere(truth.lesion).min(0) - 6
        hi = np.argwhere(truth.lesion).max(0) + 7
        box = np.stack(np.meshgrid(*[np.arange(a, b, 2) for a, b in zip(lo, hi)],
                                   indexing="ij")).reshape(3, -1)
        nv = np.rint(truth.template_to_native(box.astype(float))).astype(int)
        inside = np.all((nv >= 0) & (nv < np.array(mask.shape)[:, None]), axis=0)
        pulled = np.zeros(box.shape[1], bool)
        pulled[inside] = mask[tuple(nv[:, inside])] > 0
        true = truth.lesion[tuple(box)] > 0
        inter += (pulled & true).sum()
        total += pulled.sum() + true.sum()
    assert total > 0
    assert 2 * inter / total > 0.6


def test_no_outcome_leakage_in_healthy_tissue(tmp_path):
    """Non-lesioned intensity is not associated with outcome; lesion volume is."""
    root = simulate_cohort(tmp_path / "leak", n_subjects=40, n_sites=4, seed=11,
                           downsample=4, n_jobs=2)
    rows = _subjects(root)
    truth_rows = {ln.split("\t")[0]: ln.split("\t") for ln in
                  (root / "truth" / "subjects.tsv").read_text().splitlines()[1:]}
    healthy, volume, poor, age, site = [], [], [], [], []
    for r in rows:
        sub = r["participant_id"][4:]
        trace, _ = _trace_image(root, sub)
        mask, _ = _load(root / "derivatives" / "lesions" / f"sub-{sub}" / "dwi"
                        / f"sub-{sub}_label-lesion_mask.nii.gz")
        near = ndimage.binary_dilation(mask > 0, iterations=3)
        head = trace > 0.5 * np.median(trace[trace > np.percentile(trace, 50)])
        healthy.append(np.median(trace[head & ~near]))
        volume.append(float(truth_rows[r["participant_id"]][-1]))
        poor.append(int(r["mrs"]) >= 3)
        age.append(float(r["age"]))
        site.append(r["site"])
    healthy, poor, site = np.array(healthy), np.array(poor), np.array(site)
    for s in set(site):  # remove the site scale
        healthy[site == s] /= np.median(healthy[site == s])
    assert 10 <= poor.sum() <= 30
    p_healthy = stats.mannwhitneyu(healthy[poor], healthy[~poor]).pvalue
    p_age = stats.spearmanr(healthy, age).pvalue
    p_volume = stats.mannwhitneyu(np.array(volume)[poor], np.array(volume)[~poor]).pvalue
    assert p_volume < 0.05  # the test can see an association that is there
    assert p_healthy > 0.05 and p_age > 0.05


# --- command line ---------------------------------------------------------------------


def _run_cli(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.fixture()
def bad_table(tmp_path):
    path = tmp_path / "participants.tsv"
    path.write_text("participant_id\tage\nsub-17\t70\n")
    return path


@pytest.mark.parametrize("case, code, text", [
    ("too_many", 64, "n_subjects"),
    ("missing_lesions", 66, "does not exist"),
    ("missing_column", 65, "gs_rankin_6isdeath"),
    ("lesions_without_table", 64, "--participants"),
    ("bad_sites", 64, "n_sites"),
    ("bad_option", 64, "unrecognized"),
    ("bad_session", 64, "session"),
])
def test_bad_arguments_exit_with_one_line_and_write_nothing(case, code, text, tmp_path,
                                                            bad_table, capsys):
    out = tmp_path / "out"
    lesions = str(sources.shipped_dir() / "lesions")
    argv = {
        "too_many": [str(out), "--n-subjects", "41"],
        "missing_lesions": [str(out), "--n-subjects", "2", "--n-sites", "1", "--lesions",
                            str(tmp_path / "nope"), "--participants", str(bad_table)],
        "missing_column": [str(out), "--n-subjects", "2", "--n-sites", "1", "--lesions", lesions,
                           "--participants", str(bad_table)],
        "lesions_without_table": [str(out), "--n-subjects", "2", "--n-sites", "1", "--lesions", lesions],
        "bad_sites": [str(out), "--n-subjects", "2", "--n-sites", "3"],
        "bad_option": [str(out), "--n-subjects", "2", "--colour"],
        "bad_session": [str(out), "--n-subjects", "2", "--session", "a_b"],
    }[case]
    got, err = _run_cli(argv, capsys)
    assert got == code
    assert len(err) == 1 and text in err[0]
    assert not out.exists()


def test_non_empty_output_is_refused(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    got, err = _run_cli([str(tmp_path), "--n-subjects", "1", "--n-sites", "1"], capsys)
    assert got == 64 and len(err) == 1 and str(tmp_path) in err[0]
    got, err = _run_cli([str(tmp_path), "--n-subjects", "1", "--n-sites", "1",
                         "--overwrite"], capsys)
    assert got == 64 and "not a simulated cohort" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "bids_stroke.simulate", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for option in ("--n-subjects", "--n-sites", "--seed", "--lesions", "--participants",
                   "--session", "--n-jobs", "--downsample", "--overwrite"):
        assert option in res.stdout
