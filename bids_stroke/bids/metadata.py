"""Sidecars of an image: the ``.json``, ``.bval`` and ``.bvec`` files that apply to it.

They follow the BIDS inheritance principle: a file applies to an image when it has the
image's suffix, sits in the image's folder or one of its parents (within the dataset)
and its entities are a subset of the image's. The most specific file wins: the deepest
folder first, then, within one folder, the file with more entities.

pybids indexes merged metadata too (``BIDSFile.get_metadata``), but within one folder it
merges in index order, not by specificity (a 4D series' ``_dwi.json`` next to a
``_rec-TRACE_dwi.json`` can override the trace's own values), and it drops ``null`` values
and keys named like entities; so the walk is done here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bids import BIDSLayout
from bids.layout import Query

from ..errors import BadInputError

__all__ = ["b_value_from_bval", "b_value_from_sidecar", "gradient_files", "merged_metadata",
           "read_sidecar"]

#: Entities that say nothing about which image a sidecar belongs to.
_NON_MATCHING = {"suffix", "extension", "datatype"}

#: Sidecar keys that may give the b-value (s/mm²) of a trace image, best first.
_B_VALUE_KEYS = ("DiffusionBValue", "BValue", "bValue")

#: JSON names of the Python types :func:`json.loads` returns.
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def read_sidecar(path) -> dict:
    """Read a JSON sidecar (or any BIDS JSON file): a UTF-8 JSON object.

    This is the one place where bids-stroke parses the JSON files of its inputs (pybids
    is told not to, see :func:`~bids_stroke.bids.layout.load_layout`).

    Parameters
    ----------
    path : str or Path
        The ``.json`` file.

    Returns
    -------
    dict

    Raises
    ------
    BadInputError
        ``path: reason``: not UTF-8, not valid JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        reason = str(err) if not isinstance(err, RecursionError) else "nested too deeply"
        raise BadInputError(f"{path}: not valid JSON ({reason}).") from err
    if not isinstance(content, dict):
        raise BadInputError(
            f"{path}: must hold a JSON object ({{\"Key\": value, ...}}). "
            f"Got a JSON {_JSON_TYPES.get(type(content), type(content).__name__)} instead."
        )
    return content


def _matching_entities(bidsfile) -> dict:
    return {k: v for k, v in bidsfile.entities.items() if k not in _NON_MATCHING}


def _inherited(layout: BIDSLayout, image, extension: str) -> list:
    """The files of ``extension`` that apply to ``image``.

    Parameters
    ----------
    layout : bids.BIDSLayout
        The layout that indexes ``image``.
    image : bids.layout.BIDSFile
        The data file.
    extension : str
        ``".json"``, ``".bval"`` or ``".bvec"``.

    Returns
    -------
    list of bids.layout.BIDSFile
        From the most general to the most specific; empty when none applies.
    """
    image_ents = _matching_entities(image)
    image_dir = Path(image.path).parent
    root = Path(layout.root)
    # only files of this subject and session, or of none, can apply: asking for them alone
    # keeps each participant's query small (asking for all took 85 ms per call at 300 subjects)
    query = {entity: [image_ents[entity], Query.NONE] if entity in image_ents else Query.NONE
             for entity in ("subject", "session")}
    found = []
    for candidate in layout.get(suffix=image.entities["suffix"], extension=extension,
                                return_type="object", **query):
        cand_dir = Path(candidate.path).parent
        if cand_dir != image_dir and cand_dir not in image_dir.parents:
            continue
        if root not in cand_dir.parents and cand_dir != root:
            continue
        ents = _matching_entities(candidate)
        if any(image_ents.get(k) != v for k, v in ents.items()):
            continue
        found.append((len(cand_dir.parts), len(ents), candidate))
    found.sort(key=lambda x: (x[0], x[1]))
    return [c for *_, c in found]


def merged_metadata(layout: BIDSLayout, image) -> dict:
    """The JSON sidecars of ``image`` merged along the inheritance chain.

    Parameters
    ----------
    layout : bids.BIDSLayout
        The layout that indexes ``image``.
    image : bids.layout.BIDSFile
        The data file.

    Returns
    -------
    dict
        Empty when no sidecar applies.

    Raises
    ------
    BadInputError
        A sidecar is not a valid JSON object (:func:`read_sidecar`).
    """
    merged: dict = {}
    for sidecar in _inherited(layout, image, ".json"):
        merged.update(read_sidecar(sidecar.path))
    return merged


def _nearest(layout: BIDSLayout, image, extension: str) -> Path | None:
    """The most specific file of ``extension`` that applies to ``image``, or ``None``."""
    chain = _inherited(layout, image, extension)
    return Path(chain[-1].path) if chain else None


def _numbers(path: Path, what: str) -> list[list[float]]:
    """The rows of finite numbers of a ``.bval`` or ``.bvec`` file (blank lines skipped).

    Raises
    ------
    BadInputError
        A value is not a finite number, or the file is not UTF-8 text.
    """
    try:
        rows = [[float(v) for v in line.split()]
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError) as err:
        raise BadInputError(f"{path}: {what} must be numbers ({err}).") from err
    bad = [v for row in rows for v in row if not math.isfinite(v)]
    if bad:
        raise BadInputError(f"{path}: {what} must be finite numbers. Got {bad[0]} instead.")
    return rows


def _read_bvals(path: Path) -> list[float]:
    """The b-values (s/mm²) of a ``.bval`` file.

    Raises
    ------
    BadInputError
        A value is not a finite number, or is negative.
    """
    values = [v for row in _numbers(path, "b-values") for v in row]
    negative = [v for v in values if v < 0]
    if negative:
        raise BadInputError(
            f"{path}: b-values must be 0 or more (s/mm²). Got {negative[0]:g} instead."
        )
    return values


def _read_bvecs(path: Path, n_volumes: int) -> list[list[float]]:
    """The b-vectors of a ``.bvec`` file: 3 rows (x, y, z) of one value per volume.

    Raises
    ------
    BadInputError
        A value is not a finite number, or the file is not 3 rows of ``n_volumes``
        values.
    """
    rows = _numbers(path, "b-vectors")
    if len(rows) != 3 or any(len(row) != n_volumes for row in rows):
        raise BadInputError(
            f"{path}: must hold 3 rows (x, y, z) of one value per volume ({n_volumes}). Got "
            f"{len(rows)} row(s) of {', '.join(str(len(row)) for row in rows) or 'no'} "
            "value(s) instead."
        )
    return rows


def _trace_b_value(value, source: Path, key: str) -> float:
    """``value`` as a trace's b-value (s/mm²): a positive finite number, else an error.

    Raises
    ------
    BadInputError
        Naming ``source``, the file that gives ``value``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise BadInputError(
            f"{source}: {key!r} must be the b-value of the trace image, a positive number "
            f"(s/mm²). Got {json.dumps(value)} instead."
        )
    return float(value)


def b_value_from_bval(layout: BIDSLayout, image) -> float | None:
    """The largest b-value (s/mm²) of the ``.bval`` file that applies to ``image``.

    ``None`` when no ``.bval`` applies or it is empty.

    Raises
    ------
    BadInputError
        The ``.bval`` holds something else than numbers, or no positive b-value.
    """
    bval = _nearest(layout, image, ".bval")
    if bval is None:
        return None
    values = _read_bvals(bval)
    return _trace_b_value(max(values), bval, "b-value") if values else None


def b_value_from_sidecar(layout: BIDSLayout, image) -> float | None:
    """The b-value (s/mm²) the sidecars of ``image`` give (``DiffusionBValue`` ...).

    The sidecars are merged as in :func:`merged_metadata`; the first key of
    :data:`_B_VALUE_KEYS` present with a non-null value gives the b-value.

    Parameters
    ----------
    layout : bids.BIDSLayout
        The layout that indexes ``image``.
    image : bids.layout.BIDSFile
        A trace image.

    Returns
    -------
    float or None
        ``None`` when no sidecar gives a b-value.

    Raises
    ------
    BadInputError
        Naming the sidecar whose b-value is not a positive number (a boolean, a string,
        a negative number ...), or one that is not a valid JSON object.
    """
    merged: dict = {}
    source: dict = {}
    for sidecar in _inherited(layout, image, ".json"):
        content = read_sidecar(sidecar.path)
        merged.update(content)
        source.update(dict.fromkeys(content, Path(sidecar.path)))
    for key in _B_VALUE_KEYS:
        if merged.get(key) is not None:
            return _trace_b_value(merged[key], source[key], key)
    return None


def _volumes(path: Path) -> tuple[int, ...]:
    from .nifti import check_nifti

    return tuple(check_nifti(path, load_data=False).shape)


def gradient_files(layout: BIDSLayout, dwi) -> tuple[Path, Path]:
    """The ``.bval`` and ``.bvec`` files of a 4D series, checked against its volumes.

    Parameters
    ----------
    layout : bids.BIDSLayout
        The layout that indexes ``dwi``.
    dwi : bids.layout.BIDSFile
        A ``_dwi`` image without ``rec`` entity.

    Returns
    -------
    tuple of (Path, Path)
        The ``.bval`` and ``.bvec`` files that apply to ``dwi`` (the most specific ones).

    Raises
    ------
    BadInputError
        ``dwi`` is not 4D, a file is missing, the b-values are not one number (>= 0) per
        volume, or the b-vectors not 3 rows of one number per volume.
    """
    dwi_path = Path(dwi.path)
    bval = _nearest(layout, dwi, ".bval")
    bvec = _nearest(layout, dwi, ".bvec")
    shape = _volumes(dwi_path)
    if len(shape) < 4 or shape[3] < 2:
        raise BadInputError(
            f"{dwi_path}: a _dwi image without rec entity must be a 4D series. "
            f"Got shape {shape} instead. If it is a trace image, name it "
            "..._rec-TRACE_dwi.nii.gz."
        )
    missing = [ext for ext, p in ((".bval", bval), (".bvec", bvec)) if p is None]
    if missing:
        raise BadInputError(
            f"{dwi_path}: the 4D DWI series has no {' or '.join(missing)} file "
            "(expected next to it, same name)."
        )
    n_bvals = len(_read_bvals(bval))
    if n_bvals != shape[3]:
        raise BadInputError(
            f"{bval}: must hold one b-value per volume ({shape[3]}). Got {n_bvals} instead."
        )
    _read_bvecs(bvec, shape[3])
    return bval, bvec
