"""Leave-one-center-out folds, singleton merging, the leakage guard and the stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from bids_stroke.errors import BadInputError
from bids_stroke.train.folds import (
    MERGED_SITE,
    Fold,
    check_fold_outcomes,
    check_no_leakage,
    loco_folds,
    site_groups,
    train_validation_split,
)


@pytest.fixture
def cohort():
    """120 participants on 5 sites of unequal size plus two single-participant sites."""
    rng = np.random.default_rng(7)
    sizes = {"A": 40, "B": 31, "C": 23, "D": 13, "E": 11, "F": 1, "G": 1}
    sites = np.array([s for s, n in sizes.items() for _ in range(n)], dtype=object)
    rng.shuffle(sites)
    outcomes = (rng.random(sites.size) < 0.42).astype(int)
    return sites, outcomes


def test_folds_partition_everyone_and_hold_out_their_site(cohort):
    sites, _ = cohort
    folds = loco_folds(sites)
    assert [f.name for f in folds] == ["A", "B", "C", "D", "E", MERGED_SITE]
    tests = np.concatenate([f.test_index for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(sites.size))  # everyone tested exactly once
    for fold in folds:
        assert np.intersect1d(fold.test_index, fold.trainval_index).size == 0
        assert np.array_equal(np.union1d(fold.test_index, fold.trainval_index), np.arange(sites.size))
        held_out = set(sites[fold.test_index])
        assert held_out == set(fold.sites)
        assert held_out.isdisjoint(sites[fold.trainval_index])
        check_no_leakage(fold, sites, fold.trainval_index)


def test_singleton_sites_are_merged(cohort):
    sites, _ = cohort
    folds = {f.name: f for f in loco_folds(sites)}
    merged = folds[MERGED_SITE]
    assert merged.sites == ("F", "G")
    assert sorted(sites[merged.test_index]) == ["F", "G"]
    assert "F" not in folds and "G" not in folds


def test_a_lone_singleton_joins_the_smallest_site():
    sites = ["A"] * 5 + ["B"] * 3 + ["C"] * 3 + ["D"]
    groups = site_groups(sites)
    assert groups[-1] == "B"  # B and C tie on 3: first by name
    folds = {f.name: f for f in loco_folds(sites)}
    assert set(folds) == {"A", "B", "C"}
    assert folds["B"].sites == ("B", "D")
    assert folds["B"].test_index.tolist() == [5, 6, 7, 11]


def test_single_site_is_bad_input():
    with pytest.raises(BadInputError, match="at least two sites"):
        loco_folds(["A"] * 6)
    with pytest.raises(BadInputError, match="at least two sites"):
        loco_folds(["A"] * 6 + ["B"])  # the lone singleton joins A: one fold
    with pytest.raises(BadInputError, match="site"):
        loco_folds(["A", None, "B", "B"])
    with pytest.raises(BadInputError, match="reserved"):
        loco_folds(["A", "A", MERGED_SITE, MERGED_SITE])


def test_leakage_guard_can_fail(cohort):
    sites, _ = cohort
    fold = loco_folds(sites)[0]
    with pytest.raises(RuntimeError, match="Leakage"):
        check_no_leakage(fold, sites, fold.trainval_index, fold.test_index[:1])
    # a participant of another fold relabelled to the held-out site leaks by site
    relabelled = sites.copy()
    relabelled[fold.trainval_index[0]] = fold.name
    with pytest.raises(RuntimeError, match="Leakage"):
        check_no_leakage(fold, relabelled, fold.trainval_index)


def test_fold_outcome_check():
    fold = Fold("A", np.array([0, 1]), np.array([2, 3, 4, 5]), ("A",))
    check_fold_outcomes(fold, [0, 1, 0, 0, 1, 1])
    with pytest.raises(BadInputError, match="1 poor"):
        check_fold_outcomes(fold, [0, 1, 0, 0, 0, 1])


def test_split_is_stratified_by_site_and_outcome(cohort):
    sites, outcomes = cohort
    for fold in loco_folds(sites):
        train, val = train_validation_split(fold.trainval_index, sites, outcomes, seed=3)
        assert np.intersect1d(train, val).size == 0
        assert np.array_equal(np.union1d(train, val), fold.trainval_index)
        assert val.size == pytest.approx(0.25 * fold.trainval_index.size, abs=1)
        for site in set(sites[fold.trainval_index]):
            for y in (0, 1):
                n = np.sum((sites[fold.trainval_index] == site) & (outcomes[fold.trainval_index] == y))
                k = np.sum((sites[val] == site) & (outcomes[val] == y))
                assert abs(k - 0.25 * n) < 1, (fold.name, site, y, k, n)
        assert set(outcomes[val]) == {0, 1} and set(outcomes[train]) == {0, 1}
        check_no_leakage(fold, sites, train, val)


def test_split_is_deterministic_for_a_seed(cohort):
    sites, outcomes = cohort
    index = np.flatnonzero(sites != "A")
    first = train_validation_split(index, sites, outcomes, seed=11)
    again = train_validation_split(index, sites, outcomes, seed=11)
    other = train_validation_split(index, sites, outcomes, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_small_strata_still_give_validation_both_classes():
    # every stratum has one or two participants: floors are 0, so only rounding decides
    sites = np.array(["A", "A", "B", "C", "C", "D", "E", "F"], dtype=object)
    outcomes = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    for seed in range(20):
        train, val = train_validation_split(np.arange(8), sites, outcomes, seed=seed)
        assert val.size in (2, 3)
        assert set(outcomes[val]) == {0, 1} and set(outcomes[train]) == {0, 1}
        counts = {(s, y): 0 for s, y in zip(sites, outcomes)}
        for i in val:
            counts[(sites[i], outcomes[i])] += 1
        assert max(counts.values()) <= 1


def test_split_refuses_bad_values():
    with pytest.raises(ValueError, match="'outcomes' must hold 0"):
        train_validation_split([0, 1], ["A", "B"], [0, 4], seed=0)
    with pytest.raises(ValueError, match="'fraction'"):
        train_validation_split([0, 1], ["A", "B"], [0, 1], fraction=1.5, seed=0)
