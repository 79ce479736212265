"""The cohort table: participants' characteristics per site, compared across sites.

As in the paper: for a numeric characteristic, normality is tested in every site with
D'Agostino-Pearson's test (:func:`scipy.stats.normaltest`); when no site departs from
normality (all p >= ``alpha``) the sites are compared with a one-way ANOVA and pairs with
Student's t-tests, and the values are summarised as mean ± SD; otherwise Kruskal-Wallis,
Mann-Whitney U tests for pairs, and median [IQR]. D'Agostino-Pearson needs 8 values; a
site with fewer cannot show normality, so the non-parametric tests are used. Categorical
characteristics are summarised as n (%) and compared with a chi-square test of the
site × level contingency table. Pairwise (post-hoc) tests are reported only when the
omnibus test is significant, with Bonferroni-adjusted p-values.

Input
-----
A table with one row per participant holding the grouping column (``site``) and the
characteristics, e.g. participants.tsv (``age``, ``sex``, ``nihss``, ``mrs``,
``aspects``) joined with the lesion measures (``lesion_volume_ml``, ``lesion_side``) and
the binary ``outcome`` of the predictions table (1 = poor, mRS >= 3).

Output
------
A long table: for each characteristic one row comparing all sites (``comparison`` =
``"all"``), one row per level for a categorical characteristic, and the significant
post-hoc pairs (``comparison`` = ``"<site A> vs <site B>"``). Columns: ``characteristic``,
``level``, ``comparison``, ``summary`` (``mean_sd``, ``median_iqr``, ``n_percent``),
``all`` (the whole cohort), one column per site named ``<group column>_<site>`` (e.g.
``site_A``; formatted summaries), ``n_missing``,
``normal``, ``test``, ``statistic``, ``p_value``, ``p_adjusted``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DEFAULT_CATEGORICAL",
    "DEFAULT_NUMERIC",
    "cohort_table",
    "compare_categorical",
    "compare_numeric",
]

#: Numeric characteristics summarised when present.
DEFAULT_NUMERIC = ("age", "nihss", "lesion_volume_ml", "aspects", "mrs")
#: Categorical characteristics summarised when present.
DEFAULT_CATEGORICAL = ("sex", "lesion_side", "outcome")

#: Fewest values D'Agostino-Pearson's test accepts.
MIN_NORMALTEST = 8


def _groups(values: pd.Series, groups: pd.Series) -> dict[str, np.ndarray]:
    out = {}
    for name, sub in values.groupby(groups, sort=True):
        arr = pd.to_numeric(sub, errors="coerce").dropna().to_numpy(dtype=float)
        out[str(name)] = arr
    return out


def _is_normal(groups: dict[str, np.ndarray], alpha: float) -> bool:
    for arr in groups.values():
        if arr.size < MIN_NORMALTEST or np.ptp(arr) == 0:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if stats.normaltest(arr).pvalue < alpha:
                return False
    return True


def _fmt(arr: np.ndarray, normal: bool, digits: int) -> str:
    if arr.size == 0:
        return "n/a"
    if normal:
        sd = arr.std(ddof=1) if arr.size > 1 else 0.0
        return f"{arr.mean():.{digits}f} ± {sd:.{digits}f}"
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return f"{med:.{digits}f} [{q1:.{digits}f}–{q3:.{digits}f}]"


def compare_numeric(values, groups, *, alpha: float = 0.05) -> dict:
    """Compare a numeric characteristic across groups.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        The characteristic (NaN for missing).
    groups : array-like of shape (n_samples,)
        Group (site) of each participant.
    alpha : float, default=0.05
        Level of the normality test and of the omnibus test that allows post-hoc tests.

    Returns
    -------
    dict
        ``normal`` (bool), ``test`` (``"anova"`` or ``"kruskal"``), ``statistic``,
        ``p_value`` (NaN with fewer than two groups holding values), and ``posthoc``: a
        list of ``(group_a, group_b, test, statistic, p_value, p_adjusted)`` for every
        pair (``"ttest"`` or ``"mannwhitney"``; Bonferroni adjustment, capped at 1).
    """
    by_group = _groups(pd.Series(np.asarray(values)), pd.Series(np.asarray(groups)))
    by_group = {k: v for k, v in by_group.items() if v.size}
    normal = _is_normal(by_group, alpha)
    usable = {k: v for k, v in by_group.items() if v.size >= 2} if normal else by_group
    result = {"normal": normal, "test": "anova" if normal else "kruskal",
              "statistic": np.nan, "p_value": np.nan, "posthoc": []}
    if len(usable) < 2:
        return result
    arrays = list(usable.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = stats.f_oneway(*arrays) if normal else stats.kruskal(*arrays)
            result["statistic"], result["p_value"] = float(res.statistic), float(res.pvalue)
        except ValueError:  # every value identical
            return result
        pairs = list(itertools.combinations(sorted(usable), 2))
        for a, b in pairs:
            if normal:
                pair = stats.ttest_ind(usable[a], usable[b])
            else:
                pair = stats.mannwhitneyu(usable[a], usable[b], alternative="two-sided")
            p = float(pair.pvalue)
            result["posthoc"].append((a, b, "ttest" if normal else "mannwhitney", float(pair.statistic),
                                      p, min(p * len(pairs), 1.0)))
    return result


def compare_categorical(values, groups) -> dict:
    """Chi-square test of independence between a categorical characteristic and groups.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        The characteristic (missing values are left out).
    groups : array-like of shape (n_samples,)

    Returns
    -------
    dict
        ``test`` (``"chi2"``), ``statistic``, ``p_value`` (NaN when the table has fewer
        than two rows or columns), ``dof`` and ``counts`` (DataFrame, groups × levels).
    """
    frame = pd.DataFrame({"v": np.asarray(values, dtype=object), "g": np.asarray(groups, dtype=object)})
    frame = frame[frame["v"].notna()]
    frame["v"] = frame["v"].astype(str)
    frame["g"] = frame["g"].astype(str)
    counts = pd.crosstab(frame["g"], frame["v"])
    result = {"test": "chi2", "statistic": np.nan, "p_value": np.nan, "dof": 0, "counts": counts}
    if counts.shape[0] >= 2 and counts.shape[1] >= 2:
        res = stats.chi2_contingency(counts.to_numpy())
        result.update(statistic=float(res.statistic), p_value=float(res.pvalue), dof=int(res.dof))
    return result


def cohort_table(
    participants: pd.DataFrame,
    *,
    group_column: str = "site",
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    alpha: float = 0.05,
    digits: int = 1,
) -> pd.DataFrame:
    """Characteristics of the cohort per site, with the tests comparing sites.

    Parameters
    ----------
    participants : pandas.DataFrame
        One row per participant (see the module docstring).
    group_column : str, default="site"
        The column defining the groups (site or source).
    numeric : sequence of str, default=None
        Numeric characteristics; ``None`` means those of :data:`DEFAULT_NUMERIC` present.
        A named column that is absent raises ``ValueError``.
    categorical : sequence of str, default=None
        Categorical characteristics; ``None`` means those of :data:`DEFAULT_CATEGORICAL`
        present.
    alpha : float, default=0.05
        Level of the normality tests and of the omnibus tests that allow post-hoc tests.
    digits : int, default=1
        Decimals of the formatted summaries.

    Returns
    -------
    pandas.DataFrame
        The long table described in the module docstring.
    """
    if group_column not in participants.columns:
        raise ValueError(
            f"'group_column' must be a column of the participants table. Got {group_column!r} instead "
            f"(columns: {list(participants.columns)})."
        )
    numeric = [c for c in DEFAULT_NUMERIC if c in participants.columns] if numeric is None else list(numeric)
    categorical = ([c for c in DEFAULT_CATEGORICAL if c in participants.columns]
                   if categorical is None else list(categorical))
    missing = [c for c in (*numeric, *categorical) if c not in participants.columns]
    if missing:
        raise ValueError(f"'numeric'/'categorical' must name columns of the participants table. "
                         f"Got {missing} instead (columns: {list(participants.columns)}).")
    groups = participants[group_column].astype(str)
    sites = sorted(groups.unique())
    site_columns = {site: f"{group_column}_{site}" for site in sites}
    rows = []

    def base(characteristic, level, comparison, summary):
        row = {"characteristic": characteristic, "level": level, "comparison": comparison, "summary": summary,
               "all": None}
        row.update({site_columns[site]: None for site in sites})
        row.update({"n_missing": None, "normal": None, "test": None, "statistic": np.nan,
                    "p_value": np.nan, "p_adjusted": np.nan})
        return row

    for column in numeric:
        values = pd.to_numeric(participants[column], errors="coerce")
        res = compare_numeric(values.to_numpy(dtype=float), groups.to_numpy(), alpha=alpha)
        normal = res["normal"]
        row = base(column, None, "all", "mean_sd" if normal else "median_iqr")
        row["all"] = _fmt(values.dropna().to_numpy(dtype=float), normal, digits)
        for site in sites:
            row[site_columns[site]] = _fmt(values[groups == site].dropna().to_numpy(dtype=float), normal, digits)
        row.update(n_missing=int(values.isna().sum()), normal=normal, test=res["test"],
                   statistic=res["statistic"], p_value=res["p_value"])
        rows.append(row)
        if res["p_value"] < alpha:
            for a, b, test, statistic, p, p_adj in res["posthoc"]:
                if p_adj < alpha:
                    post = base(column, None, f"{a} vs {b}", row["summary"])
                    post.update(test=test, statistic=statistic, p_value=p, p_adjusted=p_adj)
                    rows.append(post)

    for column in categorical:
        values = participants[column]
        res = compare_categorical(values.to_numpy(), groups.to_numpy())
        counts = res["counts"]
        row = base(column, None, "all", "n_percent")
        row.update(n_missing=int(values.isna().sum()), test="chi2", statistic=res["statistic"],
                   p_value=res["p_value"])
        rows.append(row)
        totals = counts.sum(axis=1)
        for level in counts.columns:
            lrow = base(column, level, "all", "n_percent")
            n_all = int(counts[level].sum())
            lrow["all"] = f"{n_all} ({100.0 * n_all / max(int(totals.sum()), 1):.{digits}f} %)"
            for site in sites:
                n = int(counts[level].get(site, 0))
                total = int(totals.get(site, 0))
                lrow[site_columns[site]] = f"{n} ({100.0 * n / total:.{digits}f} %)" if total else "n/a"
            rows.append(lrow)
    columns = ["characteristic", "level", "comparison", "summary", "all", *site_columns.values(),
               "n_missing", "normal", "test", "statistic", "p_value", "p_adjusted"]
    out = pd.DataFrame(rows, columns=columns)
    out["n_missing"] = out["n_missing"].astype("Int64")
    return out
