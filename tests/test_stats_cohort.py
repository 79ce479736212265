"""Cohort table: the right test for normal, skewed and categorical characteristics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bids_stroke.stats.cohort import cohort_table, compare_categorical, compare_numeric


@pytest.fixture
def cohort():
    rng = np.random.default_rng(11)
    n = 180
    site = np.repeat(["A", "B", "C"], 60)
    age = rng.normal(68, 9, n) + np.where(site == "C", 10, 0)  # normal, C older
    volume = rng.lognormal(2.5, 1.1, n)  # strongly right-skewed
    sex = rng.choice(["F", "M"], n)
    return pd.DataFrame({"site": site, "age": age, "lesion_volume_ml": volume, "sex": sex,
                         "outcome": rng.integers(0, 2, n)})


def test_normal_column_uses_anova_and_ttests(cohort):
    res = compare_numeric(cohort["age"], cohort["site"])
    groups = [cohort.loc[cohort.site == s, "age"] for s in "ABC"]
    assert res["normal"] and res["test"] == "anova"
    assert res["p_value"] == pytest.approx(stats.f_oneway(*groups).pvalue)
    posthoc = {(a, b): p for a, b, test, _, p, _ in res["posthoc"]}
    assert {t for _, _, t, *_ in res["posthoc"]} == {"ttest"}
    assert posthoc[("A", "C")] == pytest.approx(stats.ttest_ind(groups[0], groups[2]).pvalue)


def test_skewed_column_uses_kruskal_and_mann_whitney(cohort):
    res = compare_numeric(cohort["lesion_volume_ml"], cohort["site"])
    groups = [cohort.loc[cohort.site == s, "lesion_volume_ml"] for s in "ABC"]
    assert not res["normal"] and res["test"] == "kruskal"
    assert res["p_value"] == pytest.approx(stats.kruskal(*groups).pvalue)
    assert {t for _, _, t, *_ in res["posthoc"]} == {"mannwhitney"}


def test_small_site_cannot_show_normality():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(size=50), rng.normal(size=5)]
    res = compare_numeric(values, ["A"] * 50 + ["B"] * 5)
    assert res["test"] == "kruskal"


def test_categorical_uses_chi_square(cohort):
    res = compare_categorical(cohort["sex"], cohort["site"])
    table = pd.crosstab(cohort["site"], cohort["sex"]).to_numpy()
    assert res["test"] == "chi2"
    assert res["p_value"] == pytest.approx(stats.chi2_contingency(table).pvalue)


def test_cohort_table_rows_and_summaries(cohort):
    table = cohort_table(cohort)
    main = table[table.comparison == "all"]
    main = main.assign(level=main["level"].fillna("")).set_index(["characteristic", "level"])
    age = main.loc[("age", "")]
    assert age["summary"] == "mean_sd" and age["test"] == "anova"
    a = cohort.loc[cohort.site == "A", "age"]
    assert age["site_A"] == f"{a.mean():.1f} ± {a.std(ddof=1):.1f}"
    vol = main.loc[("lesion_volume_ml", "")]
    assert vol["summary"] == "median_iqr" and vol["test"] == "kruskal"
    assert vol["all"].startswith(f"{cohort.lesion_volume_ml.median():.1f} [")
    females = int(((cohort.site == "B") & (cohort.sex == "F")).sum())
    assert main.loc[("sex", "F"), "site_B"] == f"{females} ({100 * females / 60:.1f} %)"
    # site C is older: its significant post-hoc pairs are reported, Bonferroni-adjusted
    post = table[(table.characteristic == "age") & (table.comparison != "all")]
    assert set(post["comparison"]) == {"A vs C", "B vs C"}
    assert (post["p_adjusted"] == np.minimum(post["p_value"] * 3, 1)).all()


def test_named_column_must_exist(cohort):
    with pytest.raises(ValueError, match="must name columns"):
        cohort_table(cohort, numeric=["nihss"])
