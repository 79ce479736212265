"""Reports: figures and HTML built from a fake OUTPUT_DIR, links, offline, screenshots, regeneration."""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from bids_stroke.bids.naming import derivative_path, report_path, run_path, sidecar_path
from bids_stroke.bids.writers import write_json, write_nifti, write_tsv
from bids_stroke.interfaces.model import predictions_metadata
from bids_stroke.maps import write_group_maps
from bids_stroke.model.spec import MANIFEST, MODEL_GRID
from bids_stroke.report import citation, figures, write_group_report, write_participant_report, write_reports
from bids_stroke.report.model_card import build_model_card, write_model_card
from bids_stroke.stats.tables import write_group_statistics

SPACE = "MNI152NLin2009cSym"
#: A 2 mm template-space grid covering MNI z = -30 ... 68 mm (smaller than the template's).
TPL_AFFINE = np.array([[2.0, 0, 0, -60], [0, 2.0, 0, -80], [0, 0, 2.0, -30], [0, 0, 0, 1]])
TPL_SHAPE = (61, 70, 50)
NATIVE_AFFINE = np.array([[3.6, 0, 0, -86], [0, 3.6, 0, -110], [0, 0, 6.0, -40], [0, 0, 0, 1]])
NATIVE_SHAPE = (48, 56, 20)
MODEL_AFFINE = np.array([[1.75, 0, 0, -80], [0, 2.1, 0, -100], [0, 0, 4.5, -36], [0, 0, 0, 1]])
VARIANTS = ("f8-g1.5", "f8-g1.5-bn", "f8-g2", "f8-g2-bn", "f16-g1.5", "f16-g1.5-bn", "f16-g2", "f16-g2-bn")
#: label -> (lesion side, outcome, ensemble probability, with a model)
#: The model card summary of the participants' predictions sidecars.
CARD_SUMMARY = "bids-stroke ensemble of 2 variants trained on 16 participants"
SUBJECTS = {"01": ("left", 1, 0.81, True), "02": ("left", 0, 0.22, True), "03": ("right", 1, 0.31, True),
            "04": ("right", 0, 0.64, True), "05": ("left", 1, None, False)}


def _world(affine, shape):
    ijk = np.indices(shape).reshape(3, -1)
    xyz = affine[:3, :3] @ ijk + affine[:3, 3:4]
    return [c.reshape(shape) for c in xyz]


def _head(affine, shape, centre_x=0.0, lesion=False):
    x, y, z = _world(affine, shape)
    brain = ((x / 65) ** 2 + ((y + 15) / 85) ** 2 + ((z - 15) / 60) ** 2) <= 1
    if lesion:
        return (((x - centre_x) / 14) ** 2 + ((y + 5) / 18) ** 2 + ((z - 10) / 16) ** 2) <= 1
    ventricles = ((np.abs(x) - 8) / 6) ** 2 + ((y + 5) / 25) ** 2 + ((z - 15) / 12) ** 2 <= 1
    return np.where(brain, 1.0 + 0.6 * ventricles, 0.0).astype(np.float32)


def _img(data, affine):
    return nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)


def _build_output_dir(out: Path, rng, *, group: bool = True) -> Path:
    write_json(out / "dataset_description.json", {"Name": "fake", "BIDSVersion": "1.10.0",
                                                  "DatasetType": "derivative", "SourceDatasets": []})
    rows = []
    for label, (side, outcome, prob, with_model) in SUBJECTS.items():
        ents = {"subject": label}
        cx = -30.0 if side == "left" else 30.0
        write_nifti(derivative_path(out, ents, space="model", desc="preproc", suffix="dwi", extension=".nii.gz"),
                    _img(_head(MODEL_AFFINE, MODEL_GRID) + (_head(MODEL_AFFINE, MODEL_GRID, cx, True) * 1.5)
                         + 0.05 * rng.random(MODEL_GRID), MODEL_AFFINE), {"SkullStripped": True})
        write_nifti(derivative_path(out, ents, space="model", label="lesion", suffix="mask", extension=".nii.gz"),
                    _img(_head(MODEL_AFFINE, MODEL_GRID, cx, True), MODEL_AFFINE))
        write_nifti(derivative_path(out, ents, desc="brain", suffix="mask", extension=".nii.gz"),
                    _img(_head(NATIVE_AFFINE, NATIVE_SHAPE) > 0, NATIVE_AFFINE), {"Type": "Brain"})
        b0 = _head(TPL_AFFINE, TPL_SHAPE) * 800 + 20 * rng.random(TPL_SHAPE)
        lesion = _head(TPL_AFFINE, TPL_SHAPE, cx, True)
        write_nifti(derivative_path(out, ents, space=SPACE, res="2", desc="b0", suffix="dwiref",
                                    extension=".nii.gz"), _img(b0, TPL_AFFINE))
        lesion_path = derivative_path(out, ents, space=SPACE, res="2", label="lesion", suffix="mask",
                                      extension=".nii.gz")
        write_nifti(lesion_path, _img(lesion, TPL_AFFINE))
        write_json(derivative_path(out, ents, desc="lesion", suffix="measures", extension=".json"),
                   {"LesionVolume": float(lesion.sum() * 8 / 1000), "LesionVolumeUnits": "mL",
                    "LesionSide": side, "TemplateSpace": SPACE})
        row = {"participant_id": f"sub-{label}", "outcome": outcome, "probability": prob, "threshold": 0.5,
               "side": side, "lesion": lesion_path}
        if with_model:
            p = np.clip(prob + rng.normal(0, 0.08, len(VARIANTS)), 0, 1)
            table = pd.DataFrame({"model": [*VARIANTS, "ensemble"],
                                  "probability_poor": [*p, p.mean()], "threshold": 0.5})
            table["prediction"] = (table.probability_poor >= 0.5).astype(int)
            predictions_tsv = derivative_path(out, ents, desc="ensemble", suffix="predictions", extension=".tsv")
            write_tsv(predictions_tsv, table)
            write_json(sidecar_path(predictions_tsv), predictions_metadata("models/ensemble", CARD_SUMMARY))
            for k, scale in enumerate(("a1", "a2", "a3")):
                x, y, z = _world(TPL_AFFINE, TPL_SHAPE)
                att = np.exp(-((x - cx) ** 2 + (y + 5) ** 2 + (z - 10 - 10 * k) ** 2) / (2 * (12 + 6 * k) ** 2))
                att = att * (_head(TPL_AFFINE, TPL_SHAPE) > 0)
                path = derivative_path(out, ents, space=SPACE, res="2", desc=scale, suffix="attention",
                                       extension=".nii.gz")
                write_nifti(path, _img(att / att.sum(), TPL_AFFINE))
                row[f"attention_{scale}"] = path
        rows.append(row)
    if not group:
        return out

    maps = pd.DataFrame([r for r in rows if r["probability"] is not None])
    write_group_maps(out, maps, space=SPACE)
    n = 16
    outcome = np.array([1, 0] * (n // 2))
    ens = np.clip(0.3 + 0.4 * outcome + rng.normal(0, 0.2, n), 0.01, 0.99)
    predictions = pd.DataFrame({
        "participant_id": [f"sub-{i:02d}" for i in range(1, n + 1)], "site": ["A"] * 6 + ["B"] * 5 + ["C"] * 5,
        "fold": ["A"] * 6 + ["B"] * 5 + ["C"] * 5, "outcome": outcome,
        **{v: np.clip(ens + rng.normal(0, 0.1, n), 0, 1) for v in VARIANTS[:2]},
        "ensemble": ens, "lr_volume": np.clip(0.4 + 0.2 * outcome + rng.normal(0, 0.2, n), 0, 1),
    })
    write_tsv(derivative_path(out, None, datatype="group", desc="loco", suffix="predictions", extension=".tsv"),
              predictions)
    participants = pd.DataFrame({"participant_id": predictions.participant_id,
                                 "age": rng.normal(70, 10, n).round(), "sex": ["F", "M"] * (n // 2)})
    paths = write_group_statistics(out, predictions, participants, n_bootstrap=100, cohort_numeric=["age"],
                                   cohort_categorical=["sex", "outcome"])
    bundle = run_path(out, "ensemble")
    bundle.mkdir(parents=True)
    manifest = {"variants": [{"name": v} for v in VARIANTS[:2]], "threshold": 0.5, "seed": 0}
    write_json(bundle / MANIFEST, manifest)
    card = build_model_card(manifest, *(pd.read_csv(paths[k], sep="\t", na_values=["n/a"]) for k in
                                        ("metrics", "comparisons")),
                            predictions.assign(lesion_volume_ml=rng.gamma(2, 10, n)), outcome_column="mrs",
                            poor_threshold=3, clinical_note="participants.tsv has no column nihss: skipped")
    write_model_card(bundle, card)
    return out


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    out = _build_output_dir(tmp_path_factory.mktemp("reports") / "out", np.random.default_rng(7))
    write_reports(out)
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, value))


def _reports(out: Path) -> list[Path]:
    return sorted(out.glob("*.html"))


def test_every_report_is_written(output_dir):
    names = [p.name for p in _reports(output_dir)]
    assert names == ["group.html"] + [f"sub-{s}.html" for s in SUBJECTS]
    assert run_path(output_dir, "citation").is_file()


def test_references_exist_and_nothing_is_external(output_dir):
    for report in _reports(output_dir):
        text = report.read_text()
        parser = _Links()
        parser.feed(text)
        parser.close()
        assert "html" in parser.tags and "body" in parser.tags
        assert "http://" not in text and "https://" not in text and "//" not in "".join(v for _, v in parser.refs)
        assert "script" not in parser.tags and "link" not in parser.tags
        images = [v for tag, v in parser.refs if tag == "img"]
        assert images, report
        for _, value in parser.refs:
            if value.startswith("#"):
                continue
            target = output_dir / value
            assert target.is_file(), f"{report.name} refers to {value}, which does not exist"
            assert target.resolve().is_relative_to(output_dir.resolve())


def test_group_report_content(output_dir):
    text = report_path(output_dir).read_text()
    parser = _Links()
    parser.feed(text)
    refs = [v for _, v in parser.refs]
    for table in ("desc-loco_metrics.tsv", "desc-comparisons_stats.tsv", "desc-cohort_table.tsv",
                  "desc-loco_predictions.tsv", f"space-{SPACE}_res-2_desc-attention_stats.tsv"):
        assert f"group/{table}" in refs
    assert "group/desc-roc_metrics.png" in refs and "group/desc-calibration_predictions.png" in refs
    assert "group/desc-decision_curve.png" in refs and "group/desc-decision_curve.tsv" in refs
    assert "models/ensemble/model_card.md" in refs
    assert "cal. slope" in text and "Brier" in text
    # the model card's summary, limitations and the skipped clinical models
    card = json.loads((run_path(output_dir, "ensemble") / MANIFEST).read_text())["model_card"]
    assert escape(card["summary"]) in text and "has no column nihss: skipped" in text
    assert all(escape(item) in text for item in card["limitations"])
    # the cohort table reads with one column per site, rounded; the TSV keeps full precision
    cohort = pd.read_csv(output_dir / "group" / "desc-cohort_table.tsv", sep="\t")
    assert "<th>A</th>" in text and "<th>B</th>" in text and "site_A" not in text
    p = float(cohort.loc[cohort["characteristic"] == "age", "p_value"].iloc[0])
    assert len(repr(p)) > 6 and (f"<td>{p:.3f}</td>" in text or "<td>&lt; 0.001</td>" in text)
    assert f"group/hemi-L_space-{SPACE}_res-2_desc-TP_attention.png" in refs
    assert "No participant in this group." in text
    assert "Moulton" in text and "Jetley" in text and "DeLong" in text
    assert "sub-01.html" in refs and "logs/CITATION.md" in refs
    assert "logs/CITATION.html" in refs and "logs/CITATION.bib" in refs
    text = run_path(output_dir, "citation").read_text()
    for name in ("Moulton", "Jetley", "Avants", "Dipy", "Nipype", "Keras", "numpy", "bids-stroke"):
        assert name.lower() in text.lower()


def test_participant_reports_degrade_without_model(output_dir):
    with_model = (output_dir / "sub-01.html").read_text()
    assert "Probability of a poor outcome" in with_model and "sub-01_space-" in with_model
    assert CARD_SUMMARY in with_model
    assert "sub-01/figures/sub-01_desc-ensemble_predictions.png" in with_model
    assert f"sub-01/figures/sub-01_space-{SPACE}_desc-overlay_attention.png" in with_model
    without = (output_dir / "sub-05.html").read_text()
    assert "without a trained ensemble (--model)" in without
    assert "attention.png" not in without
    assert "sub-05/figures/sub-05_desc-brainmask_dwi.png" in without
    assert f"sub-05/figures/sub-05_space-{SPACE}_desc-registration_dwiref.png" in without


def test_reports_without_group_level(tmp_path):
    out = _build_output_dir(tmp_path / "out", np.random.default_rng(1), group=False)
    paths = write_reports(out, subjects=["sub-05"])
    assert [p.name for p in paths] == ["sub-05.html", "CITATION.md", "group.html"]
    text = report_path(out).read_text()
    assert "The group level has not been run" in text
    assert "Group report" not in (out / "sub-05.html").read_text()


def _digest(out: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


#: Functions that compute results (module -> names): a report reads what they wrote.
COMPUTING = {
    "bids_stroke.maps": ("write_group_maps", "mean_map", "map_groups", "classification_groups",
                         "attention_summary"),
    "bids_stroke.stats": ("write_group_statistics", "loco_metrics_table", "bootstrap_metrics",
                          "classification_metrics", "comparisons_table", "compare_to_reference", "cohort_table",
                          "add_loco_baselines", "loco_baseline", "delong_test", "mcnemar_test"),
    "bids_stroke.model": ("load_bundle", "predict_participant", "attention_image", "upsample_attention",
                          "to_native", "build_variant"),
    "bids_stroke.preprocess": ("b0_and_trace", "brain_mask", "normalize_intensity", "crop_box",
                               "lesion_side", "lesion_volume_ml", "compute_adc"),
}


def _forbid_computing(monkeypatch) -> int:
    """Make every :data:`COMPUTING` function raise, wherever a report module could take it from.

    Each is replaced in its package, in the module that defines it (for imports inside
    functions) and in every module of :mod:`bids_stroke.report` that imported it.
    """
    def forbidden(*args, **kwargs):
        raise AssertionError("regenerating reports must not recompute results")

    import bids_stroke.report

    reports = [importlib.import_module(info.name)
               for info in pkgutil.walk_packages(bids_stroke.report.__path__, "bids_stroke.report.")]
    patched = 0
    for package_name, names in COMPUTING.items():
        package = importlib.import_module(package_name)
        for name in names:
            function = getattr(package, name)
            holders = [package, importlib.import_module(function.__module__)]
            holders += [module for module in reports if getattr(module, name, None) is function]
            for holder in holders:
                monkeypatch.setattr(holder, name, forbidden)
                patched += 1
    return patched


def test_regenerated_reports_are_identical_and_recompute_nothing(output_dir, monkeypatch):
    assert _forbid_computing(monkeypatch) >= 2 * sum(len(names) for names in COMPUTING.values())
    before = _digest(output_dir)
    written = write_reports(output_dir)
    after = _digest(output_dir)
    assert sorted(before) == sorted(after)
    for name, (digest, mtime) in before.items():
        assert after[name][0] == digest, f"{name} changed"
        if not name.endswith((".html", ".png", ".md", ".bib")):
            assert after[name][1] == mtime, f"{name} was rewritten"
    assert {p.name for p in written} == {p.name for p in _reports(output_dir)} | {"CITATION.md"}


def test_citation_is_written_once(output_dir, monkeypatch):
    contents = []
    markdown = citation.citation_markdown
    monkeypatch.setattr(citation, "citation_markdown", lambda out: contents.append(out) or markdown(out))
    write_reports(output_dir)
    assert contents == [output_dir]


def test_methods_name_the_variants_trained(output_dir, tmp_path):
    phrase = "an ensemble of two of the eight variants (f8-g1.5, f8-g1.5-bn) of a 3D convolutional network"
    assert phrase in run_path(output_dir, "citation").read_text()
    assert phrase in report_path(output_dir).read_text()
    assert "ensemble of eight" not in report_path(output_dir).read_text()

    assert citation.trained_variants(tmp_path) is None
    assert "an ensemble of variants of a 3D" in citation.citation_markdown(tmp_path)
    manifest = run_path(tmp_path, "ensemble") / "manifest.json"
    write_json(manifest, {"variants": [{"name": v} for v in reversed(VARIANTS)]})
    assert citation.trained_variants(tmp_path) == list(VARIANTS)
    assert "an ensemble of the eight variants of a 3D" in citation.citation_markdown(tmp_path)
    write_json(manifest, {"variants": [{"name": "f16-g2"}]})
    assert "predicted by one of the eight variants (f16-g2) of a 3D" in citation.citation_markdown(tmp_path)


def test_automatic_masks_are_named_in_the_methods_and_cited(tmp_path):
    from bids_stroke.citations import CITATIONS

    loco = tmp_path / "group" / "desc-loco_predictions.tsv"
    write_tsv(loco, pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3"], "lesion_source": ["given"] * 3}))
    markdown = citation.citation_markdown(tmp_path)
    assert "segmented automatically" not in markdown and CITATIONS["straka2010"] not in citation.cited(tmp_path)
    write_tsv(loco, pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3"],
                                  "lesion_source": ["given", "auto", "auto"]}))
    assert "For 2 participants without a given lesion mask, the lesion was segmented automatically" in \
        citation.citation_markdown(tmp_path)
    assert {CITATIONS["straka2010"], CITATIONS["purushotham2015"]} <= set(citation.cited(tmp_path))


def test_one_citation_table(tmp_path):
    from bids_stroke.citations import CITATIONS
    from bids_stroke.spatial import templates

    assert templates.FONOV_CITATION == f"{CITATIONS['fonov2009']} {CITATIONS['fonov2011']}"
    assert templates.TEMPLATEFLOW_CITATION == CITATIONS["templateflow"]
    assert {CITATIONS["fonov2009"], CITATIONS["fonov2011"]} <= set(citation.cited(tmp_path))


def test_citation_markdown_html_and_bibtex_come_from_one_table(output_dir):
    """logs/CITATION.md and .html: the same boilerplate and the references it cites; .bib:
    every reference of the table, those cited first."""
    from test_citations import parse_bibtex

    from bids_stroke.citations import BIBLIOGRAPHY, CITATIONS, bibtex

    keys = citation.cited_keys(output_dir)
    markdown = run_path(output_dir, "citation").read_text()
    page = run_path(output_dir, "citation_html").read_text()
    bib = run_path(output_dir, "citation_bib").read_text()
    entries = parse_bibtex(bib)
    assert list(entries) == citation.bibtex_keys(output_dir)
    assert list(entries)[:len(keys)] == keys and set(entries) == set(BIBLIOGRAPHY)
    for key in BIBLIOGRAPHY:
        assert bibtex(key) in bib
    for key in keys:
        assert CITATIONS[key] in markdown and str(escape(CITATIONS[key])) in page
    for key in set(BIBLIOGRAPHY) - set(keys):
        assert CITATIONS[key] not in markdown and str(escape(CITATIONS[key])) not in page
    methods = markdown.split("## Methods\n\n")[1].split("\n")[0]
    assert str(escape(methods)) in page and "bids-stroke" in methods
    bib_name = run_path(output_dir, "citation_bib").name
    assert f'<a href="{bib_name}">' in page and bib_name in markdown


@pytest.mark.parametrize("sources", [["given"] * 3, ["given", "auto", "auto"]])
def test_the_boilerplate_cites_only_listed_references(tmp_path, sources):
    """Every reference the methods paragraph cites by author and year is in the list below it."""
    from bids_stroke.citations import BIBLIOGRAPHY, author_year

    write_tsv(tmp_path / "group" / "desc-loco_predictions.tsv",
              pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3"], "lesion_source": sources}))
    methods = citation.citation_markdown(tmp_path).split("## Methods\n\n")[1].split("\n")[0]
    in_text = {key for key in BIBLIOGRAPHY if author_year(key) in methods}
    in_text |= {key for key in BIBLIOGRAPHY if author_year(key).replace(", ", " (") + ")" in methods}
    assert {"moulton2023", "jetley2018", "ants", "delong"} <= in_text
    assert in_text <= set(citation.cited_keys(tmp_path))
    assert ("straka2010" in in_text) == ("auto" in sources)


def test_single_reports_match_write_reports(output_dir):
    before = report_path(output_dir, "03").read_bytes()
    assert write_participant_report(output_dir, "sub-03").read_bytes() == before
    before = report_path(output_dir).read_bytes()
    assert write_group_report(output_dir).read_bytes() == before


def test_reports_drawn_by_two_processes_are_the_same(output_dir):
    """write_reports(n_procs=2) writes the very same files (figures too), in the same order."""
    before = _digest(output_dir)
    written = write_reports(output_dir, n_procs=2)
    after = _digest(output_dir)
    assert {name: d for name, (d, _) in after.items()} == {name: d for name, (d, _) in before.items()}
    assert [p.name for p in written[:len(SUBJECTS)]] == [f"sub-{s}.html" for s in SUBJECTS]


def test_montage_slices_follow_the_affine(tmp_path):
    assert figures.slice_indices(TPL_AFFINE, TPL_SHAPE) == [2, 7, 12, 17, 22, 27, 32, 37, 42, 47]
    flipped = nib.as_closest_canonical(_img(np.zeros(TPL_SHAPE), TPL_AFFINE @ np.diag([1, 1, 1, 1.0])))
    assert figures.slice_indices(flipped.affine, TPL_SHAPE, [64, 70]) == [47, None]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH: install Debian's chromium "
                                              "(apt-get install chromium) to screenshot the HTML reports")
def test_headless_chromium_screenshots_are_not_blank(output_dir, tmp_path):
    import matplotlib.image as mpimg

    for report in _reports(output_dir):
        shot = tmp_path / f"{report.stem}.png"
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             f"--screenshot={shot}", "--window-size=1200,1600", report.resolve().as_uri()],
            check=True, capture_output=True, timeout=60,
        )
        pixels = mpimg.imread(shot)[..., :3]
        assert pixels.shape[:2] == (1600, 1200)
        not_white = (pixels < 0.95).any(axis=-1).mean()
        assert pixels.std() > 0.05 and not_white > 0.05, f"{report.name}: screenshot looks blank"


def test_session_outputs_and_missing_template_space_files(tmp_path):
    out = tmp_path / "out"
    ents = {"subject": "07", "session": "acute"}
    write_nifti(derivative_path(out, ents, space="model", desc="preproc", suffix="dwi", extension=".nii.gz"),
                _img(_head(MODEL_AFFINE, MODEL_GRID), MODEL_AFFINE))
    write_nifti(derivative_path(out, ents, desc="brain", suffix="mask", extension=".nii.gz"),
                _img(_head(NATIVE_AFFINE, NATIVE_SHAPE) > 0, NATIVE_AFFINE))
    write_json(derivative_path(out, ents, desc="lesion", suffix="measures", extension=".json"),
               {"LesionVolume": None, "LesionSide": None, "Note": "no lesion mask was found for this participant"})
    report = write_participant_report(out, "07", session="acute")
    assert report == report_path(out, "07")
    text = report.read_text()
    assert "sub-07/figures/sub-07_ses-acute_desc-brainmask_dwi.png" in text
    assert (out / "sub-07" / "figures" / "sub-07_ses-acute_desc-brainmask_dwi.png").is_file()
    assert "no lesion mask was found" in text and "no registration check" in text
    assert "without a trained ensemble" in text
