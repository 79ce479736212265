"""Output names, both ways: entities -> path and path -> entities.

Every output path of bids-stroke is built here, from BIDS entities and one ordered table
of path patterns (:data:`PATH_PATTERNS`), in the manner of niworkflows'
``DerivativesDataSink``; every reader finds outputs again here
(:func:`find_derivatives`, :func:`parse_derivative`), by parsing names with the same
table. Files that are not BIDS derivatives (models, logs, reports) have their paths in
:func:`run_path` and :func:`report_path`; the raw files and ground truth that the
simulator writes in :func:`raw_path` and :func:`truth_path`. Nothing else in the package
assembles or takes apart a file name.

Entities appear in the order of the BIDS specification's schema (``bidsschematools``:
``sub``, ``ses``, ``acq``, ``run``, ..., ``hemi``, ``space``, ..., ``res``, ...,
``label``, ``desc``), e.g. ``hemi-L_space-<TPL>_res-2_desc-a1_attention.nii.gz``; the
tests check every pattern and every name against the schema. ``from``, ``to`` and
``mode`` are not entities of the schema: they are the transform-naming convention of
fMRIPrep and the other NiPreps (``_from-X_to-Y_mode-image_xfm.h5``), kept after the
source entities where those tools write them.

``Sources`` in sidecars are BIDS URIs (:func:`bids_uri`): ``bids:<dataset>:<path>`` for a
file of a dataset named in ``DatasetLinks`` (:data:`RAW_DATASET`, :data:`LESION_DATASET`),
``bids::<path>`` for one of OUTPUT_DIR itself.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bids.layout.writing import build_path

#: Entities of the source DWI that output names keep (``rec`` is dropped: the outputs of
#: a 4D series and of a trace-only series are the same kind of image).
SOURCE_ENTITIES = ("subject", "session", "acquisition", "run")

#: Entities in the order of the BIDS schema (see the module's docstring; ``from``, ``to``
#: and ``mode``, the NiPreps' transform convention, are not schema entities).
_SUBJECT_ENTITIES = (
    "sub-{subject}[_ses-{session}][_acq-{acquisition}][_run-{run}]"
    "[_from-{from}][_to-{to}][_mode-{mode}][_hemi-{hemi<L|R>}][_space-{space}][_res-{res}]"
    "[_label-{label}][_desc-{desc}]"
)
_GROUP_ENTITIES = "[hemi-{hemi<L|R>}_][space-{space}_][res-{res}_][label-{label}_]desc-{desc}"

_LABEL = re.compile(r"[A-Za-z0-9]+")

#: Ordered path patterns (pybids syntax); the first that uses every given entity wins.
PATH_PATTERNS = (
    # per-participant images, transforms, tables and sidecars
    "sub-{subject}[/ses-{session}]/{datatype<dwi>|dwi}/" + _SUBJECT_ENTITIES
    + "_{suffix<dwi|dwiref|mask|probseg|attention|xfm|measures|predictions>}"
    "{extension<.nii.gz|.json|.tsv|.h5>}",
    # per-participant report figures
    "sub-{subject}/{datatype<figures>}/" + _SUBJECT_ENTITIES
    + "_{suffix}{extension<.svg|.png>}",
    # group-level tables and maps
    "{datatype<group>}/" + _GROUP_ENTITIES
    + "_{suffix<predictions|metrics|stats|table|curve|attention|probseg|mask>}"
    "{extension<.tsv|.json|.nii.gz|.svg|.png>}",
)

#: Folders of OUTPUT_DIR that hold derivatives named by :data:`PATH_PATTERNS`.
DERIVATIVE_FOLDERS = ("sub-*", "group")

#: Non-standard suffixes and folders written by bids-stroke, listed in ``.bidsignore``.
BIDSIGNORE = (
    "*_measures.json",
    "*_predictions.tsv",
    "*_attention.nii.gz",
    "*_attention.json",
    "*_xfm.h5",
    "*_dwiref.nii.gz",
    "*_dwiref.json",
    "*.html",
    "figures/",
    "group/",
    "models/",
    "logs/",
)

#: Matches any value of an entity in :func:`find_derivatives` (the entity must be present).
ANY = object()


def derivative_path(
    output_dir: str | os.PathLike,
    source_entities: Mapping[str, Any] | None = None,
    **entities: Any,
) -> Path:
    """Build the path of one output file from BIDS entities.

    Parameters
    ----------
    output_dir : path-like
        Root of the derivatives dataset.
    source_entities : mapping, default=None
        Entities of the source file (as pybids or :func:`parse_derivative` return
        them). Only :data:`SOURCE_ENTITIES` are kept; the others describe the input, not
        the output.
    **entities
        Entities of the output, which take precedence: ``suffix`` and ``extension``
        (with its dot) are required; ``desc``, ``space``, ``res``, ``label``, ``hemi``,
        ``from``, ``to``, ``mode`` as needed. ``datatype="group"`` names a group-level
        file (no subject); ``datatype="figures"`` a report figure.

    Returns
    -------
    pathlib.Path
        ``output_dir`` joined with the BIDS path.

    Raises
    ------
    ValueError
        When no pattern of :data:`PATH_PATTERNS` can express the entities.

    Examples
    --------
    >>> derivative_path("/out", {"subject": "01", "rec": "TRACE"}, space="model",
    ...                 desc="preproc", suffix="dwi", extension=".nii.gz").as_posix()
    '/out/sub-01/dwi/sub-01_space-model_desc-preproc_dwi.nii.gz'
    """
    merged: dict[str, Any] = {}
    for key in SOURCE_ENTITIES:
        value = (source_entities or {}).get(key)
        if value not in (None, ""):
            merged[key] = value
    merged.update({key: value for key, value in entities.items() if value is not None})
    if merged.get("hemi") not in (None, "L", "R"):
        raise ValueError(f"'hemi' must be L or R. Got {merged['hemi']!r} instead.")
    if merged.get("datatype") == "group":
        for key in SOURCE_ENTITIES:
            merged.pop(key, None)
    return _build(output_dir, merged, PATH_PATTERNS, "derivatives")


#: Names of the datasets that BIDS URIs in the outputs refer to (``DatasetLinks`` of the
#: derivatives' ``dataset_description.json``): BIDS_DIR and the ``--lesion-dir`` dataset.
RAW_DATASET = "raw"
LESION_DATASET = "lesions"


def bids_uri(path: str | os.PathLike, output_dir: str | os.PathLike, links: Mapping[str, Any]) -> str:
    """The BIDS URI of a file: ``bids::<path>`` in OUTPUT_DIR, ``bids:<name>:<path>`` in a linked dataset.

    Parameters
    ----------
    path : path-like
        The file (absolute, or relative to the working directory).
    output_dir : path-like
        OUTPUT_DIR, the current dataset (the empty dataset name).
    links : mapping of str to path-like
        Dataset name -> root (e.g. :data:`RAW_DATASET` -> BIDS_DIR). The deepest root that
        holds ``path`` names it (a derivatives dataset inside BIDS_DIR is its own dataset).

    Returns
    -------
    str
        The URI; a ``file://`` URI when no dataset holds the file.

    Examples
    --------
    >>> bids_uri("/data/bids/sub-01/dwi/sub-01_dwi.nii.gz", "/data/out", {"raw": "/data/bids"})
    'bids:raw:sub-01/dwi/sub-01_dwi.nii.gz'
    >>> bids_uri("/data/out/sub-01/dwi/sub-01_desc-brain_mask.nii.gz", "/data/out", {"raw": "/data/bids"})
    'bids::sub-01/dwi/sub-01_desc-brain_mask.nii.gz'
    """
    path = Path(os.path.abspath(path))
    roots = [("", Path(os.path.abspath(output_dir)))]
    roots += [(str(name), Path(os.path.abspath(root))) for name, root in links.items() if root is not None]
    for name, root in sorted(roots, key=lambda item: len(item[1].parts), reverse=True):
        if path.is_relative_to(root):
            return f"bids:{name}:{path.relative_to(root).as_posix()}"
    return path.as_uri()


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of an image: same name with ``.json`` instead of ``.nii[.gz]``."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv", ".h5"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    raise ValueError(f"'path' must name a .nii.gz, .nii, .tsv or .h5 file. Got {path} instead.")


# ---------------------------------------------------------------------------------------
# Path -> entities
# ---------------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern:
    """A regular expression that parses the paths one pybids pattern builds."""
    parts, seen, i = [], set(), 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            parts.append("(?:")
        elif char == "]":
            parts.append(")?")
        elif char == "{":
            end = pattern.index("}", i)
            field_ = pattern[i + 1:end]
            name, _, rest = field_.partition("<")
            name = name.split("|")[0]
            if rest:
                choices = rest.split(">")[0].split("|")
                value = "|".join(re.escape(choice) for choice in choices)
            else:
                value = r"\.[a-z.]+" if name == "extension" else "[A-Za-z0-9]+"
            parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{value})")
            seen.add(name)
            i = end
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts))


@functools.lru_cache(maxsize=None)
def _regexes() -> tuple[re.Pattern, ...]:
    return tuple(_pattern_regex(pattern) for pattern in PATH_PATTERNS)


def parse_derivative(path: str | os.PathLike, output_dir: str | os.PathLike) -> dict[str, str] | None:
    """The entities of an output path, parsed with :data:`PATH_PATTERNS`.

    Parameters
    ----------
    path : path-like
        An output file inside ``output_dir``.
    output_dir : path-like
        Root of the derivatives dataset.

    Returns
    -------
    dict or None
        Entity -> value (``extension`` with its dot, ``datatype`` as built), such that
        ``derivative_path(output_dir, **entities)`` gives ``path`` back; None when no
        pattern names the file.

    Examples
    --------
    >>> parse_derivative("/out/sub-01/dwi/sub-01_desc-brain_mask.nii.gz", "/out")
    {'subject': '01', 'datatype': 'dwi', 'desc': 'brain', 'suffix': 'mask', 'extension': '.nii.gz'}
    """
    try:
        relative = Path(path).relative_to(output_dir)
    except ValueError:
        return None
    text = relative.as_posix()
    for regex in _regexes():
        match = regex.fullmatch(text)
        if match:
            return {key: value for key, value in match.groupdict().items() if value is not None}
    return None


def _matches(value: str | None, wanted: Any) -> bool:
    if wanted is ANY:
        return value is not None
    if wanted is None:
        return value is None
    if isinstance(wanted, (list, tuple, set, frozenset)):
        return value in {str(w) for w in wanted}
    return value == str(wanted)


def find_derivatives(output_dir: str | os.PathLike, **entities: Any) -> list[Path]:
    """The outputs in ``output_dir`` whose entities match, sorted by path.

    Parameters
    ----------
    output_dir : path-like
        Root of the derivatives dataset.
    **entities
        Entity -> wanted value: a string (equal), a list or tuple (any of them), None
        (the entity must be absent) or :data:`ANY` (present with any value). Entities
        not given may take any value or be absent. ``subject`` and ``session`` are
        given without their ``sub-``/``ses-`` prefixes.

    Returns
    -------
    list of pathlib.Path

    Examples
    --------
    >>> find_derivatives(out, subject="01", space="model", desc="preproc",   # doctest: +SKIP
    ...                  suffix="dwi", extension=".nii.gz")
    [PosixPath('out/sub-01/dwi/sub-01_space-model_desc-preproc_dwi.nii.gz')]
    """
    root = Path(output_dir)
    subject = entities.get("subject")
    if isinstance(subject, str):
        folders = [root / f"sub-{subject}"]
    elif entities.get("datatype") == "group":
        folders = [root / "group"]
    else:
        folders = sorted(p for pattern in DERIVATIVE_FOLDERS for p in root.glob(pattern) if p.is_dir())
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.name.startswith(".") or not path.is_file():
                continue
            parsed = parse_derivative(path, root)
            if parsed is not None and all(_matches(parsed.get(k), v) for k, v in entities.items()):
                found.append(path)
    return sorted(found)


# ---------------------------------------------------------------------------------------
# Raw BIDS files and the simulator's ground truth
# ---------------------------------------------------------------------------------------
#: Folder of a simulated dataset that holds its ground truth (outside the BIDS scope).
TRUTH_DIR = "truth"

#: The lesion-mask derivatives dataset of a simulated dataset, relative to its root.
LESION_DERIVATIVES = "derivatives/lesions"

#: Path patterns of the ground truth of a simulated dataset (:mod:`bids_stroke.simulate`).
TRUTH_PATTERNS = (
    TRUTH_DIR + "/sub-{subject}[/ses-{session}]/sub-{subject}[_ses-{session}]"
    "[_from-{from}][_to-{to}][_space-{space}][_res-{res}][_label-{label}][_desc-{desc}]"
    "_{suffix<mask|xfm|simulation>}{extension<.nii.gz|.json>}",
)


@functools.lru_cache(maxsize=None)
def _raw_patterns() -> tuple[str, ...]:
    from bids.layout.models import Config

    return tuple(Config.load("bids").default_path_patterns)


def raw_path(bids_dir: str | os.PathLike, **entities: Any) -> Path:
    """Path of a raw BIDS file, built with pybids' own path patterns.

    Parameters
    ----------
    bids_dir : path-like
        Root of the raw dataset.
    **entities
        pybids entity names (``subject``, ``session``, ``reconstruction``, ``datatype``,
        ``suffix``, ``extension`` with its dot, ...); None values are left out.

    Raises
    ------
    ValueError
        When no pattern can express the entities.

    Examples
    --------
    >>> raw_path("/bids", subject="01", reconstruction="TRACE", datatype="dwi",
    ...          suffix="dwi", extension=".nii.gz").as_posix()
    '/bids/sub-01/dwi/sub-01_rec-TRACE_dwi.nii.gz'
    """
    return _build(bids_dir, entities, _raw_patterns(), "raw BIDS")


def truth_path(bids_dir: str | os.PathLike, **entities: Any) -> Path:
    """Path of a ground-truth file of a simulated dataset (:data:`TRUTH_PATTERNS`).

    Examples
    --------
    >>> truth_path("/bids", subject="01", suffix="simulation", extension=".json").as_posix()
    '/bids/truth/sub-01/sub-01_simulation.json'
    """
    return _build(bids_dir, entities, TRUTH_PATTERNS, "ground-truth")


def _build(root, entities: Mapping[str, Any], patterns, what: str) -> Path:
    entities = {key: value for key, value in entities.items() if value is not None}
    for key, value in entities.items():
        if key not in ("extension", "datatype") and not _LABEL.fullmatch(str(value)):
            raise ValueError(f"'{key}' must be an alphanumeric BIDS label. Got {value!r} instead.")
    relative = build_path(entities, list(patterns), strict=True)
    if relative is None:
        raise ValueError(f"No {what} path pattern can express the entities {sorted(entities.items())}.")
    return Path(root) / relative


# ---------------------------------------------------------------------------------------
# Files that are not BIDS derivatives
# ---------------------------------------------------------------------------------------
#: Folder of the final ensemble's training jobs (``models/all/<variant>/``), and the name
#: of that pseudo-fold.
FINAL_FOLD = "all"

#: ``kind`` of :func:`run_path` -> path relative to OUTPUT_DIR (``str.format`` fields).
RUN_PATHS = {
    "loco_job": "models/loco/fold-{fold}/{variant}",
    "final_job": "models/" + FINAL_FOLD + "/{variant}",
    "fold_predictions": "models/loco/fold-{fold}/predictions.tsv",
    "ensemble": "models/ensemble",
    "config": "logs/config-{run_id}.json",
    "participant_summary": "logs/participant-{run_id}_summary.tsv",
    "quarantine": "logs/failed-{run_id}",
    "citation": "logs/CITATION.md",
    "citation_html": "logs/CITATION.html",
    "citation_bib": "logs/CITATION.bib",
}


def run_path(output_dir: str | os.PathLike, kind: str, **fields: str) -> Path:
    """Path of a file or folder of OUTPUT_DIR that is not a BIDS derivative.

    Parameters
    ----------
    output_dir : path-like
        Root of the derivatives dataset.
    kind : str
        One of :data:`RUN_PATHS`: ``loco_job`` (``fold``, ``variant``), ``final_job``
        (``variant``), ``fold_predictions`` (``fold``), ``ensemble``, ``config``,
        ``participant_summary`` and ``quarantine`` (``run_id``), ``citation``, ``citation_html``,
        ``citation_bib``.
    **fields
        The values the path needs; labels must be alphanumeric (``variant`` may hold
        ``-`` and ``.``; ``run_id`` ``-`` and ``_``).

    Examples
    --------
    >>> run_path("/out", "loco_job", fold="siteA", variant="f8-g1.5").as_posix()
    '/out/models/loco/fold-siteA/f8-g1.5'
    """
    if kind not in RUN_PATHS:
        raise ValueError(f"'kind' must be one of {', '.join(RUN_PATHS)}. Got {kind!r} instead.")
    for key, value in fields.items():
        allowed = {"variant": r"[A-Za-z0-9.\-]+", "run_id": r"[A-Za-z0-9_\-]+"}.get(key, r"[A-Za-z0-9]+")
        if not re.fullmatch(allowed, str(value)):
            raise ValueError(f"'{key}' of a {kind} path must match {allowed}. Got {value!r} instead.")
    try:
        relative = RUN_PATHS[kind].format(**fields)
    except KeyError as exc:
        raise ValueError(f"A {kind} path needs '{exc.args[0]}'.") from None
    return Path(output_dir) / relative


def derivative_folder(output_dir: str | os.PathLike, subject: str, session: str | None = None) -> Path:
    """The folder of one participant's (and session's) derivatives: ``sub-<L>[/ses-<S>]``."""
    return Path(output_dir) / f"sub-{subject}" / (f"ses-{session}" if session else "")


def report_path(output_dir: str | os.PathLike, subject: str | None = None) -> Path:
    """Path of the HTML report: ``sub-<L>.html`` for a participant, else ``group.html``."""
    name = f"sub-{subject}.html" if subject else "group.html"
    return Path(output_dir) / name


def participant_label(entities: Mapping[str, Any]) -> str:
    """``sub-<L>`` (and `` ses-<S>``) of a participant's entities, as logs show them."""
    subject, session = entities.get("subject"), entities.get("session")
    return f"sub-{subject}" + (f" ses-{session}" if session else "")


def participant_id(subject: str) -> str:
    """The ``participant_id`` of participants.tsv for a subject label (``sub-<L>``)."""
    return f"sub-{subject}"


def session_id(session: str | None) -> str | None:
    """``ses-<S>`` for a session label, None without a session."""
    return f"ses-{session}" if session else None


def subject_label(participant: str) -> str:
    """The subject label of a ``participant_id`` (``sub-`` stripped)."""
    return participant[4:] if participant.startswith("sub-") else participant


__all__ = [
    "ANY", "BIDSIGNORE", "FINAL_FOLD", "LESION_DATASET", "PATH_PATTERNS", "RAW_DATASET", "RUN_PATHS",
    "SOURCE_ENTITIES", "bids_uri",
    "LESION_DERIVATIVES", "TRUTH_DIR", "TRUTH_PATTERNS", "derivative_path", "find_derivatives", "parse_derivative",
    "participant_id", "participant_label", "raw_path", "report_path", "run_path", "session_id",
    "sidecar_path", "subject_label", "truth_path",
]
