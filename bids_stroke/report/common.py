"""What the participant and group reports share: templates, formatting, reading outputs.

Readers return None (and log a warning when the file exists but cannot be read) so that a
report says what is missing instead of failing.
"""

from __future__ import annotations

import json
import logging
import math
import os
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import nibabel as nib
import numpy as np
import pandas as pd

from bids_stroke import __version__
from bids_stroke.bids.naming import ANY, SOURCE_ENTITIES, derivative_path, find_derivatives, parse_derivative
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION

LOGGER = logging.getLogger(__name__)

__all__ = [
    "SOFTWARE",
    "environment",
    "find_subjects",
    "fmt",
    "group_dir",
    "group_space",
    "load_image",
    "lesion_source_counts",
    "loco_predictions_path",
    "model_inputs",
    "read_json",
    "read_tsv",
    "rel",
    "software_versions",
    "table",
    "template_images",
]

#: Distributions whose versions the methods paragraph reports (label -> distribution).
SOFTWARE = {
    "bids-stroke": "bids-stroke", "Python NumPy": "numpy", "SciPy": "scipy", "nibabel": "nibabel",
    "nipype": "nipype", "dipy": "dipy", "ANTsPy": "antspyx", "Keras": "keras",
    "TensorFlow": "tensorflow-cpu", "scikit-learn": "scikit-learn", "statsmodels": "statsmodels",
    "pandas": "pandas", "nilearn": "nilearn", "matplotlib": "matplotlib", "pybids": "pybids",
}

#: Entities of a participant's model input (``*_space-model_desc-preproc_dwi.nii.gz``)
#: that make it one: no others may be present.
_MODEL_INPUT = {"datatype": "dwi", "space": "model", "desc": "preproc", "suffix": "dwi", "extension": ".nii.gz",
                "from": None, "to": None, "mode": None, "res": None, "hemi": None, "label": None}


# ---------------------------------------------------------------------------------------
# Rendering and formatting
# ---------------------------------------------------------------------------------------
def environment() -> jinja2.Environment:
    """The jinja2 environment of the templates in ``bids_stroke/data/report_templates/``."""
    folder = resources.files("bids_stroke") / "data" / "report_templates"
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                              autoescape=jinja2.select_autoescape(["html"]),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def rel(output_dir: Path, path: Path) -> str:
    """``path`` relative to OUTPUT_DIR, with forward slashes (as reports refer to it)."""
    return Path(os.path.relpath(path, output_dir)).as_posix()


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: ``n/a`` for missing values, ``yes``/``no``, integers without decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        if abs(value) < 10 ** -digits and value != 0:
            return f"{float(value):.1e}"
        return f"{float(value):.{digits}f}"
    text = str(value)
    return "n/a" if text in ("nan", "None", "") else text


def table(frame: pd.DataFrame, digits: int = 3) -> dict[str, Any]:
    """A data frame as the templates' tables: column names and rows of :func:`fmt` cells."""
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[fmt(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]}


def software_versions() -> dict[str, str]:
    """Installed version of each package listed in :data:`SOFTWARE` (``n/a`` when absent)."""
    out = {}
    for label, dist in SOFTWARE.items():
        if dist == "bids-stroke":
            out[label] = __version__
            continue
        try:
            out[label] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[label] = "n/a"
    return out


# ---------------------------------------------------------------------------------------
# Reading outputs
# ---------------------------------------------------------------------------------------
def _unreadable(path: Path, exc: Exception) -> None:
    LOGGER.warning("%s: unreadable (%s); left out of the report.", path, exc)


def read_tsv(path: Path) -> pd.DataFrame | None:
    """A TSV table (``n/a`` as missing), or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        _unreadable(path, exc)
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        _unreadable(path, exc)
        return None


def load_image(path: Path) -> nib.spatialimages.SpatialImage | None:
    """A NIfTI image, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return nib.load(os.fspath(path))
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as exc:
        _unreadable(path, exc)
        return None


def template_images(space: str | None) -> tuple[Any, Any]:
    """T2w and brain mask of a template space at the default resolution, or (None, None)."""
    if not space:
        return None, None
    try:
        from bids_stroke.spatial.templates import get_template_set

        tset = get_template_set(space, resolution=DEFAULT_RESOLUTION)
        return tset.t2w.load(), tset.mask.load()
    except Exception as exc:  # noqa: BLE001 - the report goes on without a background
        LOGGER.warning("Template %s unavailable (%s): figures are drawn without it.", space, exc)
        return None, None


# ---------------------------------------------------------------------------------------
# Finding outputs
# ---------------------------------------------------------------------------------------
def model_inputs(output_dir: Path, **entities: Any) -> list[dict[str, str]]:
    """Source entities (subject, session, acquisition, run) of the participants' model inputs."""
    found = []
    for path in find_derivatives(output_dir, **_MODEL_INPUT, **entities):
        parsed = parse_derivative(path, output_dir)
        found.append({key: parsed[key] for key in SOURCE_ENTITIES if key in parsed})
    return found


def find_subjects(output_dir: str | os.PathLike) -> list[str]:
    """Participants with participant-level outputs in OUTPUT_DIR (labels without ``sub-``)."""
    out = Path(output_dir)
    labels = {entities["subject"] for entities in model_inputs(out)}
    for path in find_derivatives(out, datatype="dwi", desc="lesion", suffix="measures", extension=".json"):
        labels.add(parse_derivative(path, out)["subject"])
    return sorted(labels)


def loco_predictions_path(output_dir: Path) -> Path:
    """``group/desc-loco_predictions.tsv``, the merged out-of-center predictions."""
    return derivative_path(output_dir, None, datatype="group", desc="loco", suffix="predictions", extension=".tsv")


def lesion_source_counts(predictions) -> dict[str, int]:
    """How many participants of the LOCO predictions (a DataFrame or None) have each lesion
    source (``given``, ``auto``, ``none``); empty without that column."""
    if predictions is None or "lesion_source" not in predictions:
        return {}
    counts = predictions["lesion_source"].fillna("none").astype(str).value_counts()
    return {key: int(counts[key]) for key in ("given", "auto", "none") if key in counts}


def group_dir(output_dir: Path) -> Path:
    """The folder of the group-level outputs."""
    return loco_predictions_path(output_dir).parent


def group_space(output_dir: Path) -> str | None:
    """Template space of the group maps: that of the attention summary, else of any group map."""
    space = {"datatype": "group", "space": ANY, "res": DEFAULT_RESOLUTION}
    for wanted in ({"hemi": None, "label": None, "desc": "attention", "suffix": "stats", "extension": ".tsv"},
                   {"extension": ".nii.gz"}):
        for path in find_derivatives(output_dir, **space, **wanted):
            return parse_derivative(path, output_dir)["space"]
    return None
