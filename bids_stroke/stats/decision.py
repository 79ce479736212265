"""Decision-curve analysis (Vickers & Elkin, Med Decis Making 2006).

A model is used as a decision rule: "treat" (e.g. plan for a poor outcome) every
participant whose predicted probability is at or above a threshold probability ``pt``.
Its **net benefit** at ``pt`` counts the true positives and charges each false positive
the odds of the threshold, the harm-to-benefit ratio a clinician accepts at that
threshold::

    net benefit = TP / n - FP / n * pt / (1 - pt)

"Treat all" has net benefit ``q - (1 - q) pt / (1 - pt)`` (``q`` the prevalence), which
crosses zero at ``pt = q``; "treat none" has net benefit 0. A model is useful at the
thresholds where its curve lies above both.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_THRESHOLDS", "decision_curve", "net_benefit"]

#: Threshold probabilities of the group level's decision curve: 0.05, 0.06, ..., 0.95.
DEFAULT_THRESHOLDS = np.round(np.arange(5, 96) / 100.0, 2)


def _thresholds(thresholds) -> np.ndarray:
    t = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if t.ndim != 1 or not ((t > 0) & (t < 1)).all():
        raise ValueError(f"'thresholds' must lie strictly between 0 and 1. Got {t.tolist()[:5]} instead.")
    return t


def net_benefit(y_true, y_score, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    """Net benefit of treating the participants with ``y_score >= pt``, for each ``pt``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 = poor outcome, 0 = good.
    y_score : array-like of shape (n,)
        Predicted probability of a poor outcome.
    thresholds : array-like of shape (k,), default=DEFAULT_THRESHOLDS
        Threshold probabilities in (0, 1).

    Returns
    -------
    ndarray of shape (k,)

    Examples
    --------
    >>> net_benefit([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1], [0.2])  # TP 2, FP 1: 2/4 - 1/4 * 0.25
    array([0.4375])
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_score, dtype=float)
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"'y_true' and 'y_score' must be 1-D of one length. Got {y.shape} and {p.shape} instead.")
    t = _thresholds(thresholds)
    treated = p[None, :] >= t[:, None]
    tp = (treated & (y == 1)).sum(axis=1)
    fp = (treated & (y == 0)).sum(axis=1)
    return tp / y.size - fp / y.size * t / (1.0 - t)


def decision_curve(y_true, scores: Mapping[str, np.ndarray], thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """The decision-curve table: net benefit of each model, "treat all" and "treat none".

    Parameters
    ----------
    y_true : array-like of shape (n,)
        1 = poor outcome, 0 = good.
    scores : mapping of str to array-like of shape (n,)
        Model name -> probability of a poor outcome of the same participants.
    thresholds : array-like, default=DEFAULT_THRESHOLDS

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold``, ``treat_all``, ``treat_none`` and one per model; one row
        per threshold.
    """
    y = np.asarray(y_true, dtype=float)
    t = _thresholds(thresholds)
    table = {"threshold": t, "treat_all": net_benefit(y, np.ones_like(y), t), "treat_none": np.zeros(t.size)}
    for name, score in scores.items():
        table[str(name)] = net_benefit(y, score, t)
    return pd.DataFrame(table)
