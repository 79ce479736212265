"""Leave-one-center-out folds, the stratified train/validation split and the leakage guard.

Every function takes the cohort as plain arrays, one entry per participant, and returns
integer positions into those arrays; nothing here reads files or keeps state.

Folds
-----
:func:`loco_folds` makes one fold per site, holding that site out as the test set and
keeping every other participant for training and validation (Moulton et al. 2022). Sites
with a single participant cannot be a meaningful test set on their own, so they are
pooled first into one pseudo-site named :data:`MERGED_SITE`. When exactly one site is a
singleton, that pool would itself hold a single participant: the participant then joins
the smallest other site instead (fewest participants, the first by name on a tie), and
that site's fold tests both. Fewer than two folds after merging make LOCO impossible
(:class:`~bids_stroke.errors.BadInputError`, exit 65).

Split
-----
:func:`train_validation_split` divides a fold's training-and-validation participants
75:25, stratified by site × outcome: each stratum of ``n`` participants gives either
``floor(0.25 n)`` or ``ceil(0.25 n)`` of them to validation (so every stratum is within
one participant of 25 %), the total is ``round(0.25 N)`` (largest remainders first, ties
broken by the seed), and, whenever a class has at least two participants, validation
holds at least one of it and training keeps at least one of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bids_stroke.errors import BadInputError

__all__ = [
    "MERGED_SITE",
    "Fold",
    "check_fold_outcomes",
    "check_no_leakage",
    "loco_folds",
    "site_groups",
    "train_validation_split",
]

#: Name of the pseudo-site pooling the sites that have a single participant.
MERGED_SITE = "merged-singletons"

#: Fraction of a fold's training-and-validation participants used for validation.
VALIDATION_FRACTION = 0.25


@dataclass(frozen=True)
class Fold:
    """One leave-one-center-out fold.

    Attributes
    ----------
    name : str
        The held-out site, or :data:`MERGED_SITE` for the pooled singleton sites.
    test_index : ndarray of int, shape (n_test,)
        Positions (ascending) of the held-out participants.
    trainval_index : ndarray of int, shape (n_trainval,)
        Positions (ascending) of every other participant, to be split into training and
        validation.
    sites : tuple of str
        The original site labels held out by this fold (several for a merged fold).
    """

    name: str
    test_index: np.ndarray = field(repr=False)
    trainval_index: np.ndarray = field(repr=False)
    sites: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The fold as JSON-ready values."""
        return {"name": self.name, "sites": list(self.sites),
                "test_index": self.test_index.tolist(),
                "trainval_index": self.trainval_index.tolist()}


def _as_labels(values, name: str) -> np.ndarray:
    labels = np.asarray(values, dtype=object)
    if labels.ndim != 1:
        raise ValueError(f"'{name}' must be one-dimensional. Got shape {labels.shape} instead.")
    missing = [i for i, v in enumerate(labels)
               if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in ("", "n/a")]
    if missing:
        raise BadInputError(
            f"'{name}' must name every participant's site. Got no site for the participants at "
            f"positions {missing[:10]}{' ...' if len(missing) > 10 else ''}; fill the site column "
            "or exclude them.")
    return np.array([str(v) for v in labels], dtype=object)


def _as_outcomes(values, name: str = "outcomes") -> np.ndarray:
    outcomes = np.asarray(values)
    if outcomes.ndim != 1:
        raise ValueError(f"'{name}' must be one-dimensional. Got shape {outcomes.shape} instead.")
    if outcomes.size and not np.isin(outcomes, (0, 1)).all():
        bad = sorted({repr(v) for v in outcomes[~np.isin(outcomes, (0, 1))].tolist()})[:5]
        raise ValueError(f"'{name}' must hold 0 (good) or 1 (poor outcome). Got {', '.join(bad)} instead.")
    return outcomes.astype(np.int64)


def site_groups(sites) -> np.ndarray:
    """The fold each participant belongs to, after merging singleton sites.

    Parameters
    ----------
    sites : array-like of str, shape (n,)
        Acquisition site of every participant.

    Returns
    -------
    ndarray of str (object), shape (n,)
        The site label, :data:`MERGED_SITE` for participants of single-participant sites,
        or, when only one site is a singleton, the label of the smallest other site
        (fewest participants, first by name) for its participant.

    Raises
    ------
    BadInputError
        A site is missing, or a site is already called :data:`MERGED_SITE`.
    """
    labels = _as_labels(sites, "sites")
    counts = Counter(labels.tolist())
    if MERGED_SITE in counts:
        raise BadInputError(f"'sites' must not use the reserved label {MERGED_SITE!r}; rename that site.")
    singletons = sorted(site for site, count in counts.items() if count == 1)
    groups = labels.copy()
    if len(singletons) >= 2:
        groups[np.isin(labels, singletons)] = MERGED_SITE
    elif len(singletons) == 1:
        others = sorted((count, site) for site, count in counts.items() if count > 1)
        if others:
            groups[labels == singletons[0]] = others[0][1]
    return groups


def loco_folds(sites) -> list[Fold]:
    """Leave-one-center-out folds: one per site, holding that site out.

    Parameters
    ----------
    sites : array-like of str, shape (n,)
        Acquisition site of every participant.

    Returns
    -------
    list of Fold
        Sorted by fold name. Every participant is in exactly one fold's ``test_index``;
        each fold's ``trainval_index`` is every participant not in its ``test_index``.
        Single-participant sites are merged as :func:`site_groups` explains.

    Raises
    ------
    BadInputError
        Fewer than two folds remain (a single site, possibly after merging).

    Examples
    --------
    >>> [(f.name, f.test_index.tolist()) for f in loco_folds(["A", "B", "A", "C", "D", "B"])]
    [('A', [0, 2]), ('B', [1, 5]), ('merged-singletons', [3, 4])]
    """
    labels = _as_labels(sites, "sites")
    groups = site_groups(labels)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise BadInputError(
            f"Leave-one-center-out needs at least two sites with participants. Got "
            f"{len(set(labels.tolist()))} site(s) ({', '.join(sorted(set(labels.tolist())))}) "
            f"for {labels.size} participant(s), which make {len(names)} fold(s); check the site "
            "column (--site-column) or add participants from other sites.")
    everyone = np.arange(labels.size)
    folds = []
    for name in names:
        held_out = groups == name
        folds.append(Fold(name, everyone[held_out], everyone[~held_out],
                          tuple(sorted(set(labels[held_out].tolist())))))
    return folds


def check_no_leakage(fold: Fold, sites, *index_sets) -> None:
    """Raise if a participant or a site of the fold's test set is also used to train.

    Parameters
    ----------
    fold : Fold
    sites : array-like of str, shape (n,)
        Acquisition site of every participant (the original labels).
    *index_sets : ndarray of int
        Positions used for training or validation (e.g. the two halves of the split).

    Raises
    ------
    RuntimeError
        A test participant, or a participant of a test site, is in one of ``index_sets``.
    """
    labels = _as_labels(sites, "sites")
    test = set(np.asarray(fold.test_index).tolist())
    test_sites = set(labels[np.asarray(fold.test_index, dtype=int)].tolist())
    for index in index_sets:
        index = np.asarray(index, dtype=int)
        shared = sorted(test.intersection(index.tolist()))
        leaked = sorted(set(labels[index].tolist()) & test_sites)
        if shared or leaked:
            raise RuntimeError(
                f"Leakage in fold {fold.name!r}: participants {shared[:10]} and sites {leaked} of "
                "the held-out set are also in its training or validation set.")


def check_fold_outcomes(fold: Fold, outcomes, *, minimum: int = 2) -> None:
    """Raise if the fold's training-and-validation set has too few of either outcome.

    Parameters
    ----------
    fold : Fold
    outcomes : array-like of {0, 1}, shape (n,)
        Poor outcome (1) or good outcome (0) of every participant.
    minimum : int, default=2
        Participants needed of each outcome (one for training, one for validation).

    Raises
    ------
    BadInputError
    """
    y = _as_outcomes(outcomes)[np.asarray(fold.trainval_index, dtype=int)]
    counts = {label: int((y == value).sum()) for value, label in ((0, "good"), (1, "poor"))}
    if min(counts.values()) < minimum:
        raise BadInputError(
            f"Fold {fold.name!r} must train on at least {minimum} participants of each outcome. "
            f"Got {counts['good']} good and {counts['poor']} poor outside site(s) "
            f"{', '.join(fold.sites)}; add participants or merge sites.")


def train_validation_split(index, sites, outcomes, *, fraction: float = VALIDATION_FRACTION,
                           seed) -> tuple[np.ndarray, np.ndarray]:
    """Split participants into training and validation, stratified by site × outcome.

    Parameters
    ----------
    index : array-like of int, shape (m,)
        Positions of the participants to split (e.g. ``fold.trainval_index``).
    sites : array-like of str, shape (n,)
        Site of every participant of the cohort (indexed by ``index``).
    outcomes : array-like of {0, 1}, shape (n,)
        Outcome of every participant of the cohort (indexed by ``index``).
    fraction : float, default=0.25
        Fraction for validation, in (0, 1).
    seed : int or sequence of int
        Seed of :func:`numpy.random.default_rng`; the split is a function of the seed.

    Returns
    -------
    train_index, validation_index : ndarray of int
        Ascending positions, disjoint, together ``index``. Each site × outcome stratum of
        ``n_s`` participants puts ``floor(fraction n_s)`` or ``ceil(fraction n_s)`` of them in
        validation; the validation total is ``round(fraction m)`` (possibly one more to put
        each class in validation). A class with at least two participants is present in
        both halves.

    Examples
    --------
    >>> tr, va = train_validation_split(range(8), ["A"] * 8, [0, 1] * 4, seed=0)
    >>> len(tr), len(va), sorted(np.asarray([0, 1] * 4)[va].tolist())
    (6, 2, [0, 1])
    """
    if not 0 < fraction < 1:
        raise ValueError(f"'fraction' must be in (0, 1). Got {fraction!r} instead.")
    index = np.unique(np.asarray(index, dtype=np.int64))
    labels = _as_labels(sites, "sites")
    y = _as_outcomes(outcomes)
    if labels.size != y.size:
        raise ValueError(f"'sites' and 'outcomes' must have one entry per participant. Got "
                         f"{labels.size} and {y.size} instead.")
    if index.size and (index.min() < 0 or index.max() >= y.size):
        raise ValueError(f"'index' must hold positions in [0, {y.size}). "
                         f"Got {index.min()}..{index.max()} instead.")
    rng = np.random.default_rng(seed)

    keys = sorted({(labels[i], int(y[i])) for i in index})
    members = {key: index[(labels[index] == key[0]) & (y[index] == key[1])] for key in keys}
    sizes = np.array([members[key].size for key in keys])
    exact = fraction * sizes
    take = np.floor(exact).astype(int)
    remainder = exact - take
    target = int(np.floor(fraction * index.size + 0.5))
    # Largest remainders first; the seed breaks ties.
    order = np.lexsort((rng.permutation(len(keys)), -remainder))
    for k in order[: max(0, target - int(take.sum()))]:
        if remainder[k] > 0:
            take[k] += 1
    classes = np.array([key[1] for key in keys])
    for value in (0, 1):
        of_class = classes == value
        total = int(sizes[of_class].sum())
        if total < 2:
            continue
        if take[of_class].sum() == 0:  # validation lacks this class: give it one
            candidates = [k for k in order if of_class[k] and remainder[k] > 0]
            take[candidates[0]] += 1
        while take[of_class].sum() >= total:  # training lacks this class: keep one
            candidates = [k for k in order[::-1] if of_class[k] and take[k] > np.floor(exact[k])]
            take[candidates[0]] -= 1
    validation = [rng.permutation(members[key])[:n] for key, n in zip(keys, take)]
    validation = np.sort(np.concatenate(validation)) if validation else np.array([], dtype=np.int64)
    train = np.setdiff1d(index, validation)
    return train.astype(np.int64), validation.astype(np.int64)
