"""Queries of the input BIDS dataset: which participants to run and which files to use.

pybids indexes the dataset in memory (nothing is written into ``bids_dir``, which may be
read-only). Lesion masks and brain masks come from BIDS derivatives datasets: the one
given with ``--lesion-dir``, or else every dataset under ``bids_dir/derivatives/``
(:mod:`.masks`). Sidecars follow the BIDS inheritance principle (:mod:`.metadata`).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bids import BIDSLayout, BIDSLayoutIndexer
from bids.layout import Query

from ..errors import BadInputError, MissingInputError, NoDataSelected, UsageError
from .filters import entity_filters
from .labels import normalize_labels
from .masks import brain_masks, closest_to, lesion_masks
from .metadata import (
    b_value_from_bval,
    b_value_from_sidecar,
    gradient_files,
    merged_metadata,
    read_sidecar,
)
from .naming import participant_id, participant_label, session_id

__all__ = ["DwiInputs", "collect_data", "load_layout", "select_subjects"]

#: Name in ``GeneratedBy`` of this App's own outputs; such datasets hold no inputs.
OWN_PIPELINE = "bids-stroke"

_NIFTI = [".nii.gz", ".nii"]
_MAX_LISTED = 10


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
    return read_sidecar(folder / "dataset_description.json")


def _check_shared_sidecars(folder: Path) -> None:
    """Read the JSON files at the top of a dataset: they apply to every participant.

    Raises
    ------
    BadInputError
        One of them is not a valid JSON object; no participant can be run.
    """
    for path in sorted(folder.glob("*.json")):
        if not path.name.startswith(".") and path.is_file():
            read_sidecar(path)


def _check_participant_sidecars(layout: BIDSLayout, subject: str, session: str | None) -> None:
    """Read every JSON file of one participant (and session), raw and derivatives.

    pybids does not parse them (:func:`load_layout`), so a broken file fails only the
    participant it belongs to.

    Raises
    ------
    BadInputError
        One of them is not a valid JSON object.
    """
    query = {"subject": subject, "extension": ".json", "return_type": "filename"}
    if session is not None:
        query["session"] = [session, Query.NONE]
    for path in sorted(layout.get(**query)):
        read_sidecar(path)


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


def _check_no_symlink_loops(root: Path, *, subjects_only: bool) -> None:
    """Refuse a symbolic link to a folder that contains it, before pybids indexes ``root``.

    pybids follows links to folders: a loop makes it index the same files again and again
    (endless with two loops). The folders pybids would enter are walked, following the
    links, with the real paths of the current folder and its ancestors at hand.

    Parameters
    ----------
    root : Path
        A dataset's root folder.
    subjects_only : bool
        Enter only the ``sub-*`` folders at the top (the others are not indexed, see
        :func:`_ignored_top_level`). Hidden entries are never entered.

    Raises
    ------
    BadInputError
        Naming the first link found whose target is the folder holding it or one of its
        ancestors (through any chain of links).
    """
    pending = [(root, (os.path.realpath(root),))]
    while pending:
        folder, chain = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # unreadable: pybids will say so, or skip it
        inside = []
        for entry in entries:
            if entry.name.startswith(".") or (
                    subjects_only and folder == root and not entry.name.startswith("sub-")):
                continue
            try:
                if not entry.is_dir():  # follows links; a broken or self link is no folder
                    continue
            except OSError:
                continue
            real = os.path.realpath(entry.path)
            if real in chain:
                raise BadInputError(
                    f"{entry.path}: a symbolic link to {real}, a folder that contains it: the "
                    "dataset would loop without end; remove the link (or replace it by a copy)."
                )
            inside.append((Path(entry.path), (*chain, real)))
        pending.extend(reversed(inside))  # depth first, by name


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
        A JSON file at the top of a dataset (``dataset_description.json``, a sidecar
        inherited by every participant such as ``dwi.json``) is not a valid JSON object,
        or a symbolic link to a folder makes a dataset loop.

    Notes
    -----
    pybids does not parse the JSON sidecars here (``index_metadata=False``): one broken
    sidecar would abort the whole indexing. Those at the top of each dataset are read
    here; those of a participant when its data are collected (:func:`collect_data`), so
    a broken one fails that participant only. bids-stroke reads metadata itself
    (:mod:`.metadata`).
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

    for folder in [root, *derivatives]:
        _check_no_symlink_loops(folder, subjects_only=folder == root)
        _check_shared_sidecars(folder)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = BIDSLayout(
            root,
            validate=False,
            derivatives=False,
            indexer=BIDSLayoutIndexer(validate=False, index_metadata=False,
                                      ignore=_ignored_top_level(root)),
        )
        for folder in derivatives:
            layout.add_derivatives(
                folder,
                validate=False,
                indexer=BIDSLayoutIndexer(validate=False, index_metadata=False,
                                          ignore=[re.compile(r"/\.")]),
            )
    return layout


def _bids_root(layout: BIDSLayout) -> Path:
    return Path(layout.root)


def _listing(values, limit=_MAX_LISTED) -> str:
    values = [str(v) for v in values]
    if not values:
        return "none"
    if len(values) <= limit:
        return ", ".join(values)
    return ", ".join(values[:limit]) + f" ... ({len(values) - limit} more)"


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
        :func:`~bids_stroke.bids.labels.normalize_labels`); ``None``: every participant
        with DWI.
    session_labels : iterable of str or None, default=None
        Session labels to keep; ``None``: all.
    bids_filters : dict or None, default=None
        From :func:`~bids_stroke.bids.filters.load_bids_filters`; its ``dwi`` and
        ``trace`` entries restrict the images that count.

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
            for f in _dwi_images(layout, entity_filters(bids_filters, key)):
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


def _one(candidates: list, what: str, key: str, subject, session) -> object | None:
    if not candidates:
        return None
    if len(candidates) > 1:
        where = participant_label({"subject": subject, "session": session})
        names = _listing(sorted(Path(c.path).name for c in candidates))
        if len({c.entities.get("session") for c in candidates}) > 1:
            hint = "Select a session with --session-label"
        else:
            hint = (f"Select one with --bids-filter-file, e.g. "
                    f"{{\"{key}\": {{\"acquisition\": \"<label>\"}}}}")
        raise BadInputError(f"{where}: several {what} images match ({names}). {hint}.")
    return candidates[0]


def _best_mask(image, candidates, what, key, subject, session) -> Path | None:
    """The one mask of ``candidates`` closest to ``image``; ``None`` when there is none."""
    chosen = _one(closest_to(image, candidates), what, key, subject, session)
    return Path(chosen.path) if chosen is not None else None


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
        From :func:`~bids_stroke.bids.filters.load_bids_filters`.

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
        A JSON file of this participant (raw or derivatives) that is not a valid JSON
        object, a 4D series without bval or bvec or whose files do not give one b-value
        and one b-vector per volume (:func:`~.metadata.gradient_files`), a trace b-value
        that is not a positive number, a 3D ``_dwi`` without ``rec`` entity, or several
        candidates of one kind.
    """
    subject = normalize_labels([subject], "sub-")[0]
    if session is not None:
        session = normalize_labels([session], "ses-")[0]
    where = participant_label({"subject": subject, "session": session})
    query = dict(subject=subject)
    if session is not None:
        query["session"] = session

    all_images = _dwi_images(layout, **query)
    if not all_images:
        raise MissingInputError(
            f"{_bids_root(layout)}: no DWI found for {where} (looked for "
            f"{participant_id(subject)}/" + (f"{session_id(session)}/" if session else "[ses-*/]")
            + "dwi/*_dwi.nii[.gz])."
        )
    _check_participant_sidecars(layout, subject, session)

    def images(key):  # the participant's DWI images, filtered for one kind (asked again only when filtered)
        filters = entity_filters(bids_filters, key)
        return _dwi_images(layout, filters, **query) if filters else all_images

    series = [f for f in images("dwi") if _rec(f) is None]
    traces = [f for f in images("trace") if _rec(f) == "trace"]
    adcs = [f for f in images("adc") if _rec(f) == "adc"]
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

    bval, bvec = gradient_files(layout, dwi) if dwi is not None else (None, None)
    trace_b_value = b_value_from_bval(layout, trace) if trace is not None else None
    main = dwi if dwi is not None else trace
    metadata = merged_metadata(layout, main)
    if trace is not None and trace_b_value is None:
        trace_b_value = b_value_from_sidecar(layout, trace)

    found_session = main.entities.get("session")
    lesions = lesion_masks(layout, subject, found_session, bids_filters)
    lesion_mask = _best_mask(main, lesions, "lesion mask", "lesion", subject, found_session)
    brains = brain_masks(layout, subject, found_session, bids_filters)
    brain_mask = _best_mask(main, brains, "brain mask", "brain_mask", subject, found_session)

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
