"""The ``--bids-filter-file``: which image of each input kind to use.

The file is a JSON object (fMRIPrep style) mapping an input kind (:data:`FILTER_KEYS`) to
BIDS entity filters, e.g. ``{"dwi": {"acquisition": "b1000"}}``. Entities may be given
by their short names (``acq``, ``rec`` ...); ``null`` means "the entity must be absent"
and ``"*"`` "any value".
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from bids.layout import Query

from ..errors import MissingInputError, UsageError

__all__ = ["FILTER_KEYS", "entity_filters", "load_bids_filters"]

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
    """Entity names of pybids' raw and derivatives configurations."""
    names = set()
    folder = files("bids.layout") / "config"
    for name in ("bids.json", "derivatives.json"):
        names.update(e["name"] for e in json.loads((folder / name).read_text())["entities"])
    return names


def _as_query(value):
    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    if isinstance(value, list):
        return [_as_query(v) for v in value]
    return value


def entity_filters(bids_filters, key) -> dict:
    """The pybids keyword filters of one input kind.

    Parameters
    ----------
    bids_filters : dict or None
        From :func:`load_bids_filters`; ``None`` filters nothing.
    key : str
        One of :data:`FILTER_KEYS`.

    Returns
    -------
    dict
        ``bids_filters[key]`` with short entity names resolved, ``null`` turned into
        ``Query.NONE`` and ``"*"`` into ``Query.ANY``; empty when there is none.
    """
    filters = (bids_filters or {}).get(key) or {}
    return {ENTITY_ALIASES.get(k, k): _as_query(v) for k, v in filters.items()}
