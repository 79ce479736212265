"""Benchmark of the group statistics: metrics + bootstrap CIs + DeLong.

Times, for N participants and K models (defaults: 600 and 11, the eight variants, the
ensemble and two baselines), the metrics at threshold 0.5 and the calibration (Brier
score, calibration intercept and slope), their 95 % CIs from B bootstrap resamples
(default 10,000) and DeLong's covariance of every AUC plus one test per model against the
ensemble, as :mod:`bids_stroke.stats` computes them; next to a plain reference in the
same run: a Python loop over resamples that indexes the data and calls
``sklearn.metrics.roc_auc_score``, ``sklearn.metrics.brier_score_loss``, numpy counts and
two statsmodels logistic fits (the recalibration) per model. The loop runs
``--naive-resamples`` resamples (default 1,000) and its time is scaled to B; both draw
the same resamples, so their intervals must agree exactly when run on the same count.

Prints one line per measurement.

Usage::

    python benchmarks/group_statistics.py [--n 600 --models 11 --bootstrap 10000 --naive-resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss, roc_auc_score

from bids_stroke.stats import bootstrap_metrics, delong_auc_covariance, delong_test
from bids_stroke.stats.metrics import METRIC_NAMES


def _data(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.42).astype(int)
    latent = rng.normal(size=n) + 1.3 * y
    scores = 1 / (1 + np.exp(-(latent + rng.normal(0, 0.8, (k, n)))))
    scores[-2] = np.round(scores[-2], 2)  # a baseline-like score with ties
    return y, scores


def _vectorised(y, scores, n_boot, seed):
    res = bootstrap_metrics(y, scores, n_bootstrap=n_boot, seed=seed)
    delong_auc_covariance(y, scores)
    for other in scores[1:]:
        delong_test(y, scores[0], other)
    return res


def _naive(y, scores, n_boot, seed, batch=1000):
    """Per-resample loop; draws the same resamples as bootstrap_metrics (same batches)."""
    rng = np.random.default_rng(seed)
    n, k = y.size, scores.shape[0]
    values = {name: np.full((k, n_boot), np.nan) for name in METRIC_NAMES}
    pred = scores >= 0.5
    logits = np.log(scores / (1 - scores))
    binomial = sm.families.Binomial()
    for start in range(0, n_boot, batch):
        rows = rng.integers(0, n, size=(min(batch, n_boot - start), n))
        for j, idx in enumerate(rows):
            b = start + j
            yb = y[idx]
            if yb.min() == yb.max():
                continue
            for m in range(k):
                pb = pred[m, idx]
                tp = np.sum(pb & (yb == 1))
                tn = np.sum(~pb & (yb == 0))
                fp = np.sum(pb & (yb == 0))
                fn = np.sum(~pb & (yb == 1))
                values["accuracy"][m, b] = (tp + tn) / n
                values["auc"][m, b] = roc_auc_score(yb, scores[m, idx])
                values["sensitivity"][m, b] = tp / (tp + fn)
                values["specificity"][m, b] = tn / (tn + fp)
                values["ppv"][m, b] = tp / (tp + fp) if tp + fp else np.nan
                values["npv"][m, b] = tn / (tn + fn) if tn + fn else np.nan
                values["brier"][m, b] = brier_score_loss(yb, scores[m, idx])
                x = logits[m, idx]
                values["calibration_intercept"][m, b] = sm.GLM(yb, np.ones((n, 1)), family=binomial,
                                                               offset=x).fit().params[0]
                values["calibration_slope"][m, b] = sm.GLM(yb, sm.add_constant(x), family=binomial).fit().params[1]
    low = {name: np.nanquantile(v, 0.025, axis=1) for name, v in values.items()}
    high = {name: np.nanquantile(v, 0.975, axis=1) for name, v in values.items()}
    return low, high


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="participants")
    parser.add_argument("--models", type=int, default=11, help="models")
    parser.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples")
    parser.add_argument("--naive-resamples", type=int, default=1000,
                        help="resamples run by the naive loop (its time is scaled to --bootstrap)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    y, scores = _data(args.n, args.models, args.seed)
    _vectorised(y, scores, 50, args.seed)  # warm-up (imports, caches)

    start = time.perf_counter()
    _vectorised(y, scores, args.bootstrap, args.seed)
    t_vec = time.perf_counter() - start
    print(f"bids_stroke.stats: metrics + {args.bootstrap} bootstrap resamples + DeLong, "
          f"{args.n} participants x {args.models} models: {t_vec:.2f} s")

    start = time.perf_counter()
    low, high = _naive(y, scores, args.naive_resamples, args.seed)
    t_naive = time.perf_counter() - start
    t_naive_full = t_naive * args.bootstrap / args.naive_resamples
    print(f"naive per-resample loop (sklearn roc_auc_score, brier_score_loss, numpy counts, statsmodels "
          f"recalibration): {t_naive:.2f} s for "
          f"{args.naive_resamples} resamples = {t_naive_full:.1f} s per {args.bootstrap} (scaled)")
    print(f"speed-up of bids_stroke.stats over the naive loop: {t_naive_full / t_vec:.0f}x")

    same = bootstrap_metrics(y, scores, n_bootstrap=args.naive_resamples, seed=args.seed)
    diff = max(max(np.max(np.abs(same.ci_low[m] - low[m])), np.max(np.abs(same.ci_high[m] - high[m])))
               for m in METRIC_NAMES)
    print(f"agreement on the same {args.naive_resamples} resamples: max |CI bound difference| = {diff:.2e}")


if __name__ == "__main__":
    main()
