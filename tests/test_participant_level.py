"""The participant level end to end: simulated cohorts and the real ISLES 2022 case.

The workflows really run (dipy, ANTs); the cohorts are small and coarse so that the module
stays within about two minutes on two cores.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bids_stroke.bids.layout import DwiInputs
from bids_stroke.bids.naming import sidecar_path
from bids_stroke.cli import main
from bids_stroke.errors import ExitCode
from bids_stroke.simulate import load_truth
from bids_stroke.simulate.truth import template_lesion
from bids_stroke.spatial.templates import get_template_set
from bids_stroke.workflows.participant import init_participant_wf

#: Every file INTERFACE.md promises per participant without --model (TPL filled in).
EXPECTED = (
    "dwi/{p}_space-model_desc-preproc_dwi.nii.gz",
    "dwi/{p}_space-model_desc-preproc_dwi.json",
    "dwi/{p}_desc-brain_mask.nii.gz",
    "dwi/{p}_from-dwi_to-{tpl}_mode-image_xfm.h5",
    "dwi/{p}_from-{tpl}_to-dwi_mode-image_xfm.h5",
    "dwi/{p}_space-{tpl}_res-2_label-lesion_mask.nii.gz",
    "dwi/{p}_space-{tpl}_res-2_desc-b0_dwiref.nii.gz",
    "dwi/{p}_desc-lesion_measures.json",
)


def _snapshot(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _template_space(out):
    spaces = {p.name.split("_to-")[1].split("_")[0] for p in out.rglob("*_from-dwi_to-*_xfm.h5")}
    assert len(spaces) == 1
    return spaces.pop()


def _summary(out):
    (tsv,) = sorted((out / "logs").glob("participant-*_summary.tsv"))[-1:]
    with tsv.open() as fh:
        return {row["participant_id"]: row for row in csv.DictReader(fh, delimiter="\t")}


def _bval(tmp_path, text="0 1000 1000"):
    bval = tmp_path / "dwi.bval"
    bval.write_text(text + "\n")  # read when the graph is built: a 4D series without b = 0 has no ADC
    return bval


@pytest.mark.parametrize("kind", ["4d", "4d-without-b0", "trace"])
def test_workflow_graph(tmp_path, kind):
    """The graph is built without running anything; steps depend on what the inputs hold."""
    f = tmp_path / "f.nii.gz"
    f.write_bytes(b"")  # interfaces check that inputs exist; nothing reads them here
    series = kind.startswith("4d")
    bval = _bval(tmp_path, "0 1000 1000" if kind == "4d" else "1000 1000 1000")
    inputs = DwiInputs(
        subject="01", session=None, metadata={},
        dwi=f if series else None, bval=bval if series else None, bvec=f if series else None,
        trace=f if kind == "trace" else None, adc=None, trace_b_value=1000.0 if kind == "trace" else None,
        lesion_mask=f if series else None, brain_mask=None,
    )
    wf = init_participant_wf(inputs=inputs, output_dir=tmp_path / "out", templates=get_template_set())
    nodes = {node.name for node in wf._graph.nodes()}
    common = {"prepare_dwi", "brain_mask", "model_input", "registration", "b0_to_template",
              "lesion_measures", "ds_preproc", "ds_brain_mask", "ds_forward_xfm", "ds_inverse_xfm",
              "ds_b0_template", "ds_lesion_measures"}
    lesion = {"lesion_to_template", "ds_lesion_template", "ds_lesion_model"}
    assert common <= nodes
    assert (lesion <= nodes) == series
    # a trace-only export without ADC has none, nor has a series without b = 0 (whose
    # unconnected ADC steps hung the run)
    assert ("ds_adc" in nodes) == ("auto_lesion" in nodes) == (kind == "4d")
    assert wf.name == "sub_01_wf"


@pytest.mark.parametrize(("source", "given", "auto", "mask_from"), [
    ("given", True, False, "given"),
    ("given", False, False, None),      # as without automatic masks: no lesion steps at all
    ("given-or-auto", True, True, "given"),
    ("given-or-auto", False, True, "auto"),
    ("auto", True, True, "auto"),       # the given mask is ignored
])
def test_lesion_source_decides_which_mask_the_lesion_steps_use(tmp_path, source, given, auto, mask_from):
    f = tmp_path / "f.nii.gz"
    f.write_bytes(b"")
    inputs = DwiInputs(subject="01", session=None, metadata={}, dwi=f, bval=_bval(tmp_path), bvec=f, trace=None, adc=None,
                       trace_b_value=None, lesion_mask=f if given else None, brain_mask=None)
    wf = init_participant_wf(inputs=inputs, output_dir=tmp_path / "out", templates=get_template_set(),
                             lesion_source=source)
    nodes = {node.name: node for node in wf._graph.nodes()}
    assert ("auto_lesion" in nodes) == auto and ("ds_auto_lesion" in nodes) == auto
    assert ("lesion" in nodes) == (mask_from is not None)
    if mask_from is None:
        assert not {"lesion_to_template", "ds_lesion_template", "ds_lesion_model"} & set(nodes)
        return
    measures, lesion = nodes["lesion_measures"], nodes["lesion"]
    assert measures.inputs.lesion_source == mask_from
    # the lesion masks written on the model grid and in template space say what they are
    # and name the mask they come from: the given one, or the automatic one as stored
    auto_mask = tmp_path / "out" / "sub-01" / "dwi" / "sub-01_label-lesion_desc-auto_mask.nii.gz"
    for name in ("ds_lesion_model", "ds_lesion_template"):
        metadata = nodes[name].inputs.metadata
        assert metadata["Type"] == "Lesion", name
        assert metadata["Sources"] == [str(f if mask_from == "given" else auto_mask)], name
    feeds = {u.name for u, v in wf._graph.in_edges(lesion)}
    if mask_from == "auto":
        assert feeds == {"auto_lesion"}
    else:
        # a given mask is made binary first (probability maps, label maps)
        assert feeds == {"binary_lesion"} and nodes["binary_lesion"].inputs.in_file == str(f)
        # beside a given mask, the automatic one is only compared with it
        assert ("auto_lesion" in {u.name for u, v in wf._graph.in_edges(measures)}) == auto


@pytest.fixture(scope="module")
def participant_run(simulated_cohort, untrained_bundle, tmp_path_factory):
    """The participant level, with --model, on a read-only copy of the 4-subject cohort."""
    tmp = tmp_path_factory.mktemp("participant")
    bids = tmp / "bids"
    shutil.copytree(simulated_cohort, bids)
    for path in [bids, *bids.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _snapshot(bids)
    out, work = tmp / "out", tmp / "work"
    argv = [str(bids), str(out), "participant", "-w", str(work), "--nprocs", "2", "--model", str(untrained_bundle)]
    code = main(argv)
    return {"bids": bids, "out": out, "work": work, "code": code, "before": before, "argv": argv}


def test_every_participant_gets_every_derivative(participant_run):
    out = participant_run["out"]
    assert participant_run["code"] == ExitCode.SUCCESS
    tpl = _template_space(out)
    assert tpl in ("MNI152NLin2009cAsym", "MNI152NLin2009cSym")
    subjects = sorted(p.name for p in participant_run["bids"].glob("sub-*"))
    for sub in subjects:
        for pattern in EXPECTED:
            assert (out / sub / pattern.format(p=sub, tpl=tpl)).is_file(), pattern
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert {row["status"] for row in _summary(out).values()} == {"done"}
    assert list((out / "logs").glob("config-*.json"))


def test_predictions_and_attention_maps(participant_run):
    out = participant_run["out"]
    tpl = _template_space(out)
    for sub_dir in sorted(p for p in out.glob("sub-*") if p.is_dir()):
        p = sub_dir.name
        with (sub_dir / "dwi" / f"{p}_desc-ensemble_predictions.tsv").open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        assert [r["model"] for r in rows] == ["f8-g1.5", "f8-g1.5-bn", "ensemble"]
        probs = [float(r["probability_poor"]) for r in rows]
        assert all(0 <= v <= 1 for v in probs)
        assert probs[2] == pytest.approx(np.mean(probs[:2]), abs=1e-5)
        assert all(int(r["prediction"]) == int(float(r["probability_poor"]) >= float(r["threshold"])) for r in rows)
        native = nib.load(sub_dir / "dwi" / f"{p}_desc-brain_mask.nii.gz")
        for scale in ("a1", "a2", "a3"):
            att = nib.load(sub_dir / "dwi" / f"{p}_desc-{scale}_attention.nii.gz")
            assert att.shape == native.shape
            np.testing.assert_allclose(att.affine, native.affine, atol=1e-5)
            data = np.asarray(att.dataobj)
            assert (data >= 0).all() and data.sum() > 0
            meta = json.loads((sub_dir / "dwi" / f"{p}_desc-{scale}_attention.json").read_text())
            assert meta["AttentionScale"] == scale and meta["SumOnModelGrid"] == 1.0
            tpl_map = nib.load(sub_dir / "dwi" / f"{p}_space-{tpl}_res-2_desc-{scale}_attention.nii.gz")
            assert tpl_map.shape == nib.load(sub_dir / "dwi" / f"{p}_space-{tpl}_res-2_desc-b0_dwiref.nii.gz").shape


def test_reports_and_reports_only(participant_run):
    out, work = participant_run["out"], participant_run["work"]
    reports = sorted(out.glob("sub-*.html"))
    assert [r.stem for r in reports] == sorted(p.name for p in participant_run["bids"].glob("sub-*"))
    before = {p: p.read_bytes() for p in reports}
    steps = _snapshot(work)
    code = main([*participant_run["argv"], "--reports-only"])
    assert code == ExitCode.SUCCESS
    assert {p: p.read_bytes() for p in reports} == before  # the same reports
    assert _snapshot(work) == steps  # nothing recomputed


def test_bids_dir_is_not_written(participant_run):
    assert _snapshot(participant_run["bids"]) == participant_run["before"]


def test_model_input_grid_and_sidecar(participant_run):
    out = participant_run["out"]
    for img_path in sorted(out.glob("sub-*/dwi/*_space-model_desc-preproc_dwi.nii.gz")):
        img = nib.load(img_path)
        assert img.shape == (96, 96, 24)
        sidecar = json.loads(img_path.with_name(img_path.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["SkullStripped"] is True
        assert sidecar["NormalizationReference"] > 0
        np.testing.assert_allclose(sidecar["ModelGridAffine"], img.affine, atol=1e-5)
        box = sidecar["CropBox"]
        assert box["extent_mm"][0] == pytest.approx(box["extent_mm"][1])
        # the brain mask lies inside the model grid's field of view
        mask_path = img_path.parent / img_path.name.replace("_space-model_desc-preproc_dwi", "_desc-brain_mask")
        mask = nib.load(mask_path)
        ijk = np.argwhere(np.asarray(mask.dataobj) > 0)
        model_ijk = (np.linalg.inv(img.affine) @ mask.affine @ np.c_[ijk, np.ones(len(ijk))].T)[:3]
        assert (model_ijk > -0.5 - 1e-6).all() and (model_ijk.T < np.array(img.shape) - 0.5 + 1e-6).all()
        # intensities are normalised: the model grid holds values around 1 in the brain
        data = np.asarray(img.dataobj)
        assert 0.5 < np.median(data[data > 0]) < 1.5


def test_lesion_measures_match_the_simulation(participant_run, simulated_cohort):
    out = participant_run["out"]
    with (simulated_cohort / "truth" / "subjects.tsv").open() as fh:
        truth = {row["participant_id"]: row for row in csv.DictReader(fh, delimiter="\t")}
    for pid, row in truth.items():
        measures = json.loads((out / pid / "dwi" / f"{pid}_desc-lesion_measures.json").read_text())
        native_ml = [v for k, v in row.items() if "native" in k and "ml" in k.lower()]
        assert measures["LesionVolume"] == pytest.approx(float(native_ml[0]), rel=1e-3, abs=1e-3)
        assert measures["LesionSide"] in ("left", "right", "bilateral")


def test_template_lesion_overlaps_ground_truth(participant_run, simulated_cohort):
    """Dice of the registered lesion with the simulator's template-space lesion."""
    out = participant_run["out"]
    tpl = _template_space(out)
    inter = total = 0
    dices = {}
    for sub_dir in sorted(p for p in out.glob("sub-*") if p.is_dir()):
        sub = sub_dir.name[4:]
        truth = load_truth(simulated_cohort, sub)
        ours = nib.load(sub_dir / "dwi" / f"sub-{sub}_space-{tpl}_res-2_label-lesion_mask.nii.gz")
        true_on_ours = template_lesion(truth, ours.affine, ours.shape)
        mine = np.asarray(ours.dataobj) > 0
        if true_on_ours.sum() * 8 / 1000 < 5:  # lesions under 5 mL: too few 2 mm voxels
            continue
        inter += (mine & true_on_ours).sum()
        total += mine.sum() + true_on_ours.sum()
        dices[sub] = 2 * (mine & true_on_ours).sum() / (mine.sum() + true_on_ours.sum())
    assert dices, "no simulated lesion of 5 mL or more"
    pooled = 2 * inter / total
    print(f"Dice with the ground truth per subject {dices}, pooled {pooled:.2f}")
    assert pooled >= 0.6


def test_rerun_with_the_same_work_dir_recomputes_nothing(participant_run):
    work, out = participant_run["work"], participant_run["out"]
    # the steps' own folders (the sinks run again by design: they restore deleted outputs)
    steps = {k: v for k, v in _snapshot(work).items()
             if k.count("/") >= 3 and "crash" not in k and "/ds_" not in k}
    assert any("/registration/" in k for k in steps)
    outputs = {p: p.read_bytes() for p in out.rglob("*.nii.gz")}
    code = main(participant_run["argv"])
    assert code == ExitCode.SUCCESS
    after = {k: v for k, v in _snapshot(work).items() if k in steps}
    assert after == steps  # no step's files were rewritten
    assert {p: p.read_bytes() for p in out.rglob("*.nii.gz")} == outputs


def test_a_failing_participant_does_not_stop_the_others(simulated_cohort, tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(simulated_cohort, bids)
    bad = next(bids.glob("sub-*/dwi/*_dwi.nii.gz"))
    good = next(p for p in sorted(bids.glob("sub-*")) if p.name != bad.parts[-3])
    img = nib.load(bad)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), img.affine, img.header), bad)
    # NaN voxels in the good participant are handled (set to 0, with a warning)
    good_dwi = next(good.glob("dwi/*_dwi.nii.gz"))
    gimg = nib.load(good_dwi)
    data = np.asarray(gimg.dataobj, dtype=np.float32)
    data[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(data, gimg.affine), good_dwi)
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "--skip-bids-validation", "-w", str(tmp_path / "w"),
                 "--participant-label", bad.parts[-3], good.name])
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    summary = _summary(out)
    assert summary[good.name]["status"] == "done"
    assert summary[bad.parts[-3]]["status"] == "failed" and summary[bad.parts[-3]]["exit_code"] == "65"
    assert bad.name in summary[bad.parts[-3]]["reason"]
    preproc = out / good.name / "dwi" / f"{good.name}_space-model_desc-preproc_dwi.nii.gz"
    assert np.isfinite(np.asarray(nib.load(preproc).dataobj)).all()
    sidecar = json.loads(preproc.with_name(preproc.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["NonFiniteVoxelsSetToZero"] == {good_dwi.name: int(np.isnan(data).sum())}
    assert not (out / bad.parts[-3]).exists()  # nothing half-written for the failed one
    error_lines = [line for line in err.splitlines() if line.startswith("bids-stroke: error:")]
    assert len(error_lines) == 1 and "1 of 2 participant(s) failed" in error_lines[0]


def test_isles_case_produces_every_derivative(isles_ds, tmp_path):
    out = tmp_path / "out"
    code = main([str(isles_ds), str(out), "participant", "-w", str(tmp_path / "w"), "--nprocs", "2"])
    assert code == ExitCode.SUCCESS
    tpl = _template_space(out)
    p = "sub-strokecase0009_ses-0001"
    for pattern in EXPECTED:
        assert (out / "sub-strokecase0009" / "ses-0001" / pattern.format(p=p, tpl=tpl)).is_file(), pattern
    measures = json.loads((out / "sub-strokecase0009/ses-0001/dwi" / f"{p}_desc-lesion_measures.json").read_text())
    assert measures["LesionVolume"] == pytest.approx(4.18, abs=0.01)  # 523 voxels of 8 mm³
    sidecar = json.loads((out / "sub-strokecase0009/ses-0001/dwi" / f"{p}_space-model_desc-preproc_dwi.json").read_text())
    assert sidecar["NormalizationReference"] > 0


def test_slurm_requests_the_threads_of_multi_threaded_nodes():
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from bids_stroke.workflows.execution import _request_slurm_cpus

    inner = pe.Workflow(name="inner")
    threaded = pe.Node(niu.IdentityInterface(["a"]), name="threaded", n_procs=4)
    single = pe.Node(niu.IdentityInterface(["a"]), name="single")
    own = pe.Node(niu.IdentityInterface(["a"]), name="own", n_procs=3)
    own.plugin_args = {"sbatch_args": "--cpus-per-task=8 --mem=4G"}
    inner.add_nodes([threaded, single, own])
    outer = pe.Workflow(name="outer")
    outer.add_nodes([inner])
    _request_slurm_cpus(outer)
    assert threaded.plugin_args == {"sbatch_args": "--cpus-per-task=4", "overwrite": False}
    assert "sbatch_args" not in single.plugin_args
    assert own.plugin_args == {"sbatch_args": "--cpus-per-task=8 --mem=4G"}


def test_sources_are_bids_uris_that_resolve_and_lesion_masks_say_so(participant_run):
    """Every ``Sources`` entry is a BIDS URI of a file that exists (``bids:raw:`` in BIDS_DIR,
    ``bids:lesions:`` in the derivatives dataset the given masks come from, both through the
    description's DatasetLinks; ``bids::`` in OUTPUT_DIR); every lesion mask has a sidecar
    that says ``"Type": "Lesion"``."""
    from urllib.parse import unquote, urlparse

    out, bids = participant_run["out"], participant_run["bids"]
    description = json.loads((out / "dataset_description.json").read_text())
    links = description["DatasetLinks"]
    roots = {"": out, **{name: Path(unquote(urlparse(uri).path)) for name, uri in links.items()}}
    assert roots["raw"] == bids.absolute() and roots["lesions"] == (bids / "derivatives" / "lesions").absolute()
    assert roots["lesions"].as_uri() in {entry["URL"] for entry in description["SourceDatasets"]}
    checked = []
    for sidecar in sorted(out.glob("sub-*/dwi/*.json")):
        meta = json.loads(sidecar.read_text())
        for uri in meta.get("Sources", []):
            scheme, name, relative = uri.split(":", 2)
            assert scheme == "bids" and (roots[name] / relative).is_file(), (sidecar.name, uri)
            checked.append(name)
        if sidecar.name.endswith("_desc-brain_mask.json"):
            assert meta["Type"] == "Brain"
    lesion_masks = sorted(out.glob("sub-*/dwi/*_label-lesion*_mask.nii.gz"))
    assert len(lesion_masks) >= 12  # model grid, template space and automatic, per participant
    for mask in lesion_masks:
        meta = json.loads(sidecar_path(mask).read_text())
        assert meta["Type"] == "Lesion" and meta["Sources"], mask.name
    given = [json.loads(sidecar_path(m).read_text())["Sources"][0] for m in lesion_masks if "_space-" in m.name]
    assert given and all(uri.startswith("bids:lesions:") for uri in given)
    assert {"raw", "lesions"} <= set(checked) <= {"raw", "lesions", ""}
