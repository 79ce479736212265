"""Matched-specificity thresholds, McNemar's test and the comparisons table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_stroke.stats.comparisons import (
    compare_to_reference,
    comparisons_table,
    mcnemar_test,
    threshold_for_specificity,
)


def _exact_binomial_p(b, c):
    """Two-sided exact McNemar p: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2)."""
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def _pairs(both, a_only, b_only, neither):
    a = [1] * both + [1] * a_only + [0] * b_only + [0] * neither
    b = [1] * both + [0] * a_only + [1] * b_only + [0] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize(("b", "c"), [(7, 2), (3, 0), (5, 5), (1, 10)])
def test_mcnemar_exact_equals_binomial_by_hand(b, c):
    a, bb = _pairs(20, b, c, 4)
    res = mcnemar_test(a, bb)
    assert res.exact and (res.b, res.c) == (b, c)
    assert res.p_value == pytest.approx(_exact_binomial_p(b, c))


def test_mcnemar_large_counts_use_corrected_chi_square():
    a, b = _pairs(50, 30, 12, 8)
    res = mcnemar_test(a, b)
    chi2 = (abs(30 - 12) - 1) ** 2 / (30 + 12)
    assert not res.exact
    assert res.statistic == pytest.approx(chi2)
    assert res.p_value == pytest.approx(stats.chi2.sf(chi2, 1))


def test_mcnemar_without_discordant_pairs():
    res = mcnemar_test([1, 0, 1], [1, 0, 1])
    assert res.p_value == 1.0


def _specificity(y, s, t):
    return np.mean(s[y == 0] < t)


def test_matched_threshold_gives_the_target_specificity():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.random(200) + 0.3 * y  # continuous: no ties
    n_good = int((y == 0).sum())
    for k in range(0, n_good + 1, 7):
        target = k / n_good
        t = threshold_for_specificity(y, s, target)
        assert _specificity(y, s, t) == pytest.approx(target)
        lower = s[s < t]
        if lower.size:  # the next lower threshold is less specific: t is the most sensitive
            assert _specificity(y, s, lower.max()) < target


def test_matched_threshold_with_ties_overshoots_to_next_reachable_value():
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([1, 2, 2, 3, 2, 3, 4], dtype=float)  # ASPECTS-like integer scores
    # specificity 0.5 is unreachable: good participants with score 2 move together
    t = threshold_for_specificity(y, s, 0.5)
    assert t == 3.0 and _specificity(y, s, t) == 0.75
    assert _specificity(y, s, 2.0) == 0.25
    assert threshold_for_specificity(y, s, 1.0) == 4.0
    assert threshold_for_specificity(np.array([0, 1]), np.array([0.9, 0.5]), 1.0) == np.inf


def test_compare_to_reference_matches_specificity_and_counts_sensitivity_pairs():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [150, 100])
    ref = 1 / (1 + np.exp(-(2 * (2 * y - 1) + rng.normal(size=250))))
    other = rng.random(250) + 0.4 * y
    row = compare_to_reference(y, ref, other)
    assert row["model_specificity"] == pytest.approx(row["reference_specificity"])
    assert row["reference_specificity"] == pytest.approx(np.mean(ref[y == 0] < 0.5))
    pos = y == 1
    ref_hit = ref[pos] >= 0.5
    other_hit = other[pos] >= row["model_threshold"]
    assert row["mcnemar_reference_only"] == np.sum(ref_hit & ~other_hit)
    assert row["mcnemar_model_only"] == np.sum(~ref_hit & other_hit)
    assert row["model_sensitivity"] == pytest.approx(other_hit.mean())
    assert row["delong_p"] < 0.05 and row["auc_difference"] > 0


def test_comparisons_table_skips_reference_and_missing_values():
    rng = np.random.default_rng(2)
    n = 120
    y = rng.integers(0, 2, n)
    table = pd.DataFrame({"participant_id": [f"sub-{i}" for i in range(n)], "site": "A", "fold": "A",
                          "outcome": y, "ensemble": rng.random(n) * 0.5 + 0.5 * y,
                          "lr_aspects": rng.random(n)})
    table.loc[:9, "lr_aspects"] = np.nan
    out = comparisons_table(table, reference_model="ensemble", models=["ensemble", "lr_aspects"])
    assert out["model"].tolist() == ["lr_aspects"]
    assert out["n"].iloc[0] == n - 10
    assert out["n_poor"].iloc[0] == int(y[10:].sum())
