"""Queries of the input BIDS dataset: which participants to run and which files to use.

pybids indexes the dataset in memory (nothing is written into ``bids_dir``, which may be
read-only). Lesion masks and brain masks come from BIDS derivatives datasets: the one
given with ``--lesion-dir``, or else every dataset under ``bids_dir/derivatives/``.

Sidecar inheritance (``.json``, ``.bval``, ``.bvec``) follows the BIDS inheritance
principle: a file applies to an image when it sits in the image's folder or one of its
parents and its entities are a subset of the image's. The most specific file wins.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bids import BIDSLayout, BIDSLayoutIndexer
from bids.layout import Query

from ..errors import BadInputError, MissingInputError, NoDataSelected, UsageError

__all__ = [
    "DwiInputs",
    "FILTER_KEYS",
    "collect_data",
    "load_bids_filters",
    "load_layout",
    "normalize_labels",
    "select_subjects",
]

#: Keys accepted in a ``--bids-filter-file`` and what each selects.
FILTER_KEYS = {
    "dwi": "the 4D diffusion series (_dwi.nii.gz with bval/bvec, no rec entity)",
    "trace": "the trace image (_rec-TRACE_dwi.nii.gz)",
    "adc": "the ADC map (_rec-ADC_dwi.nii.gz)",
    "lesion": "the lesion mask in a derivatives dataset",
    "brain_mask": "the brain mask in a derivatives dataset (_desc-brain_mask)",
}

#: Short entity names accepted in filter files, mapped to pybids' names.
ENTITY_ALIASES = {
    "sub": "subject",
    "ses": "session",
    "acq": "acquisition",
    "rec": "reconstruction",
    "dir": "direction",
    "ce": "ceagent",
    "trc": "tracer",
    "description": "desc",
}

#: Name in ``GeneratedBy`` of this App's own outputs; such datasets hold no inputs.
OWN_PIPELINE = "bids-stroke"

#: Lesion ``space`` labels meaning "the native grid of the DWI", best first.
NATIVE_SPACES = (None, "orig", "dwi", "native", "individual")

_LABEL_RE = re.compile(r"^[a-zA-Z0-9]+$")
_NIFTI = [".nii.gz", ".nii"]
_MAX_LISTED = 10
#: Entities that say nothing about which image a sidecar belongs to.
_NON_MATCHING = {"suffix", "extension", "datatype"}


@dataclass(frozen=True)
class DwiInputs:
    """The input files of one participant (and session).

    Parameters
    ----------
    subject : str
        Participant label, without ``sub-``.
    session : str or None
        Session label, without ``ses-``; ``None`` when the dataset has no sessions.
    dwi : Path or None
        The 4D diffusion series (``_dwi.nii[.gz]`` without a ``rec`` entity).
    bval, bvec : Path or None
        Its b-values (s/mm²) and b-vectors (the file that applies by inheritance).
    trace : Path or None
        The trace image (``_rec-TRACE_dwi``; 3D).
    adc : Path or None
        The ADC map (``_rec-ADC_dwi``; 3D).
    metadata : dict
        The JSON sidecar of ``dwi`` (or of ``trace`` when there is no ``dwi``), merged
        along the inheritance chain.
    lesion_mask : Path or None
        The lesion mask from a derivatives dataset; ``None`` when there is none.
    brain_mask : Path or None
        A ``desc-brain_mask`` from a derivatives dataset; ``None`` when there is none.
    trace_b_value : float or None
        b-value (s/mm²) of ``trace``: from its own ``.bval`` file when present, else
        from ``DiffusionBValue`` in its sidecar; ``None`` when neither says.
    """

    subject: str
    session: str | None
    dwi: Path | None = None
    bval: Path | None = None
    bvec: Path | None = None
    trace: Path | None = None
    adc: Path | None = None
    metadata: dict = field(default_factory=dict)
    lesion_mask: Path | None = None
    brain_mask: Path | None = None
    trace_b_value: float | None = None

    @property
    def kind(self) -> str:
        """``"4d"`` when a 4D series is available (it is preferred), else ``"trace"``."""
        return "4d" if self.dwi is not None else "trace"


def _read_description(folder: Path) -> dict:
    path = folder / "dataset_description.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadInputError(f"{path}: not valid JSON ({err}).") from err


def _generated_by(description: dict) -> list[str]:
    names = []
    for entry in description.get("GeneratedBy") or []:
        if isinstance(entry, dict) and entry.get("Name"):
            names.append(str(entry["Name"]))
    pipeline = description.get("PipelineDescription")
    if isinstance(pipeline, dict) and pipeline.get("Name"):
        names.append(str(pipeline["Name"]))
    return names


def _ignored_top_level(root: Path) -> list[re.Pattern]:
    """Every top-level folder that is not a subject (code/, sourcedata/, truth/ ...)."""
    patterns = [re.compile(r"/\.")]
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith("sub-"):
            patterns.append(re.compile(rf"^/{re.escape(entry.name)}(/|$)"))
    return patterns


def load_layout(bids_dir, *, lesion_dir=None) -> BIDSLayout:
    """Index a BIDS dataset and its lesion derivatives, in memory.

    Parameters
    ----------
    bids_dir : str or Path
        Root of the BIDS dataset (holds ``dataset_description.json``). It is only read.
    lesion_dir : str or Path or None, default=None
        A BIDS derivatives dataset with the lesion masks. ``None``: every dataset under
        ``bids_dir/derivatives/`` that has a ``dataset_description.json``, except the
        outputs of bids-stroke itself.

    Returns
    -------
    bids.BIDSLayout
        The raw dataset; the derivatives datasets are in ``layout.derivatives``.

    Raises
    ------
    MissingInputError
        ``bids_dir`` or ``lesion_dir`` does not exist or has no
        ``dataset_description.json``.
    BadInputError
        A ``dataset_description.json`` is not valid JSON.
    """
    root = Path(bids_dir).expanduser().absolute()
    if not root.is_dir():
        raise MissingInputError(f"BIDS_DIR {root} does not exist (or is not a folder).")
    if not (root / "dataset_description.json").is_file():
        raise MissingInputError(
            f"BIDS_DIR {root} has no dataset_description.json: 'bids_dir' must be the "
            "root folder of a BIDS dataset."
        )
    _read_description(root)

    if lesion_dir is not None:
        lesion_root = Path(lesion_dir).expanduser().absolute()
        if not lesion_root.is_dir():
            raise MissingInputError(
                f"--lesion-dir {lesion_root} does not exist (or is not a folder)."
            )
        if not (lesion_root / "dataset_description.json").is_file():
            raise MissingInputError(
                f"--lesion-dir {lesion_root} has no dataset_description.json: it must be "
                "the root folder of a BIDS derivatives dataset."
            )
        _read_description(lesion_root)
        derivatives = [lesion_root]
    else:
        derivatives = []
        deriv_root = root / "derivatives"
        if deriv_root.is_dir():
            for folder in sorted(deriv_root.iterdir()):
                if not (folder / "dataset_description.json").is_file():
                    continue
                if OWN_PIPELINE in _generated_by(_read_description(folder)):
                    continue
                derivatives.append(folder)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = BIDSLayout(
            root,
            validate=False,
            derivatives=False,
            indexer=BIDSLayoutIndexer(validate=False, ignore=_ignored_top_level(root)),
        )
        for folder in derivatives:
            layout.add_derivatives(
                folder,
                validate=False,
                indexer=BIDSLayoutIndexer(validate=False, ignore=[re.compile(r"/\.")]),
            )
    return layout


def _read_label_file(path: Path) -> list[str]:
    labels = []
    for line in path.read_text(encoding="utf-8").splitlines():
        labels.extend(line.split("#", 1)[0].split())
    return labels


def normalize_labels(labels, prefix="sub-") -> list[str]:
    """Return BIDS labels without their prefix, de-duplicated, in the given order.

    Parameters
    ----------
    labels : str or iterable of str or None
        Labels, with or without ``prefix``. An item naming an existing file is read as a
        list of labels (whitespace- or line-separated; ``#`` starts a comment).
    prefix : {"sub-", "ses-"}, default="sub-"
        The entity prefix to strip; also names the parameter in error messages.

    Returns
    -------
    list of str
        Empty when ``labels`` is ``None`` or empty.

    Raises
    ------
    UsageError
        A label is empty or not alphanumeric.
    """
    param = {"sub-": "participant_label", "ses-": "session_label"}.get(prefix, "label")
    if labels is None:
        return []
    if isinstance(labels, (str, Path)):
        labels = [labels]
    expanded = []
    for item in labels:
        item_str = str(item).strip()
        candidate = Path(item_str).expanduser()
        maybe_file = isinstance(item, Path) or not _LABEL_RE.match(item_str.removeprefix(prefix))
        if item_str and maybe_file and candidate.is_file():
            expanded.extend(_read_label_file(candidate))
        else:
            expanded.append(item_str)
    result: list[str] = []
    for item in expanded:
        label = item[len(prefix):] if item.startswith(prefix) else item
        if not _LABEL_RE.match(label):
            raise UsageError(
                f"'{param}' must be alphanumeric BIDS labels. Got {label!r} instead."
            )
        if label not in result:
            result.append(label)
    return result


def _bids_root(layout: BIDSLayout) -> Path:
    return Path(layout.root)


def _listing(values, limit=_MAX_LISTED) -> str:
    values = [str(v) for v in values]
    if not values:
        return "none"
    if len(values) <= limit:
        return ", ".join(values)
    return ", ".join(values[:limit]) + f" ... ({len(values) - limit} more)"


def _as_query(value):
    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    if isinstance(value, list):
        return [_as_query(v) for v in value]
    return value


def _filters_for(bids_filters, key) -> dict:
    """pybids keyword filters of ``bids_filters[key]`` (aliases resolved)."""
    filters = (bids_filters or {}).get(key) or {}
    return {ENTITY_ALIASES.get(k, k): _as_query(v) for k, v in filters.items()}


def _dwi_images(layout: BIDSLayout, filters: dict | None = None, **query) -> list:
    """Raw ``_dwi`` NIfTI images (objects) matching ``query`` and ``filters``."""
    base = dict(datatype="dwi", suffix="dwi", extension=_NIFTI, return_type="object")
    base.update(query)
    base.update(filters or {})
    try:
        return layout.get(**base)
    except ValueError as err:
        raise UsageError(f"'bids_filters' must use BIDS entities. {err}") from err


def _rec(bidsfile) -> str | None:
    rec = bidsfile.entities.get("reconstruction")
    return str(rec).lower() if rec is not None else None


def select_subjects(layout, participant_labels=None, session_labels=None, bids_filters=None):
    """Return the (subject, session) pairs to process, sorted.

    Parameters
    ----------
    layout : bids.BIDSLayout
        From :func:`load_layout`.
    participant_labels : iterable of str or None, default=None
        Labels to keep (``sub-`` optional, label files accepted, see
        :func:`normalize_labels`); ``None``: every participant with DWI.
    session_labels : iterable of str or None, default=None
        Session labels to keep; ``None``: all.
    bids_filters : dict or None, default=None
        From :func:`load_bids_filters`; its ``dwi`` and ``trace`` entries restrict the
        images that count.

    Returns
    -------
    list of tuple of (str, str or None)
        Session is ``None`` for a participant without session folders.

    Raises
    ------
    MissingInputError
        The dataset holds no DWI at all.
    NoDataSelected
        A requested participant or session has no DWI, or the filters select nothing.
    """
    root = _bids_root(layout)
    images = [f for f in _dwi_images(layout) if _rec(f) != "adc"]
    if not images:
        raise MissingInputError(
            f"{root}: no DWI found (looked for sub-*/[ses-*/]dwi/*_dwi.nii[.gz])."
        )
    if bids_filters and (bids_filters.get("dwi") or bids_filters.get("trace")):
        selected = {}
        for key in ("dwi", "trace"):
            for f in _dwi_images(layout, _filters_for(bids_filters, key)):
                rec = _rec(f)
                if (key == "dwi" and rec is None) or (key == "trace" and rec == "trace"):
                    selected[f.path] = f
        images = list(selected.values())
    pairs = {(f.entities["subject"], f.entities.get("session")) for f in images
             if "subject" in f.entities}
    if not pairs:
        raise NoDataSelected(
            f"{root}: the BIDS filters select no DWI image; check --bids-filter-file."
        )

    subjects = sorted({s for s, _ in pairs})
    wanted = normalize_labels(participant_labels, "sub-")
    if wanted:
        missing = [s for s in wanted if s not in subjects]
        if missing:
            raise NoDataSelected(
                f"{root}: no DWI for participant label(s) {_listing(missing)}. "
                f"Participants with DWI: {_listing(subjects)}."
            )
        pairs = {p for p in pairs if p[0] in wanted}

    wanted_ses = normalize_labels(session_labels, "ses-")
    if wanted_ses:
        sessions = sorted({s for _, s in pairs if s is not None})
        missing = [s for s in wanted_ses if s not in sessions]
        if missing:
            raise NoDataSelected(
                f"{root}: no DWI for session label(s) {_listing(missing)} in the selected "
                f"participants. Sessions with DWI: {_listing(sessions)}."
            )
        pairs = {p for p in pairs if p[1] in wanted_ses}
    return sorted(pairs, key=lambda p: (p[0], p[1] or ""))


def load_bids_filters(path) -> dict:
    """Read a ``--bids-filter-file`` (fMRIPrep style).

    Parameters
    ----------
    path : str or Path
        JSON object whose keys are among :data:`FILTER_KEYS` and whose values are
        objects of BIDS entity filters, e.g.
        ``{"dwi": {"acquisition": "b1000"}, "lesion": {"space": "orig"}}``. ``null``
        means "the entity must be absent", ``"*"`` "any value".

    Returns
    -------
    dict
        The filters, as read.

    Raises
    ------
    MissingInputError
        The file does not exist.
    UsageError
        The file is not valid JSON, or a key or entity is unknown.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingInputError(f"--bids-filter-file {path} does not exist.")
    try:
        filters = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"--bids-filter-file {path} is not valid JSON: {err}.") from err
    if not isinstance(filters, dict):
        raise UsageError(
            f"--bids-filter-file {path} must hold a JSON object. "
            f"Got {type(filters).__name__} instead."
        )
    known_entities = _known_entities()
    for key, value in filters.items():
        if key not in FILTER_KEYS:
            raise UsageError(
                f"--bids-filter-file {path}: keys must be among {', '.join(FILTER_KEYS)}. "
                f"Got {key!r} instead."
            )
        if not isinstance(value, dict):
            raise UsageError(
                f"--bids-filter-file {path}: {key!r} must map BIDS entities to values. "
                f"Got {json.dumps(value)} instead."
            )
        for entity in value:
            if ENTITY_ALIASES.get(entity, entity) not in known_entities:
                raise UsageError(
                    f"--bids-filter-file {path}: {key!r} filters must name BIDS entities. "
                    f"Got {entity!r} instead."
                )
    return filters


def _known_entities() -> set[str]:
    from importlib.resources import files

    names = set()
    folder = files("bids.layout") / "config"
    for name in ("bids.json", "derivatives.json"):
        names.update(e["name"] for e in json.loads((folder / name).read_text())["entities"])
    return names


def _matching_entities(bidsfile) -> dict:
    return {k: v for k, v in bidsfile.entities.items() if k not in _NON_MATCHING}


def _inherited(layout: BIDSLayout, image, extension: str) -> list:
    """Files of ``extension`` that apply to ``image``, from most general to most specific."""
    image_ents = _matching_entities(image)
    image_dir = Path(image.path).parent
    root = Path(layout.root)
    found = []
    for candidate in layout.get(suffix=image.entities["suffix"], extension=extension,
                                return_type="object"):
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


def _metadata(layout: BIDSLayout, image) -> dict:
    merged: dict = {}
    for sidecar in _inherited(layout, image, ".json"):
        try:
            merged.update(json.loads(Path(sidecar.path).read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadInputError(f"{sidecar.path}: not valid JSON ({err}).") from err
    return merged


def _nearest(layout, image, extension) -> Path | None:
    chain = _inherited(layout, image, extension)
    return Path(chain[-1].path) if chain else None


def _one(candidates: list, what: str, key: str, subject, session) -> object | None:
    if not candidates:
        return None
    if len(candidates) > 1:
        where = f"sub-{subject}" + (f" ses-{session}" if session else "")
        names = _listing(sorted(Path(c.path).name for c in candidates))
        if len({c.entities.get("session") for c in candidates}) > 1:
            hint = "Select a session with --session-label"
        else:
            hint = (f"Select one with --bids-filter-file, e.g. "
                    f"{{\"{key}\": {{\"acquisition\": \"<label>\"}}}}")
        raise BadInputError(f"{where}: several {what} images match ({names}). {hint}.")
    return candidates[0]


def _volumes(path: Path) -> tuple[int, ...]:
    from .nifti import check_nifti

    return tuple(check_nifti(path, load_data=False).shape)


def _read_bvals(path: Path) -> list[float]:
    try:
        return [float(v) for v in path.read_text(encoding="utf-8").split()]
    except (UnicodeDecodeError, ValueError) as err:
        raise BadInputError(f"{path}: b-values must be numbers ({err}).") from err


def _derivative_layouts(layout: BIDSLayout) -> list[BIDSLayout]:
    return list(layout.derivatives.values())


def _space_rank(bidsfile) -> int:
    space = bidsfile.entities.get("space")
    space = str(space).lower() if space is not None else None
    return NATIVE_SPACES.index(space) if space in NATIVE_SPACES else len(NATIVE_SPACES)


def _best_derivative(layout, image, candidates, what, key, subject, session):
    """Among derivative ``candidates``, those closest to ``image``'s grid and entities."""
    if not candidates:
        return None
    best_rank = min(_space_rank(c) for c in candidates)
    candidates = [c for c in candidates if _space_rank(c) == best_rank]
    if len(candidates) > 1:
        for entity in ("acquisition", "run", "reconstruction"):
            value = image.entities.get(entity)
            same = [c for c in candidates if c.entities.get(entity) == value]
            if same:
                candidates = same
    chosen = _one(candidates, what, key, subject, session)
    return Path(chosen.path)


def _is_lesion(bidsfile) -> bool:
    ents = bidsfile.entities
    if ents.get("suffix") == "mask":
        return ents.get("label") == "lesion" or ents.get("desc") == "lesion"
    return ents.get("suffix") == "roi" and ents.get("label") == "lesion"


def _derivative_query(layout, bids_filters, key, subject, session, **query):
    found = []
    filters = _filters_for(bids_filters, key)
    for deriv in _derivative_layouts(layout):
        base = dict(subject=subject, session=session if session else Query.NONE,
                    extension=_NIFTI, return_type="object")
        base.update(query)
        base.update(filters)
        try:
            found.extend(deriv.get(**base, invalid_filters="drop"))
        except ValueError as err:
            raise UsageError(f"'bids_filters' must use BIDS entities. {err}") from err
    return found


def collect_data(layout, subject, session=None, bids_filters=None) -> DwiInputs:
    """Find the input files of one participant (and session).

    Parameters
    ----------
    layout : bids.BIDSLayout
        From :func:`load_layout`.
    subject : str
        Participant label (``sub-`` optional).
    session : str or None, default=None
        Session label; ``None`` accepts any session (an error if that makes the choice
        ambiguous).
    bids_filters : dict or None, default=None
        From :func:`load_bids_filters`.

    Returns
    -------
    DwiInputs
        The 4D series (with its bval/bvec) and/or the trace image, the ADC map, the
        merged sidecar, and the lesion and brain masks when the derivatives hold them.

    Raises
    ------
    MissingInputError
        No DWI for this participant/session.
    BadInputError
        A 4D series without bval or bvec (or with as many b-values as volumes), a 3D
        ``_dwi`` without ``rec`` entity, or several candidates of one kind.
    """
    subject = normalize_labels([subject], "sub-")[0]
    if session is not None:
        session = normalize_labels([session], "ses-")[0]
    where = f"sub-{subject}" + (f" ses-{session}" if session else "")
    query = dict(subject=subject)
    if session is not None:
        query["session"] = session

    all_images = _dwi_images(layout, **query)
    if not all_images:
        raise MissingInputError(
            f"{_bids_root(layout)}: no DWI found for {where} (looked for "
            f"sub-{subject}/" + (f"ses-{session}/" if session else "[ses-*/]")
            + "dwi/*_dwi.nii[.gz])."
        )
    series = [f for f in _dwi_images(layout, _filters_for(bids_filters, "dwi"), **query)
              if _rec(f) is None]
    traces = [f for f in _dwi_images(layout, _filters_for(bids_filters, "trace"), **query)
              if _rec(f) == "trace"]
    adcs = [f for f in _dwi_images(layout, _filters_for(bids_filters, "adc"), **query)
            if _rec(f) == "adc"]
    if not series and not traces:
        names = _listing(sorted(Path(f.path).name for f in all_images))
        raise MissingInputError(
            f"{_bids_root(layout)}: no usable DWI for {where}: need a 4D _dwi.nii[.gz] "
            f"series or a _rec-TRACE_dwi.nii[.gz] image (found {names}; check "
            "--bids-filter-file)."
        )

    dwi = _one(series, "4D DWI", "dwi", subject, session)
    trace = _one(traces, "trace (rec-TRACE)", "trace", subject, session)
    adc = _one(adcs, "ADC (rec-ADC)", "adc", subject, session)

    bval = bvec = None
    if dwi is not None:
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
                f"{bval}: must hold one b-value per volume ({shape[3]}). "
                f"Got {n_bvals} instead."
            )

    trace_b_value = None
    if trace is not None:
        own_bval = _nearest(layout, trace, ".bval")  # its own, or inherited (BIDS inheritance)
        if own_bval is not None:
            values = _read_bvals(own_bval)
            trace_b_value = max(values) if values else None
    main = dwi if dwi is not None else trace
    metadata = _metadata(layout, main)
    if trace is not None and trace_b_value is None:
        trace_meta = metadata if main is trace else _metadata(layout, trace)
        for key in ("DiffusionBValue", "BValue", "bValue"):
            if isinstance(trace_meta.get(key), (int, float)):
                trace_b_value = float(trace_meta[key])
                break

    found_session = main.entities.get("session")
    lesions = [f for f in _derivative_query(layout, bids_filters, "lesion", subject,
                                            found_session, suffix=["mask", "roi"])
               if _is_lesion(f)]
    lesion_mask = _best_derivative(layout, main, lesions, "lesion mask", "lesion",
                                   subject, found_session)
    brains = [f for f in _derivative_query(layout, bids_filters, "brain_mask", subject,
                                           found_session, suffix="mask", desc="brain",
                                           datatype="dwi")]
    brain_mask = _best_derivative(layout, main, brains, "brain mask", "brain_mask",
                                  subject, found_session)

    return DwiInputs(
        subject=subject,
        session=found_session,
        dwi=Path(dwi.path) if dwi is not None else None,
        bval=bval,
        bvec=bvec,
        trace=Path(trace.path) if trace is not None else None,
        adc=Path(adc.path) if adc is not None else None,
        metadata=metadata,
        lesion_mask=lesion_mask,
        brain_mask=brain_mask,
        trace_b_value=trace_b_value,
    )
