"""Random oversampling balances outcome × lesion side and only repeats training participants."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bids_stroke.train.sampling import balance_cells, normalise_sides, oversample


@pytest.fixture
def training_set():
    rng = np.random.default_rng(5)
    n = 57
    outcomes = (rng.random(n) < 0.35).astype(int)
    sides = rng.choice(["left", "right", "bilateral", None], size=n, p=[0.45, 0.4, 0.1, 0.05])
    return outcomes, sides


def test_every_cell_reaches_the_largest(training_set):
    outcomes, sides = training_set
    labels = normalise_sides(sides, outcomes.size)
    cells = balance_cells(outcomes, sides)
    largest = max(cells.values())
    assert len(set(cells.values())) > 1  # the input is unbalanced
    index = oversample(outcomes, sides, seed=1)
    got = Counter(zip(outcomes[index].tolist(), labels[index].tolist()))
    assert dict(got) == {cell: largest for cell in cells}
    assert index.size == largest * len(cells)


def test_only_training_participants_are_repeated(training_set):
    outcomes, sides = training_set
    index = oversample(outcomes, sides, seed=2)
    assert index.min() >= 0 and index.max() < outcomes.size
    assert np.array_equal(np.unique(index), np.arange(outcomes.size))  # everyone kept at least once
    # the largest cell is not resampled: each of its members appears once
    labels = normalise_sides(sides, outcomes.size)
    cells = balance_cells(outcomes, sides)
    big = max(cells, key=cells.get)
    members = np.flatnonzero((outcomes == big[0]) & (labels == big[1]))
    assert np.all(np.bincount(index, minlength=outcomes.size)[members] == 1)


def test_seeded_and_shuffled(training_set):
    outcomes, sides = training_set
    a, b, c = (oversample(outcomes, sides, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, np.sort(a))


def test_without_sides_balances_outcome_only():
    outcomes = np.array([0] * 9 + [1] * 3)
    index = oversample(outcomes, seed=0)
    assert np.bincount(outcomes[index]).tolist() == [9, 9]


def test_missing_sides_are_unknown_and_bad_sides_refused():
    assert normalise_sides(["Left", None, float("nan"), "n/a", "none"]).tolist() == [
        "left", "unknown", "unknown", "unknown", "none"]
    with pytest.raises(ValueError, match="'sides' must hold"):
        oversample([0, 1], ["left", "top"], seed=0)
    with pytest.raises(ValueError, match="'outcomes'"):
        oversample([0, 2], ["left", "left"], seed=0)
