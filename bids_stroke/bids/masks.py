"""Lesion and brain masks in the BIDS derivatives datasets of a layout.

The derivatives datasets are those :func:`bids_stroke.bids.layout.load_layout` added
(``--lesion-dir``, or else those under ``bids_dir/derivatives/``). A lesion mask is a
``_label-lesion_mask``, ``_desc-lesion_mask`` or ``_label-lesion_roi`` image; a brain
mask a ``dwi/..._desc-brain_mask`` image.
"""

from __future__ import annotations

from bids import BIDSLayout
from bids.layout import Query

from ..errors import UsageError
from .filters import entity_filters

__all__ = ["NATIVE_SPACES", "brain_masks", "closest_to", "lesion_masks"]

#: Lesion ``space`` labels meaning "the native grid of the DWI", best first.
NATIVE_SPACES = (None, "orig", "dwi", "native", "individual")

_NIFTI = [".nii.gz", ".nii"]


def _derivative_query(layout: BIDSLayout, bids_filters, key, subject, session, **query):
    found = []
    filters = entity_filters(bids_filters, key)
    for deriv in layout.derivatives.values():
        base = dict(subject=subject, session=session if session else Query.NONE,
                    extension=_NIFTI, return_type="object")
        base.update(query)
        base.update(filters)
        try:
            found.extend(deriv.get(**base, invalid_filters="drop"))
        except ValueError as err:
            raise UsageError(f"'bids_filters' must use BIDS entities. {err}") from err
    return found


def _is_lesion(bidsfile) -> bool:
    ents = bidsfile.entities
    if ents.get("suffix") == "mask":
        return ents.get("label") == "lesion" or ents.get("desc") == "lesion"
    return ents.get("suffix") == "roi" and ents.get("label") == "lesion"


def lesion_masks(layout: BIDSLayout, subject, session, bids_filters=None) -> list:
    """The lesion masks of one participant (and session) in the derivatives datasets.

    Parameters
    ----------
    layout : bids.BIDSLayout
        From :func:`bids_stroke.bids.layout.load_layout`.
    subject : str
        Participant label, without ``sub-``.
    session : str or None
        Session label, without ``ses-``; ``None`` keeps masks without a session.
    bids_filters : dict or None, default=None
        From :func:`bids_stroke.bids.filters.load_bids_filters`; its ``lesion`` entry
        applies.

    Returns
    -------
    list of bids.layout.BIDSFile

    Raises
    ------
    UsageError
        The filters name an entity pybids does not know.
    """
    found = _derivative_query(layout, bids_filters, "lesion", subject, session,
                              suffix=["mask", "roi"])
    return [f for f in found if _is_lesion(f)]


def brain_masks(layout: BIDSLayout, subject, session, bids_filters=None) -> list:
    """The ``desc-brain_mask`` images of one participant (and session).

    Parameters are those of :func:`lesion_masks`; the ``brain_mask`` entry of
    ``bids_filters`` applies.
    """
    return _derivative_query(layout, bids_filters, "brain_mask", subject, session,
                             suffix="mask", desc="brain", datatype="dwi")


def _space_rank(bidsfile) -> int:
    space = bidsfile.entities.get("space")
    space = str(space).lower() if space is not None else None
    return NATIVE_SPACES.index(space) if space in NATIVE_SPACES else len(NATIVE_SPACES)


def closest_to(image, candidates: list) -> list:
    """The ``candidates`` closest to ``image``'s grid and entities.

    Parameters
    ----------
    image : bids.layout.BIDSFile
        The DWI image the masks belong to.
    candidates : list of bids.layout.BIDSFile
        Masks of the same participant and session.

    Returns
    -------
    list of bids.layout.BIDSFile
        Those in the best space of :data:`NATIVE_SPACES` (any other space ranks last);
        among several, those sharing ``image``'s acquisition, run and reconstruction
        where some do. Empty when ``candidates`` is.
    """
    if not candidates:
        return []
    best_rank = min(_space_rank(c) for c in candidates)
    candidates = [c for c in candidates if _space_rank(c) == best_rank]
    if len(candidates) > 1:
        for entity in ("acquisition", "run", "reconstruction"):
            value = image.entities.get(entity)
            same = [c for c in candidates if c.entities.get(entity) == value]
            if same:
                candidates = same
    return candidates
