"""The methods boilerplate and the references: ``OUTPUT_DIR/logs/CITATION.md``, ``.html`` and ``.bib``.

The methods paragraph follows what OUTPUT_DIR holds: the template space of the group maps
and the variants of the trained ensemble (:func:`trained_variants`); the group report
shows the same paragraph and references. The three files come from one table
(:data:`bids_stroke.citations.BIBLIOGRAPHY`): the paragraph cites its entries by author and
year (:func:`bids_stroke.citations.author_year`), the ``.md`` and ``.html`` list the cited
ones (:func:`cited_keys`), the ``.bib`` holds every entry, the cited ones first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from markupsafe import escape

from bids_stroke.bids.naming import run_path
from bids_stroke.bids.writers import write_text
from bids_stroke.citations import BIBLIOGRAPHY, CITATIONS, author_year, bibtex
from bids_stroke.config import VARIANT_NAMES
from bids_stroke.preprocess.brainmask import GRID_MM
from bids_stroke.model.spec import MANIFEST
from bids_stroke.preprocess.lesion_auto import ADC_THRESHOLD, MIN_COMPONENT_ML, TRACE_RATIO
from bids_stroke.report.common import (
    group_space,
    lesion_source_counts,
    loco_predictions_path,
    read_json,
    read_tsv,
    software_versions,
)
from bids_stroke.spatial.templates import DEFAULT_TEMPLATE

__all__ = [
    "REFERENCES",
    "bibtex_keys",
    "cited",
    "cited_keys",
    "citation_bibtex",
    "citation_html",
    "citation_markdown",
    "ensemble_phrase",
    "methods_text",
    "trained_variants",
    "write_citation",
]

#: Keys of :data:`bids_stroke.citations.CITATIONS` that every report cites, in order.
REFERENCES = ("moulton2023", "jetley2018", "ants", "dipy", "nipype", "keras", "tensorflow", "delong", "bids",
              "fonov2009", "fonov2011")


_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")


# ---------------------------------------------------------------------------------------
# What was run
# ---------------------------------------------------------------------------------------
def _data_sources(output_dir: Path) -> list[str]:
    """Extra citations for the data used: SOOP (simulated cohorts), ISLES."""
    description = read_json(output_dir / "dataset_description.json") or {}
    text = json.dumps(description.get("SourceDatasets", [])).lower()
    keys = []
    if "simulat" in text or "soop" in text or "ds004889" in text:
        keys.append("soop")
    if "isles" in text:
        keys.append("isles")
    return keys


def trained_variants(output_dir: str | os.PathLike) -> list[str] | None:
    """The variants of the ensemble trained in OUTPUT_DIR, in :data:`~bids_stroke.config.VARIANT_NAMES` order.

    Read from the final ensemble's ``models/ensemble/manifest.json``, else from the
    columns of ``group/desc-loco_predictions.tsv``.

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.

    Returns
    -------
    list of str or None
        None when OUTPUT_DIR holds neither file (the ensemble was trained elsewhere).
    """
    out = Path(output_dir)
    manifest = read_json(run_path(out, "ensemble") / MANIFEST)
    if isinstance(manifest, dict) and isinstance(manifest.get("variants"), list):
        names = {str(entry.get("name")) for entry in manifest["variants"] if isinstance(entry, dict)}
    else:
        predictions = read_tsv(loco_predictions_path(out))
        if predictions is None:
            return None
        names = {str(column) for column in predictions.columns}
    return [name for name in VARIANT_NAMES if name in names]


def ensemble_phrase(variants: Sequence[str] | None) -> str:
    """How the methods name the ensemble: of the eight variants, or of which of them.

    Examples
    --------
    >>> ensemble_phrase(["f8-g1.5", "f8-g1.5-bn"])
    'an ensemble of two of the eight variants (f8-g1.5, f8-g1.5-bn) of a 3D convolutional network'
    """
    total = _NUMBERS[len(VARIANT_NAMES)]
    if not variants:
        return "an ensemble of variants of a 3D convolutional network"
    if list(variants) == list(VARIANT_NAMES):
        return f"an ensemble of the {total} variants of a 3D convolutional network"
    which = f"{_NUMBERS[len(variants)]} of the {total} variants ({', '.join(variants)})"
    return f"{which} of a 3D convolutional network" if len(variants) == 1 else \
        f"an ensemble of {which} of a 3D convolutional network"


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------
def _auto_masks(output_dir: Path) -> int:
    """How many participants of the group level had an automatic lesion mask."""
    return lesion_source_counts(read_tsv(loco_predictions_path(output_dir))).get("auto", 0)


def cited_keys(output_dir: str | os.PathLike) -> list[str]:
    """The keys of the references of the reports: :data:`REFERENCES`, the automatic lesion
    masks' when some were used, and those of the data used."""
    out = Path(output_dir)
    masks = ("straka2010", "purushotham2015") if _auto_masks(out) else ()
    return [*REFERENCES, *masks, *_data_sources(out)]


def cited(output_dir: str | os.PathLike) -> list[str]:
    """The references of the reports as text (:func:`cited_keys`)."""
    return [CITATIONS[key] for key in cited_keys(output_dir)]


def _cite(*keys: str) -> str:
    """``(Avants et al., 2008; Garyfallidis et al., 2014)``: references in parentheses."""
    return "(" + "; ".join(author_year(key) for key in keys) + ")"


def _in_text(key: str) -> str:
    """``Moulton et al. (2023)``: a reference named in the flow of the text."""
    who, _, year = author_year(key).rpartition(", ")
    return f"{who} ({year})"


def methods_text(versions: dict[str, str], space: str | None, variants: Sequence[str] | None, *,
                 auto_masks: int = 0) -> str:
    """The methods paragraph.

    Parameters
    ----------
    versions : dict
        :func:`~bids_stroke.report.common.software_versions`.
    space : str or None
        Template space of the outputs; None means :data:`~bids_stroke.spatial.templates.DEFAULT_TEMPLATE`.
    variants : sequence of str or None
        :func:`trained_variants` (variant names from :data:`~bids_stroke.config.VARIANT_NAMES`).
    auto_masks : int, default=0
        Participants whose lesion mask was segmented automatically.
    """
    tpl = space or DEFAULT_TEMPLATE
    masks = "" if not auto_masks else (
        f" For {auto_masks} participant{'s' if auto_masks > 1 else ''} without a given lesion mask, the "
        f"lesion was segmented automatically on the native grid: ADC below {ADC_THRESHOLD:g} × 10⁻⁶ mm²/s, "
        f"the RAPID threshold {_cite('straka2010', 'purushotham2015')}, and trace at least "
        f"{TRACE_RATIO:g} times the brain's median, away from the brain's edge, in components of at least "
        f"{MIN_COMPONENT_ML:g} mL brighter than their mirror region; these masks were not checked by an expert."
    )
    return (
        f"Results were produced by bids-stroke {versions['bids-stroke']}, a BIDS App {_cite('bids')} "
        f"reimplementing the method of {_in_text('moulton2023')}. For each participant, the b = 0 and trace "
        "(high-b) images were taken from the diffusion series; the brain was extracted with dipy's median_otsu "
        f"on the b = 0 image binned to about {GRID_MM:g} mm (dipy {versions['dipy']}; {author_year('dipy')}); intensities were divided by the mean of the "
        "non-lesioned parenchyma; the brain's bounding box was resampled to a 96 × 96 × 24 grid. The b = 0 "
        f"image was registered to the {tpl} T2-weighted template at 2 mm {_cite('fonov2009', 'fonov2011')} "
        f"with ANTs (ANTsPy {versions['ANTsPy']}; {author_year('ants')}); lesion masks and attention maps "
        f"were warped with the same transforms. Workflows ran on nipype {versions['nipype']} "
        f"{_cite('nipype')}. Outcome (poor: mRS ≥ 3) was predicted by {ensemble_phrase(variants)} "
        f"with trainable attention {_cite('jetley2018')} implemented in Keras {versions['Keras']} "
        f"(TensorFlow {versions['TensorFlow']}; {author_year('keras')}; {author_year('tensorflow')}), trained "
        "with leave-one-center-out cross-validation. Metrics were computed on the merged out-of-center "
        "predictions with 95 % bootstrap confidence intervals; areas under the ROC curve were compared with "
        f"DeLong's test {_cite('delong')} and sensitivities at matched specificity with McNemar's test "
        f"(scikit-learn {versions['scikit-learn']}, statsmodels {versions['statsmodels']}, SciPy "
        f"{versions['SciPy']}). Group attention and lesion probability maps are voxel-wise means over the "
        "participants of each lesion hemisphere and classification group." + masks
    )


def _methods(out: Path) -> tuple[str, dict[str, str]]:
    versions = software_versions()
    return methods_text(versions, group_space(out), trained_variants(out), auto_masks=_auto_masks(out)), versions


def citation_markdown(output_dir: str | os.PathLike) -> str:
    """Content of ``logs/CITATION.md``: methods boilerplate, software versions, references."""
    out = Path(output_dir)
    methods, versions = _methods(out)
    bib = run_path(out, "citation_bib").name
    lines = ["# Citing bids-stroke", "",
             "The following boilerplate describes the processing; copy it into your methods section and "
             f"cite the references below (BibTeX: {bib}).", "", "## Methods", "", methods, "",
             "## Software versions", ""]
    lines += [f"- {label}: {version}" for label, version in versions.items()]
    lines += ["", "## References", ""]
    lines += [f"{i}. {text}" for i, text in enumerate(cited(out), start=1)]
    return "\n".join(lines) + "\n"


def citation_html(output_dir: str | os.PathLike) -> str:
    """Content of ``logs/CITATION.html``: the boilerplate and references as a standalone page."""
    out = Path(output_dir)
    methods, versions = _methods(out)
    bib = escape(run_path(out, "citation_bib").name)
    items = "\n".join(f"<li>{escape(text)}</li>" for text in cited(out))
    software = "\n".join(f"<li>{escape(label)}: {escape(version)}</li>" for label, version in versions.items())
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Citing bids-stroke</title>\n</head>\n<body>\n<h1>Citing bids-stroke</h1>\n"
            "<p>The following boilerplate describes the processing; copy it into your methods section and cite "
            f"the references below (BibTeX: <a href=\"{bib}\">{bib}</a>).</p>\n"
            f"<h2>Methods</h2>\n<p>{escape(methods)}</p>\n<h2>Software versions</h2>\n<ul>\n{software}\n</ul>\n"
            f"<h2>References</h2>\n<ol>\n{items}\n</ol>\n</body>\n</html>\n")


def bibtex_keys(output_dir: str | os.PathLike) -> list[str]:
    """The keys of ``logs/CITATION.bib``: those the boilerplate cites (:func:`cited_keys`), then
    the rest of :data:`~bids_stroke.citations.BIBLIOGRAPHY`, so that the file holds every
    reference of bids-stroke."""
    cited_here = cited_keys(output_dir)
    return cited_here + [key for key in BIBLIOGRAPHY if key not in cited_here]


def citation_bibtex(output_dir: str | os.PathLike) -> str:
    """Content of ``logs/CITATION.bib``: one BibTeX entry per key of :func:`bibtex_keys`."""
    return "\n".join(bibtex(key) for key in bibtex_keys(output_dir))


def write_citation(output_dir: str | os.PathLike) -> Path:
    """Write ``OUTPUT_DIR/logs/CITATION.md``, ``.html`` and ``.bib``; return the ``.md``."""
    write_text(run_path(output_dir, "citation_html"), citation_html(output_dir))
    write_text(run_path(output_dir, "citation_bib"), citation_bibtex(output_dir))
    return write_text(run_path(output_dir, "citation"), citation_markdown(output_dir))
