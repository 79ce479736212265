"""Univariate logistic-regression baselines, trained on the same LOCO folds as the CNN.

The paper compares its ensemble with a logistic regression on lesion volume (mL) and one
on ASPECTS (points, 0-10, rated by a neurologist), each trained and evaluated with the
same leave-one-center-out (LOCO) folds, so that their out-of-center probabilities join the
predictions table and go through the same statistics.

Predictions table
-----------------
One row per participant: ``participant_id``, ``site``, ``fold`` (the held-out site of the
fold that predicted the participant), ``outcome`` (1 = poor, mRS >= 3; 0 = good) and one
probability column per model (the eight variants, ``ensemble``). :func:`add_loco_baselines`
adds ``lr_volume`` and ``lr_aspects``.

Cut-offs in the feature's own units
-----------------------------------
A univariate logistic model is monotonic in its feature, so a probability threshold is a
threshold on the feature: :meth:`UnivariateLogisticBaseline.cutoff` gives the feature value
(mL, ASPECTS points) at which the predicted probability equals a threshold, and
``direction_`` says whether larger values (volume) or smaller values (ASPECTS) predict a
poor outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "DEFAULT_BASELINES",
    "BaselineFeature",
    "LocoBaseline",
    "UnivariateLogisticBaseline",
    "add_loco_baselines",
    "loco_baseline",
]

LOGGER = logging.getLogger("bids_stroke.stats")


class UnivariateLogisticBaseline(ClassifierMixin, BaseEstimator):
    """Logistic regression of a binary outcome on one feature.

    The feature is standardised before fitting (so the L2 penalty does not depend on its
    units); the fitted coefficients are reported back in the feature's units.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 penalty strength of :class:`sklearn.linear_model.LogisticRegression`
        (on the standardised feature). ``numpy.inf`` fits without a penalty.
    max_iter : int, default=1000
        Iterations of the lbfgs solver.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The outcome labels (0 = good, 1 = poor).
    n_features_in_ : int
        Always 1.
    coef_ : float
        Log-odds of a poor outcome per feature unit (per mL, per ASPECTS point).
    intercept_ : float
        Log-odds at feature value 0.
    direction_ : {"greater", "less"}
        ``"greater"`` when larger values predict a poor outcome.

    Examples
    --------
    >>> volume = np.array([[2.0], [5.0], [8.0], [30.0], [60.0], [90.0]])
    >>> model = UnivariateLogisticBaseline().fit(volume, [0, 0, 1, 0, 1, 1])
    >>> model.direction_, bool(30 < model.cutoff(0.5) < 60)
    ('greater', True)
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y):
        """Fit on ``X`` of shape (n_samples, 1) and outcomes ``y`` of shape (n_samples,)."""
        X, y = validate_data(self, X, y, ensure_min_samples=2, y_numeric=False)
        if X.shape[1] != 1:
            raise ValueError(f"'X' must have exactly one feature column. Got {X.shape[1]} columns instead.")
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(
                f"'y' must contain both outcome classes. Got only {self.classes_.tolist()} instead."
            )
        x = X[:, 0]
        mean, scale = float(x.mean()), float(x.std())
        scale = scale if scale > 0 else 1.0
        model = LogisticRegression(C=self.C, max_iter=self.max_iter)
        model.fit(((x - mean) / scale)[:, None], y)
        slope = float(model.coef_[0, 0]) / scale
        self.coef_ = slope
        self.intercept_ = float(model.intercept_[0]) - slope * mean
        self.direction_ = "greater" if slope >= 0 else "less"
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of a poor outcome, shape (n_samples,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.intercept_ + self.coef_ * X[:, 0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of (good, poor), shape (n_samples, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Predicted class at probability 0.5, shape (n_samples,)."""
        poor = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[poor.astype(int)]

    def cutoff(self, probability: float = 0.5) -> float:
        """Feature value (in the feature's units) where P(poor) equals ``probability``.

        A participant is predicted poor when the feature is ``>=`` the cut-off
        (``direction_ == "greater"``) or ``<=`` it (``"less"``). ``±inf`` when the
        probability is 0 or 1 or the slope is 0.
        """
        check_is_fitted(self)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"'probability' must lie in [0, 1]. Got {probability!r} instead.")
        if self.coef_ == 0:
            return float("inf")
        with np.errstate(divide="ignore"):
            return float((logit(probability) - self.intercept_) / self.coef_)


@dataclass(frozen=True)
class BaselineFeature:
    """A baseline model: the participants column it uses and that column's units."""

    column: str
    units: str
    description: str = ""


#: The paper's baselines: model name -> feature. The ASPECTS baseline is skipped when its
#: column is absent.
DEFAULT_BASELINES: Mapping[str, BaselineFeature] = {
    "lr_volume": BaselineFeature("lesion_volume_ml", "mL", "lesion volume"),
    "lr_aspects": BaselineFeature("aspects", "points", "ASPECTS"),
}


@dataclass
class LocoBaseline:
    """A baseline trained and evaluated with leave-one-center-out folds.

    Attributes
    ----------
    probability : ndarray of shape (n_samples,)
        Out-of-center probability of a poor outcome (NaN where the feature is missing).
    fold_models : dict of str to UnivariateLogisticBaseline
        The model of each fold (trained on every other fold).
    full_model : UnivariateLogisticBaseline
        The model trained on every participant with the feature, for reporting.
    feature : str
        The feature's column name.
    units : str
        Its units (``mL``, ``points``).
    """

    probability: np.ndarray
    fold_models: dict[str, UnivariateLogisticBaseline]
    full_model: UnivariateLogisticBaseline
    feature: str = ""
    units: str = ""
    n_missing: int = field(default=0)

    def cutoffs(self, probability: float = 0.5) -> dict[str, float]:
        """Feature cut-off (in :attr:`units`) of the full model and the fold range.

        Returns
        -------
        dict
            ``cutoff`` (full model), ``cutoff_fold_min``, ``cutoff_fold_max`` (over the
            LOCO models) and ``direction`` (``"greater"``/``"less"``, from the full model).
        """
        per_fold = np.array([m.cutoff(probability) for m in self.fold_models.values()])
        return {
            "cutoff": self.full_model.cutoff(probability),
            "cutoff_fold_min": float(per_fold.min()),
            "cutoff_fold_max": float(per_fold.max()),
            "direction": self.full_model.direction_,
        }


def loco_baseline(feature, outcome, folds, *, feature_name: str = "feature", units: str = "",
                  **params) -> LocoBaseline:
    """Train and evaluate a univariate logistic regression with LOCO folds.

    Parameters
    ----------
    feature : array-like of shape (n_samples,)
        The feature (e.g. lesion volume in mL); NaN for a missing value: the participant is
        left out of training and gets a NaN probability.
    outcome : array-like of shape (n_samples,)
        1 = poor, 0 = good.
    folds : array-like of shape (n_samples,)
        The held-out site of the fold that predicts each participant.
    feature_name, units : str
        Recorded in the result.
    **params
        Passed to :class:`UnivariateLogisticBaseline`.

    Returns
    -------
    LocoBaseline

    Raises
    ------
    ValueError
        Shapes differ, or a fold's training participants hold a single outcome class.
    """
    x = np.asarray(feature, dtype=float)
    y = np.asarray(outcome)
    f = np.asarray(folds).astype(str)
    if not (x.ndim == y.ndim == f.ndim == 1 and x.size == y.size == f.size):
        raise ValueError(
            "'feature', 'outcome' and 'folds' must be 1-D arrays of one length. Got shapes "
            f"{x.shape}, {y.shape} and {f.shape} instead."
        )
    known = np.isfinite(x)
    probability = np.full(x.size, np.nan)
    fold_models: dict[str, UnivariateLogisticBaseline] = {}
    for fold in pd.unique(f):
        test = (f == fold) & known
        train = (f != fold) & known
        if np.unique(y[train]).size < 2:
            raise ValueError(
                f"'outcome' must hold both classes among the training participants of fold "
                f"'{fold}' ({feature_name}). Got {np.unique(y[train]).tolist()} instead."
            )
        model = UnivariateLogisticBaseline(**params).fit(x[train, None], y[train])
        fold_models[str(fold)] = model
        if test.any():
            probability[test] = model.predict_proba(x[test, None])[:, 1]
    full = UnivariateLogisticBaseline(**params).fit(x[known, None], y[known])
    return LocoBaseline(probability, fold_models, full, feature_name, units, int((~known).sum()))


def add_loco_baselines(
    predictions: pd.DataFrame,
    participants: pd.DataFrame,
    *,
    baselines: Mapping[str, BaselineFeature] | None = None,
    **params,
) -> tuple[pd.DataFrame, dict[str, LocoBaseline]]:
    """Add the baselines' out-of-center probabilities to a predictions table.

    Parameters
    ----------
    predictions : pandas.DataFrame
        One row per participant with ``participant_id``, ``fold`` and ``outcome``.
    participants : pandas.DataFrame
        participants.tsv (indexed by ``participant_id``, as
        :func:`bids_stroke.bids.participants.read_participants` returns it, or with a
        ``participant_id`` column) holding the feature columns. A feature column already
        in ``predictions`` is taken from there.
    baselines : mapping of str to BaselineFeature, default=DEFAULT_BASELINES
        Model name (the new column) -> feature. A feature whose column is absent is
        skipped with a warning in the log.
    **params
        Passed to :class:`UnivariateLogisticBaseline`.

    Returns
    -------
    predictions : pandas.DataFrame
        A copy with one probability column per baseline.
    fitted : dict of str to LocoBaseline
        The fitted baselines, for their cut-offs.
    """
    baselines = DEFAULT_BASELINES if baselines is None else baselines
    for column in ("participant_id", "fold", "outcome"):
        if column not in predictions.columns:
            raise ValueError(f"'predictions' must have a {column!r} column. Got {list(predictions.columns)} instead.")
    table = participants
    if "participant_id" in table.columns:
        table = table.set_index("participant_id")
    out = predictions.copy()
    fitted: dict[str, LocoBaseline] = {}
    for name, spec in baselines.items():
        if spec.column in predictions.columns:
            values = predictions[spec.column]
        elif spec.column in table.columns:
            values = table[spec.column].reindex(predictions["participant_id"].to_numpy())
        else:
            LOGGER.warning("Baseline %s skipped: no %r column in participants.tsv.", name, spec.column)
            continue
        values = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)
        result = loco_baseline(values, out["outcome"].to_numpy(), out["fold"].to_numpy(),
                               feature_name=spec.column, units=spec.units, **params)
        if result.n_missing:
            LOGGER.warning("Baseline %s: %d participants without %r get no prediction.",
                           name, result.n_missing, spec.column)
        out[name] = result.probability
        fitted[name] = result
    return out, fitted
