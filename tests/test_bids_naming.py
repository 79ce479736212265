"""Output names: every INTERFACE name built, parsed back and found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bids_stroke.bids import naming as d

SOURCE = {"subject": "01", "session": "pre", "rec": "TRACE", "suffix": "dwi", "datatype": "dwi"}


_INTERFACE_NAMES = [
        (dict(space="model", desc="preproc", suffix="dwi", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-model_desc-preproc_dwi.nii.gz"),
        (dict(desc="brain", suffix="mask", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-brain_mask.nii.gz"),
        ({"from": "dwi", "to": "MNI152NLin2009cAsym", "mode": "image", "suffix": "xfm", "extension": ".h5"},
         "sub-01/ses-pre/dwi/sub-01_ses-pre_from-dwi_to-MNI152NLin2009cAsym_mode-image_xfm.h5"),
        ({"from": "MNI152NLin2009cAsym", "to": "dwi", "mode": "image", "suffix": "xfm", "extension": ".h5"},
         "sub-01/ses-pre/dwi/sub-01_ses-pre_from-MNI152NLin2009cAsym_to-dwi_mode-image_xfm.h5"),
        (dict(space="MNI152NLin2009cAsym", res="2", label="lesion", suffix="mask", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_label-lesion_mask.nii.gz"),
        (dict(space="MNI152NLin2009cAsym", res="2", desc="b0", suffix="dwiref", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_desc-b0_dwiref.nii.gz"),
        (dict(label="lesion", desc="auto", suffix="mask", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_label-lesion_desc-auto_mask.nii.gz"),
        (dict(desc="lesion", suffix="measures", extension=".json"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-lesion_measures.json"),
        (dict(desc="ensemble", suffix="predictions", extension=".tsv"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-ensemble_predictions.tsv"),
        (dict(desc="a2", suffix="attention", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_desc-a2_attention.nii.gz"),
        (dict(space="MNI152NLin2009cAsym", res="2", desc="a3", suffix="attention", extension=".nii.gz"),
         "sub-01/ses-pre/dwi/sub-01_ses-pre_space-MNI152NLin2009cAsym_res-2_desc-a3_attention.nii.gz"),
        (dict(datatype="figures", desc="registration", suffix="dwi", extension=".svg"),
         "sub-01/figures/sub-01_ses-pre_desc-registration_dwi.svg"),
        (dict(datatype="group", desc="loco", suffix="predictions", extension=".tsv"),
         "group/desc-loco_predictions.tsv"),
        (dict(datatype="group", desc="comparisons", suffix="stats", extension=".tsv"),
         "group/desc-comparisons_stats.tsv"),
        (dict(datatype="group", desc="cohort", suffix="table", extension=".tsv"),
         "group/desc-cohort_table.tsv"),
        (dict(datatype="group", space="MNI152NLin2009cAsym", res="2", hemi="L", desc="a1",
              suffix="attention", extension=".nii.gz"),
         "group/hemi-L_space-MNI152NLin2009cAsym_res-2_desc-a1_attention.nii.gz"),
]


@pytest.mark.parametrize(("entities", "expected"), _INTERFACE_NAMES)
def test_derivative_path_matches_interface(tmp_path, entities, expected):
    assert d.derivative_path(tmp_path, SOURCE, **entities) == tmp_path / expected


def test_derivative_path_without_session_keeps_acq_and_run_drops_rec(tmp_path):
    source = {"subject": "7", "acquisition": "ax", "run": 2, "rec": "TRACE"}
    path = d.derivative_path(tmp_path, source, space="model", desc="preproc", suffix="dwi", extension=".nii.gz")
    assert path == tmp_path / "sub-7/dwi/sub-7_acq-ax_run-2_space-model_desc-preproc_dwi.nii.gz"


@pytest.mark.parametrize(
    "entities",
    [
        dict(desc="x", suffix="bogus", extension=".nii.gz"),  # unknown suffix
        dict(desc="x", suffix="dwi", extension=".mat"),  # unknown extension
        dict(desc="x", suffix="dwi", extension=".nii.gz", hemi="left"),  # hemi must be L/R
        dict(desc="x", suffix="dwi"),  # no extension
        dict(desc="a_b", suffix="dwi", extension=".nii.gz"),  # not a BIDS label
    ],
)
def test_derivative_path_refuses_what_no_pattern_expresses(tmp_path, entities):
    with pytest.raises(ValueError, match="No derivatives path pattern|must be"):
        d.derivative_path(tmp_path, SOURCE, **entities)


def test_report_and_sidecar_paths(tmp_path):
    assert d.report_path(tmp_path, "01") == tmp_path / "sub-01.html"
    assert d.report_path(tmp_path) == tmp_path / "group.html"
    assert d.sidecar_path(tmp_path / "a_dwi.nii.gz") == tmp_path / "a_dwi.json"
    with pytest.raises(ValueError, match="'path' must name"):
        d.sidecar_path(tmp_path / "a.txt")


#: Names of the group maps (bids_stroke.maps.group_maps) and report figures, beside INTERFACE's.
MORE_NAMES = [
    "group/hemi-R_space-MNI152NLin2009cAsym_res-2_desc-a2TP_attention.nii.gz",
    "group/hemi-L_space-MNI152NLin2009cAsym_res-2_label-lesion_desc-FN_probseg.nii.gz",
    "group/space-MNI152NLin2009cAsym_res-2_desc-attention_stats.tsv",
    "group/hemi-L_space-MNI152NLin2009cAsym_res-2_desc-TP_attention.png",
    "group/desc-loco_metrics.tsv",
    "group/desc-loco_metrics.json",
    "sub-01/figures/sub-01_ses-pre_desc-attention_dwi.png",
    "sub-01/dwi/sub-01_acq-fast_run-2_space-model_label-lesion_mask.nii.gz",
    "sub-01/ses-pre/dwi/sub-01_ses-pre_space-model_desc-preproc_dwi.json",
]


@pytest.mark.parametrize("relative", [expected for _, expected in _INTERFACE_NAMES] + MORE_NAMES)
def test_every_output_name_parses_back_into_its_entities(tmp_path, relative):
    entities = d.parse_derivative(tmp_path / relative, tmp_path)
    assert entities is not None, relative
    assert d.derivative_path(tmp_path, entities, **entities) == tmp_path / relative
    assert d.parse_derivative(tmp_path / "elsewhere" / relative, tmp_path / "out") is None


def test_parse_keeps_each_entity_apart(tmp_path):
    entities = d.parse_derivative(
        tmp_path / "sub-01/ses-pre/dwi/sub-01_ses-pre_from-dwi_to-MNI152NLin2009cAsym_mode-image_xfm.h5", tmp_path)
    assert entities == {"subject": "01", "session": "pre", "datatype": "dwi", "from": "dwi",
                        "to": "MNI152NLin2009cAsym", "mode": "image", "suffix": "xfm", "extension": ".h5"}


@pytest.mark.parametrize("relative", [
    "sub-01/dwi/sub-02_desc-brain_mask.nii.gz",        # subject of the folder and the name differ
    "sub-01/ses-a/dwi/sub-01_ses-b_desc-brain_mask.nii.gz",
    "sub-01/dwi/sub-01_desc-brain_mask.nii",           # not an output extension
    "sub-01/dwi/sub-01_hemi-X_desc-a1_attention.nii.gz",
    "group/sub-01_desc-loco_predictions.tsv",
    "models/ensemble/manifest.json",
    "sub-01.html",
])
def test_what_is_not_an_output_name_does_not_parse(tmp_path, relative):
    assert d.parse_derivative(tmp_path / relative, tmp_path) is None


def test_find_derivatives_selects_by_entities(tmp_path):
    names = [expected for _, expected in _INTERFACE_NAMES] + MORE_NAMES + [
        "sub-02/dwi/sub-02_space-model_desc-preproc_dwi.nii.gz",
        "sub-02/dwi/.tmp-123-sub-02_space-model_desc-preproc_dwi.nii.gz",   # a writer's temporary file
        "sub-02/dwi/notes.txt",
        "models/ensemble/manifest.json",
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    preproc = dict(space="model", desc="preproc", suffix="dwi", extension=".nii.gz")
    assert d.find_derivatives(tmp_path, **preproc) == [
        tmp_path / "sub-01/ses-pre/dwi/sub-01_ses-pre_space-model_desc-preproc_dwi.nii.gz",
        tmp_path / "sub-02/dwi/sub-02_space-model_desc-preproc_dwi.nii.gz",
    ]
    assert d.find_derivatives(tmp_path, subject="02", **preproc) == [
        tmp_path / "sub-02/dwi/sub-02_space-model_desc-preproc_dwi.nii.gz"]
    assert d.find_derivatives(tmp_path, subject="02", session="pre", **preproc) == []
    assert d.find_derivatives(tmp_path, subject="01", session=None, **preproc) == []
    xfms = d.find_derivatives(tmp_path, subject="01", **{"from": "dwi", "to": d.ANY}, suffix="xfm")
    assert [p.name for p in xfms] == ["sub-01_ses-pre_from-dwi_to-MNI152NLin2009cAsym_mode-image_xfm.h5"]
    group_maps = d.find_derivatives(tmp_path, datatype="group", hemi=("L", "R"), suffix="attention",
                                    extension=".nii.gz")
    assert [p.name for p in group_maps] == ["hemi-L_space-MNI152NLin2009cAsym_res-2_desc-a1_attention.nii.gz",
                                            "hemi-R_space-MNI152NLin2009cAsym_res-2_desc-a2TP_attention.nii.gz"]
    labelled = d.find_derivatives(tmp_path, datatype="group", label=d.ANY)
    assert [p.name for p in labelled] == ["hemi-L_space-MNI152NLin2009cAsym_res-2_label-lesion_desc-FN_probseg.nii.gz"]
    assert d.find_derivatives(tmp_path / "missing", **preproc) == []


def test_run_paths(tmp_path):
    assert d.run_path(tmp_path, "loco_job", fold="siteA", variant="f16-g1.5-bn") == \
        tmp_path / "models/loco/fold-siteA/f16-g1.5-bn"
    assert d.run_path(tmp_path, "final_job", variant="f8-g2") == tmp_path / "models/all/f8-g2"
    assert d.run_path(tmp_path, "fold_predictions", fold="B") == tmp_path / "models/loco/fold-B/predictions.tsv"
    assert d.run_path(tmp_path, "ensemble") == tmp_path / "models/ensemble"
    assert d.run_path(tmp_path, "config", run_id="20260101-000000_abc123") == \
        tmp_path / "logs/config-20260101-000000_abc123.json"
    assert d.run_path(tmp_path, "citation") == tmp_path / "logs/CITATION.md"
    with pytest.raises(ValueError, match="'fold'"):
        d.run_path(tmp_path, "loco_job", fold="../x", variant="f8-g2")
    with pytest.raises(ValueError, match="needs 'variant'"):
        d.run_path(tmp_path, "loco_job", fold="A")
    with pytest.raises(ValueError, match="'kind' must be one of"):
        d.run_path(tmp_path, "weights")


@pytest.mark.parametrize(("entities", "expected"), [
    (dict(subject="01", reconstruction="TRACE", datatype="dwi", suffix="dwi", extension=".nii.gz"),
     "sub-01/dwi/sub-01_rec-TRACE_dwi.nii.gz"),
    (dict(subject="01", session="acute", datatype="dwi", suffix="dwi", extension=".bvec"),
     "sub-01/ses-acute/dwi/sub-01_ses-acute_dwi.bvec"),
    (dict(subject="01", session=None, reconstruction="ADC", datatype="dwi", suffix="dwi",
          extension=".json"),
     "sub-01/dwi/sub-01_rec-ADC_dwi.json"),
])
def test_raw_paths_follow_bids(tmp_path, entities, expected):
    assert d.raw_path(tmp_path, **entities) == tmp_path / expected


def test_raw_path_refuses_what_bids_does_not_name(tmp_path):
    with pytest.raises(ValueError, match="No raw BIDS path pattern"):
        d.raw_path(tmp_path, subject="01", datatype="dwi", suffix="dwi", extension=".mat")
    with pytest.raises(ValueError, match="alphanumeric"):
        d.raw_path(tmp_path, subject="0_1", datatype="dwi", suffix="dwi", extension=".nii.gz")


def test_truth_paths(tmp_path):
    lesion = d.truth_path(tmp_path, subject="01", session="acute", space="MNI152NLin2009aSym",
                          res="1", label="lesion", suffix="mask", extension=".nii.gz")
    assert lesion == tmp_path / ("truth/sub-01/ses-acute/"
                                 "sub-01_ses-acute_space-MNI152NLin2009aSym_res-1_label-lesion_mask.nii.gz")
    field = d.truth_path(tmp_path, subject="01", to="MNI152NLin2009aSym", desc="displacement",
                         suffix="xfm", extension=".nii.gz", **{"from": "scanner"})
    assert field == tmp_path / ("truth/sub-01/"
                                "sub-01_from-scanner_to-MNI152NLin2009aSym_desc-displacement_xfm.nii.gz")
    assert d.truth_path(tmp_path, subject="01", suffix="simulation", extension=".json") == \
        tmp_path / "truth/sub-01/sub-01_simulation.json"
    with pytest.raises(ValueError, match="No ground-truth path pattern"):
        d.truth_path(tmp_path, subject="01", suffix="dwi", extension=".nii.gz")


# -- entity order of the BIDS schema ---------------------------------------------------------

#: Keys of output names that are not entities of the BIDS schema: the NiPreps' transform
#: convention (``_from-X_to-Y_mode-image_xfm.h5``).
NON_SCHEMA_KEYS = ("from", "to", "mode")


def schema_entity_order() -> list[str]:
    """The short keys of the schema's entities (``sub``, ``ses``, ..., ``hemi``, ``space``, ...), in order."""
    from bidsschematools import schema

    loaded = schema.load_schema()
    return [loaded.objects.entities[name].name for name in loaded.rules.entities]


def entity_keys(name: str) -> list[str]:
    """The keys of a file name's ``key-value`` parts, in order (``sub``, ``space``, ...).

    Names as the docs spell them are accepted: a folder part, optional parts in brackets
    and placeholders (``sub-<L>[_ses-<S>]_space-<TPL>_desc-<a1|a2|a3>_attention.nii.gz``).
    """
    stem = Path(name.replace("[", "").replace("]", "")).name.split(".")[0]
    return re.findall(r"(?:^|_)([A-Za-z]+)-", stem)


def key_order_errors(keys: list[str], order: list[str], *, strict: bool = True) -> list[str]:
    """What in a sequence of entity keys breaks the schema's order (empty when nothing does).

    With ``strict``, a key that is neither a schema entity nor one of
    :data:`NON_SCHEMA_KEYS` is an error too.
    """
    errors = [f"'{key}' is not an entity" for key in keys
              if strict and key not in order and key not in NON_SCHEMA_KEYS]
    ranks = [order.index(key) for key in keys if key in order]
    if ranks != sorted(ranks):
        errors.append(f"entities {[k for k in keys if k in order]} are not in the schema's order")
    return errors


def entity_order_errors(name: str, order: list[str], *, strict: bool = True) -> list[str]:
    """What in a file name breaks the schema's entity order (empty when nothing does)."""
    return key_order_errors(entity_keys(name), order, strict=strict)


def _group_map_names(tmp_path) -> list[str]:
    from bids_stroke.maps import ALL_GROUP, CLASSIFICATION_GROUPS, group_map_path, summary_path
    from bids_stroke.model.spec import SCALES

    names = [summary_path(tmp_path, space="MNI152NLin2009cAsym").name]
    for hemi in ("L", "R"):
        for group in (ALL_GROUP, *CLASSIFICATION_GROUPS):
            for scale in (None, *SCALES):
                names.append(group_map_path(tmp_path, space="MNI152NLin2009cAsym", hemi=hemi, group=group,
                                            scale=scale).name)
            names.append(group_map_path(tmp_path, space="MNI152NLin2009cAsym", hemi=hemi, group=group,
                                        extension=".png").name)
    return names


def test_every_output_name_follows_the_schema_entity_order(tmp_path):
    """INTERFACE's names, the group maps and their figures: a name whose entities drift from
    the BIDS schema's order (e.g. ``space-X_res-2_hemi-L``) fails here."""
    order = schema_entity_order()
    assert order.index("hemi") < order.index("space") < order.index("res") < order.index("desc")
    names = [Path(expected).name for _, expected in _INTERFACE_NAMES] + [Path(n).name for n in MORE_NAMES]
    names += _group_map_names(tmp_path)
    assert len(names) > 60
    problems = {name: entity_order_errors(name, order) for name in names}
    assert {name: errors for name, errors in problems.items() if errors} == {}
    # the check itself sees a drifted name
    assert entity_order_errors("space-MNI152NLin2009cAsym_res-2_hemi-L_desc-a1_attention.nii.gz", order)
    assert entity_order_errors("sub-01_foo-1_desc-x_dwi.nii.gz", order) == ["'foo' is not an entity"]


def pattern_keys(pattern: str) -> list[str]:
    """The entity keys of the file-name part of a pybids path pattern, in order."""
    return re.findall(r"([A-Za-z]+)-\{", pattern.rsplit("/", 1)[-1])


@pytest.mark.parametrize("pattern", [*d.PATH_PATTERNS, *d.TRUTH_PATTERNS])
def test_every_path_pattern_follows_the_schema_entity_order(pattern):
    """Every name the package builds comes from these patterns: an entity added to one out
    of the schema's order fails here, before any name is built."""
    keys = pattern_keys(pattern)
    assert "desc" in keys or "suffix" in pattern
    assert key_order_errors(keys, schema_entity_order()) == []


def test_the_pattern_check_sees_the_old_group_map_order():
    old = "{datatype<group>}/[space-{space}_][res-{res}_][hemi-{hemi<L|R>}_]desc-{desc}_{suffix}{extension}"
    assert pattern_keys(old) == ["space", "res", "hemi", "desc"]
    assert key_order_errors(pattern_keys(old), schema_entity_order())


#: The README, which spells the output names for users.
README = Path(__file__).resolve().parents[1] / "README.md"

#: A file name as the README writes it (with placeholders, optional parts, a folder).
_DOC_NAME = re.compile(r"[\w<>\[\]|,*{}./-]+\.(?:nii\.gz|nii|json|tsv|h5|svg|png)\b")


def documented_names(text: str) -> list[str]:
    """The file names with entities that a Markdown text spells."""
    return sorted({name for name in _DOC_NAME.findall(text) if entity_keys(name)})


def test_every_name_the_readme_spells_follows_the_schema_entity_order():
    order = schema_entity_order()
    names = documented_names(README.read_text(encoding="utf-8"))
    assert any(name.startswith("group/hemi-") for name in names), "the README names the group maps"
    assert len(names) > 20
    # logs/ and models/ names (participant-<run>, fold-<F>) are not BIDS names: order only
    assert {name: entity_order_errors(name, order, strict=False) for name in names
            if entity_order_errors(name, order, strict=False)} == {}
    drifted = documented_names("`group/space-<TPL>_res-2_hemi-<L|R>_desc-<a1|a2|a3>_attention.nii.gz`")
    assert drifted and entity_order_errors(drifted[0], order)


def test_bids_uri_names_the_dataset_that_holds_the_file(tmp_path):
    raw, out = tmp_path / "bids", tmp_path / "bids" / "derivatives" / "bids-stroke"
    lesions = tmp_path / "bids" / "derivatives" / "lesions"
    links = {d.RAW_DATASET: raw, d.LESION_DATASET: lesions}
    assert d.bids_uri(raw / "sub-01/dwi/sub-01_dwi.nii.gz", out, links) == "bids:raw:sub-01/dwi/sub-01_dwi.nii.gz"
    # the deepest dataset wins: OUTPUT_DIR and the lesion dataset lie inside BIDS_DIR
    assert d.bids_uri(lesions / "sub-01/anat/m.nii.gz", out, links) == "bids:lesions:sub-01/anat/m.nii.gz"
    assert d.bids_uri(out / "sub-01/dwi/a_mask.nii.gz", out, links) == "bids::sub-01/dwi/a_mask.nii.gz"
    # without the lesion link, a mask under BIDS_DIR/derivatives is a file of BIDS_DIR
    assert d.bids_uri(lesions / "m.nii.gz", out, {d.RAW_DATASET: raw}) == "bids:raw:derivatives/lesions/m.nii.gz"
    elsewhere = tmp_path / "other" / "m.nii.gz"
    assert d.bids_uri(elsewhere, out, links) == elsewhere.as_uri()
