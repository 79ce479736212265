"""The derivatives dataset: output file names, metadata files and atomic writes.

Every output path of bids-stroke is built here, by :func:`derivative_path`, from BIDS
entities and one ordered table of path patterns (:data:`PATH_PATTERNS`), in the manner of
niworkflows' ``DerivativesDataSink``. Nothing else in the package assembles a file name.

Every file is written atomically: to a temporary file in the destination folder, then
renamed over the destination (:func:`atomic_output`), so that an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bids.layout.writing import build_path

from bids_stroke import __version__
from bids_stroke.errors import OutputError, UsageError

#: BIDS version the derivatives declare.
BIDS_VERSION = "1.10.0"

#: Where the code lives, recorded in ``dataset_description.json``.
CODE_URL = "https://github.com/bids-stroke/bids-stroke"

#: Entities of the source DWI that output names keep (``rec`` is dropped: the outputs of
#: a 4D series and of a trace-only series are the same kind of image).
SOURCE_ENTITIES = ("subject", "session", "acquisition", "run")

_SUBJECT_ENTITIES = (
    "sub-{subject}[_ses-{session}][_acq-{acquisition}][_run-{run}]"
    "[_from-{from}][_to-{to}][_mode-{mode}][_space-{space}][_res-{res}]"
    "[_hemi-{hemi<L|R>}][_label-{label}][_desc-{desc}]"
)
_GROUP_ENTITIES = "[space-{space}_][res-{res}_][hemi-{hemi<L|R>}_][label-{label}_]desc-{desc}"

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
    + "_{suffix<predictions|metrics|stats|table|attention|probseg|mask>}"
    "{extension<.tsv|.json|.nii.gz|.svg|.png>}",
)

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
        Entities of the source file (as pybids returns them). Only
        :data:`SOURCE_ENTITIES` are kept; the others describe the input, not the output.
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
    for key, value in merged.items():
        if key not in ("extension", "datatype") and not _LABEL.fullmatch(str(value)):
            raise ValueError(f"'{key}' must be an alphanumeric BIDS label. Got {value!r} instead.")
    if merged.get("hemi") not in (None, "L", "R"):
        raise ValueError(f"'hemi' must be L or R. Got {merged['hemi']!r} instead.")
    if merged.get("datatype") == "group":
        for key in SOURCE_ENTITIES:
            merged.pop(key, None)
    relative = build_path(merged, PATH_PATTERNS, strict=True)
    if relative is None:
        raise ValueError(
            f"No derivatives path pattern can express the entities {sorted(merged.items())}."
        )
    return Path(output_dir) / relative


def report_path(output_dir: str | os.PathLike, subject: str | None = None) -> Path:
    """Path of the HTML report: ``sub-<L>.html`` for a participant, else ``group.html``."""
    name = f"sub-{subject}.html" if subject else "group.html"
    return Path(output_dir) / name


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of an image: same name with ``.json`` instead of ``.nii[.gz]``."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv", ".h5"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    raise ValueError(f"'path' must name a .nii.gz, .nii, .tsv or .h5 file. Got {path} instead.")


# ---------------------------------------------------------------------------------------
# The output folder
# ---------------------------------------------------------------------------------------
def check_output_dir(bids_dir: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Check that OUTPUT_DIR can hold bids-stroke's derivatives, without writing anything.

    Parameters
    ----------
    bids_dir : path-like
        The input BIDS dataset.
    output_dir : path-like
        The requested output folder (need not exist yet).

    Returns
    -------
    pathlib.Path
        ``output_dir``, absolute and resolved.

    Raises
    ------
    UsageError
        (exit 64) OUTPUT_DIR is BIDS_DIR, one of its ancestors, or inside one of its
        ``sub-*`` folders.
    OutputError
        (exit 73) OUTPUT_DIR, or the folder it would be created in, is not a writable
        folder, or it already holds another pipeline's derivatives.
    """
    bids = Path(bids_dir).resolve()
    out = Path(output_dir).resolve()
    hint = f"Use a separate folder, e.g. {bids / 'derivatives' / 'bids-stroke'}."
    if out == bids:
        raise UsageError(f"OUTPUT_DIR {out} is BIDS_DIR itself: outputs would mix with inputs. {hint}")
    if bids.is_relative_to(out):
        raise UsageError(f"OUTPUT_DIR {out} contains BIDS_DIR {bids}. {hint}")
    if out.is_relative_to(bids):
        parts = out.relative_to(bids).parts
        if any(part.startswith("sub-") for part in parts):
            raise UsageError(f"OUTPUT_DIR {out} lies inside a sub-* folder of BIDS_DIR. {hint}")

    if out.exists() and not out.is_dir():
        raise OutputError(f"OUTPUT_DIR {out} exists and is not a folder.")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"OUTPUT_DIR {out} cannot be created: {existing} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"OUTPUT_DIR {out} cannot be created or written: {existing} is not writable.")

    description = out / "dataset_description.json"
    if description.is_file():
        try:
            generated_by = json.loads(description.read_text()).get("GeneratedBy", [])
            names = {entry.get("Name") for entry in generated_by if isinstance(entry, dict)}
        except (ValueError, AttributeError, OSError) as exc:
            raise OutputError(f"{description}: unreadable ({exc}); move it away or use another OUTPUT_DIR.") from exc
        if names and "bids-stroke" not in names:
            raise OutputError(
                f"OUTPUT_DIR {out} holds derivatives of {', '.join(sorted(map(str, names)))}, "
                "not of bids-stroke; use another OUTPUT_DIR."
            )
    return out


def detect_container() -> dict[str, str] | None:
    """Describe the container bids-stroke runs in, if any (for ``GeneratedBy``).

    Apptainer/Singularity set ``APPTAINER_CONTAINER``/``SINGULARITY_CONTAINER``; the
    Docker image sets ``BIDS_STROKE_CONTAINER=docker``.
    """
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if image:
        return {"Type": "singularity", "URI": image}
    if os.environ.get("BIDS_STROKE_CONTAINER") == "docker":
        return {"Type": "docker", "Tag": f"bidsstroke/bids-stroke:{__version__}"}
    return None


def _source_dataset(path: Path) -> dict[str, str]:
    entry: dict[str, str] = {"URL": path.resolve().as_uri()}
    try:
        description = json.loads((path / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return entry
    if description.get("DatasetDOI"):
        doi = str(description["DatasetDOI"])
        entry = {"DOI": doi if doi.startswith("doi:") else f"doi:{doi}", **entry}
    if description.get("Version") or description.get("DatasetVersion"):
        entry["Version"] = str(description.get("Version") or description.get("DatasetVersion"))
    return entry


def dataset_description(source_datasets: list[str | os.PathLike]) -> dict[str, Any]:
    """The content of the derivatives' ``dataset_description.json``.

    Parameters
    ----------
    source_datasets : list of path-like
        The datasets the derivatives come from (BIDS_DIR, the lesion dataset).
    """
    generated_by: dict[str, Any] = {"Name": "bids-stroke", "Version": __version__, "CodeURL": CODE_URL}
    container = detect_container()
    if container:
        generated_by["Container"] = container
    return {
        "Name": "bids-stroke: stroke outcome prognosis from acute DWI",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": [_source_dataset(Path(p)) for p in source_datasets],
        "HowToAcknowledge": (
            "Cite bids-stroke and the method it implements: Moulton E et al., Interpretable "
            "deep learning for the prognosis of long-term functional outcome post-stroke "
            "using acute diffusion weighted imaging. J Cereb Blood Flow Metab 2022. "
            "doi:10.1177/0271678X221129230"
        ),
    }


def init_derivatives(output_dir: str | os.PathLike, source_datasets: list[str | os.PathLike]) -> Path:
    """Create OUTPUT_DIR with its ``dataset_description.json`` and ``.bidsignore``.

    An existing ``.bidsignore`` keeps its lines; missing ones are added.
    """
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"OUTPUT_DIR {out} cannot be created: {exc.strerror}.") from exc
    write_json(out / "dataset_description.json", dataset_description(source_datasets))
    ignore = out / ".bidsignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    lines += [line for line in BIDSIGNORE if line not in lines]
    write_text(ignore, "\n".join(lines) + "\n")
    return out


# ---------------------------------------------------------------------------------------
# Atomic writers
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary name keeps the file's extensions (libraries such as nibabel choose the
    format from them). If the body raises, the temporary file is removed and ``path`` is
    left as it was.

    Examples
    --------
    >>> with atomic_output(out_file) as tmp:            # doctest: +SKIP
    ...     img.to_filename(tmp)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path.parent} cannot be created: {exc.strerror}.") from exc
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, *, sort_keys: bool = True) -> Path:
    """Write ``obj`` as indented JSON (keys sorted unless ``sort_keys=False``) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, default=_json_default)
    return write_text(path, text + "\n")


def write_tsv(path: str | os.PathLike, table: Any) -> Path:
    """Write a pandas DataFrame as a BIDS TSV (tab-separated, ``n/a`` for missing)."""
    return write_text(path, table.to_csv(sep="\t", index=False, na_rep="n/a", lineterminator="\n"))


def write_nifti(path: str | os.PathLike, img: Any, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a NIfTI image atomically, gzip-compressed reproducibly, with an optional sidecar.

    The gzip header carries no time stamp, so the same image gives the same bytes.

    Parameters
    ----------
    path : path-like
        Destination ending in ``.nii.gz``.
    img : nibabel.Nifti1Image
    metadata : mapping, default=None
        Written as the JSON sidecar (:func:`sidecar_path`) when given.
    """
    path = Path(path)
    if not path.name.endswith(".nii.gz"):
        raise ValueError(f"'path' must end in .nii.gz. Got {path} instead.")
    raw = img.to_bytes()
    write_bytes(path, gzip.compress(raw, compresslevel=6, mtime=0))
    if metadata is not None:
        write_json(sidecar_path(path), dict(metadata))
    return path


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")
