"""The derivatives dataset as a whole: OUTPUT_DIR checks, ``dataset_description.json``
and ``.bidsignore``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bids_stroke._version import CONTAINER_IMAGE, __version__
from bids_stroke.bids.naming import BIDSIGNORE, LESION_DATASET, RAW_DATASET
from bids_stroke.bids.writers import write_json, write_text
from bids_stroke.citations import citation_text
from bids_stroke.errors import OutputError, UsageError

__all__ = ["BIDS_VERSION", "CODE_URL", "check_output_apart", "check_output_dir", "dataset_description", "dataset_links",
           "dataset_root", "detect_container", "init_derivatives", "mask_datasets", "quarantine_outputs"]

#: BIDS version the derivatives (and the simulator's datasets) declare.
BIDS_VERSION = "1.10.0"

#: Where the code lives, recorded in ``dataset_description.json``.
CODE_URL = "https://github.com/bids-stroke/bids-stroke"


def check_output_apart(output_dir: str | os.PathLike, datasets: list[str | os.PathLike]) -> None:
    """Check that OUTPUT_DIR neither is, contains nor lies inside an input derivatives dataset.

    Writing into a dataset the run reads (e.g. a lesion-mask dataset whose
    ``dataset_description.json`` names no ``GeneratedBy``) would overwrite its description
    and mix outputs with inputs; every later run would then take it for bids-stroke's own
    outputs and no longer read its masks.

    Parameters
    ----------
    output_dir : path-like
        The requested output folder.
    datasets : list of path-like
        Roots of the derivatives datasets the run reads (``--lesion-dir``, or those under
        ``BIDS_DIR/derivatives``); BIDS_DIR itself is checked by :func:`check_output_dir`.

    Raises
    ------
    UsageError
        (exit 64) naming OUTPUT_DIR and the input dataset.
    """
    out = Path(output_dir).resolve()
    for dataset in datasets:
        root = Path(dataset).resolve()
        if out == root:
            where = "is"
        elif out.is_relative_to(root):
            where = "lies inside"
        elif root.is_relative_to(out):
            where = "contains"
        else:
            continue
        raise UsageError(f"OUTPUT_DIR {out} {where} the input dataset {root}: outputs would mix with the "
                         "masks read. Use a separate folder, e.g. BIDS_DIR/derivatives/bids-stroke.")


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
    """Describe the container bids-stroke runs in, if any (``GeneratedBy.Container``).

    Apptainer sets ``APPTAINER_CONTAINER`` (Singularity ``SINGULARITY_CONTAINER``) to the
    image file, recorded as ``URI``; the Docker image sets ``BIDS_STROKE_CONTAINER=docker``
    (and a SIF built from it inherits that, so Apptainer is checked first).
    """
    for variable, kind in (("APPTAINER_CONTAINER", "apptainer"), ("SINGULARITY_CONTAINER", "singularity")):
        image = os.environ.get(variable)
        if image:
            return {"Type": kind, "Tag": CONTAINER_IMAGE, "URI": Path(image).resolve().as_uri()}
    if os.environ.get("BIDS_STROKE_CONTAINER") == "docker":
        return {"Type": "docker", "Tag": CONTAINER_IMAGE}
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


def dataset_root(path: str | os.PathLike) -> Path | None:
    """The root of the BIDS dataset that holds ``path``: its nearest folder with a
    ``dataset_description.json``; None when there is none."""
    for folder in Path(path).absolute().parents:
        if (folder / "dataset_description.json").is_file():
            return folder
    return None


def mask_datasets(bids_dir: str | os.PathLike, masks) -> list[Path]:
    """The derivatives datasets the given masks come from, in the order first used.

    Parameters
    ----------
    bids_dir : path-like
        BIDS_DIR (a mask in no dataset but BIDS_DIR's adds nothing).
    masks : iterable of path-like or None
        The lesion and brain masks of the participants (None entries are skipped).

    Returns
    -------
    list of pathlib.Path
        Absolute roots, e.g. ``BIDS_DIR/derivatives/lesions`` when ``--lesion-dir`` is not
        given and the masks were found there.
    """
    raw = Path(bids_dir).absolute()
    roots: list[Path] = []
    for mask in masks:
        root = dataset_root(mask) if mask is not None else None
        if root is not None and root != raw and root not in roots:
            roots.append(root)
    return roots


def dataset_links(bids_dir: str | os.PathLike, *lesion_dirs: str | os.PathLike | None) -> dict[str, str]:
    """Dataset name -> absolute root of the datasets whose files the outputs' ``Sources`` name.

    :data:`~bids_stroke.bids.naming.RAW_DATASET` is BIDS_DIR;
    :data:`~bids_stroke.bids.naming.LESION_DATASET` the lesion-mask dataset (``--lesion-dir``,
    or the one under ``BIDS_DIR/derivatives/`` the masks were found in), further ones
    ``lesions2``, ``lesions3``, ... (None entries are skipped).

    Examples
    --------
    >>> dataset_links("/data/bids", "/data/bids/derivatives/lesions")
    {'raw': '/data/bids', 'lesions': '/data/bids/derivatives/lesions'}
    """
    links = {RAW_DATASET: str(Path(bids_dir).absolute())}
    roots = [Path(root).absolute() for root in lesion_dirs if root is not None]
    for index, root in enumerate(roots, start=1):
        links[LESION_DATASET if index == 1 else f"{LESION_DATASET}{index}"] = str(root)
    return links


def dataset_description(source_datasets: list[str | os.PathLike],
                        links: dict[str, str] | None = None) -> dict[str, Any]:
    """The content of the derivatives' ``dataset_description.json``.

    Parameters
    ----------
    source_datasets : list of path-like
        The datasets the derivatives come from (BIDS_DIR, the lesion dataset).
    links : dict of str to path-like, default=None
        :func:`dataset_links`: written as ``DatasetLinks`` (``file://`` URIs), which
        resolve the BIDS URIs (``bids:raw:...``) of the sidecars' ``Sources``.
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
        **({"DatasetLinks": {name: Path(root).absolute().as_uri() for name, root in links.items()}}
           if links else {}),
        "HowToAcknowledge": "Cite bids-stroke and the method it implements: " + citation_text("moulton2023"),
    }


def _previous_description(out: Path) -> dict[str, Any]:
    """The ``dataset_description.json`` an earlier run left in OUTPUT_DIR ({} when none)."""
    try:
        description = json.loads((out / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return {}
    return description if isinstance(description, dict) else {}


def _link_roots(links: Any) -> dict[str, str]:
    """``DatasetLinks`` as written (``file://`` URIs) -> name -> path (other URIs kept)."""
    if not isinstance(links, dict):
        return {}
    return {str(k): unquote(urlparse(str(v)).path) if str(v).startswith("file:") else str(v)
            for k, v in links.items()}


def _merged_sources(old: Any, new: list[dict[str, str]]) -> list[dict[str, str]]:
    """``SourceDatasets``: the earlier entries, updated by and followed by the new ones (one per URL)."""
    entries = {str(e.get("URL")): e for e in (old if isinstance(old, list) else []) if isinstance(e, dict)}
    entries.update({entry["URL"]: entry for entry in new})
    return list(entries.values())


def init_derivatives(output_dir: str | os.PathLike, source_datasets: list[str | os.PathLike],
                     links: dict[str, str] | None = None) -> Path:
    """Create OUTPUT_DIR with its ``dataset_description.json`` and ``.bidsignore``.

    An existing ``.bidsignore`` keeps its lines; missing ones are added. The
    ``DatasetLinks`` and ``SourceDatasets`` of an existing description are kept, those
    given added or updated (the group level knows BIDS_DIR only; the participant level's
    lesion dataset stays linked and listed).
    """
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"OUTPUT_DIR {out} cannot be created: {exc.strerror}.") from exc
    previous = _previous_description(out)
    merged = {**_link_roots(previous.get("DatasetLinks")), **(links or {})}
    description = dataset_description(source_datasets, merged or None)
    description["SourceDatasets"] = _merged_sources(previous.get("SourceDatasets"), description["SourceDatasets"])
    write_json(out / "dataset_description.json", description)
    ignore = out / ".bidsignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    lines += [line for line in BIDSIGNORE if line not in lines]
    write_text(ignore, "\n".join(lines) + "\n")
    return out


def quarantine_outputs(output_dir: str | os.PathLike, subject: str, session: str | None,
                       destination: str | os.PathLike) -> list[Path]:
    """Move a failed participant's outputs out of the derivatives, into ``destination``.

    A participant that fails must leave nothing that the group level or the reports read:
    neither outputs of an earlier run (stale once its inputs or the code changed) nor the
    files this run wrote before the failure. They are moved, not deleted, keeping their
    paths relative to OUTPUT_DIR; the participant's HTML report goes too when no output
    of the participant is left (another session's, say).

    Parameters
    ----------
    output_dir : path-like
        OUTPUT_DIR.
    subject, session : str, str or None
        The participant (without ``sub-``/``ses-``); a None session moves the outputs
        without a session entity.
    destination : path-like
        Folder to move them to (:func:`~bids_stroke.bids.naming.run_path` ``quarantine``).

    Returns
    -------
    list of pathlib.Path
        The moved files' new paths (empty when there was nothing to move).
    """
    from bids_stroke.bids.naming import derivative_folder, find_derivatives, report_path

    root = Path(output_dir)
    files = find_derivatives(root, subject=subject, session=session)
    remaining = set(find_derivatives(root, subject=subject)) - set(files)
    report = report_path(root, subject)
    if not remaining and report.is_file():
        files.append(report)
    moved = []
    for path in files:
        target = Path(destination) / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        moved.append(target)
    folder = derivative_folder(root, subject)
    if folder.is_dir():
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
    return moved
