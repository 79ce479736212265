"""Clinical fusion: the ensemble's logit and clinical covariates in one logistic regression.

The deep-learning ensemble gives each participant an out-of-center probability of a poor
outcome (leave-one-center-out, LOCO: each fold holds out one site). The model
``ensemble+clinical`` combines that probability's logit with clinical covariates (age,
NIHSS, ...) in a logistic regression, and its comparator ``volume+clinical`` does the same
with the log lesion volume in place of the ensemble. Both are trained and evaluated with the
LOCO folds of the CNN, so that their out-of-center probabilities join the predictions table
and go through the same statistics (see :data:`MODEL_NAMES`).

Inner held-out predictions
--------------------------
The regression of fold ``f`` needs an ensemble probability for each of its training
participants, one that did not come from a model trained on them. The out-of-center
probability cannot serve (for a participant of site ``g`` it comes from fold ``g``'s
models, which trained on site ``f``), and fold ``f``'s own models trained on most of
those participants. Instead each variant job of fold ``f`` predicts its validation quarter
(participants it never trained on); :func:`inner_ensemble_probability` averages, for each
participant, the probabilities of the variants of the fold that held it out for validation.
A participant held out by no variant of the fold gets NaN and is left out of that fold's fit.

These inner held-out predictions are mildly optimistic: early stopping chose each variant's
epoch on the loss of those same validation participants. The fold's held-out site is never
used: its participants are neither in the variants' training nor validation sets, and
:func:`loco_logistic` fits fold ``f`` on the rows of the other sites only, so the held-out
site's covariates, probabilities and outcomes cannot move the fold's coefficients. The
held-out participants are then predicted from their out-of-center ensemble probability
(the ensemble of fold ``f``) and their covariates.

The final ensemble (trained on everyone) gets its fusion the same way, from the inner
held-out predictions of its variants (:func:`fit_final_fusion`); its coefficients go into
the model bundle (:meth:`LogisticFusion.to_dict`, :meth:`LogisticFusion.from_dict`).

Coefficients in the features' own units
---------------------------------------
:class:`LogisticFusion` standardises each feature before fitting (so the L2 penalty does
not depend on the units) and reports the coefficients per unit of each feature (per logit
unit of the ensemble, per year of age, per NIHSS point, per log1p(mL) of lesion volume).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from .calibration import EPS
from .calibration import logit as logit_clipped

__all__ = [
    "EPS",
    "MODEL_NAMES",
    "LocoFusion",
    "LogisticFusion",
    "fit_final_fusion",
    "inner_ensemble_probability",
    "loco_clinical",
    "loco_clinical_fusion",
    "loco_logistic",
    "loco_volume_clinical",
    "logit_clipped",
]

#: The clinical models' columns in the predictions table: the baselines on the clinical
#: covariates alone and with the log lesion volume, and the ensemble's fusion.
MODEL_NAMES = ("lr_clinical", "volume+clinical", "ensemble+clinical")

def inner_ensemble_probability(n: int, jobs: Iterable) -> np.ndarray:
    """Each participant's mean probability over the variants that held it out for validation.

    Parameters
    ----------
    n : int
        Participants in the cohort.
    jobs : iterable of (array-like of int, array-like of float)
        One ``(validation_index, validation_probabilities)`` pair per variant of one fold:
        positions into the cohort of the variant's validation participants, and that
        variant's probabilities of a poor outcome for them.

    Returns
    -------
    ndarray of shape (n,)
        The mean probability over the variants that held each participant out; NaN for a
        participant held out by none.

    Raises
    ------
    ValueError
        An index is not an integer in ``[0, n)`` or repeats within a job, a job's two
        arrays differ in length, or a probability is not finite in ``[0, 1]``.

    Examples
    --------
    >>> inner_ensemble_probability(4, [([0, 1], [0.2, 0.4]), ([1, 2], [0.6, 0.8])]).tolist()
    [0.2, 0.5, 0.8, nan]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"'n' must be a non-negative integer. Got {n!r} instead.")
    total = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    for job, pair in enumerate(jobs):
        index, probability = pair
        index = np.asarray(index)
        probability = np.asarray(probability, dtype=float)
        if index.ndim != 1 or probability.ndim != 1 or index.size != probability.size:
            raise ValueError(
                f"'jobs' must pair 1-D validation indices and probabilities of one length. Got shapes "
                f"{index.shape} and {probability.shape} for job {job} instead."
            )
        if index.size and not (index.dtype.kind in "iu" or (
                index.dtype.kind == "f" and np.isfinite(index).all() and (index == np.round(index)).all())):
            raise ValueError(
                f"'jobs' must hold integer validation indices. Got {index[:5]!r} for job {job} instead."
            )
        index = index.astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise ValueError(
                f"'jobs' validation indices must lie in [0, {n}). Got [{index.min()}, {index.max()}] "
                f"for job {job} instead."
            )
        if np.unique(index).size != index.size:
            raise ValueError(
                f"'jobs' validation indices must not repeat within a job. Got repeats in job {job} instead."
            )
        if not (np.isfinite(probability) & (probability >= 0) & (probability <= 1)).all():
            bad = probability[~(np.isfinite(probability) & (probability >= 0) & (probability <= 1))]
            raise ValueError(
                f"'jobs' probabilities must be finite and lie in [0, 1]. Got {bad[:5].tolist()} "
                f"for job {job} instead."
            )
        total[index] += probability
        count[index] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class LogisticFusion(ClassifierMixin, BaseEstimator):
    """L2 logistic regression of a binary outcome on several features.

    Each feature is standardised with the mean and standard deviation of the fitting rows (a
    standard deviation of 0 becomes 1) before fitting, so the L2 penalty does not depend on
    the units; the fitted coefficients are reported back in the features' own units.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 penalty strength of :class:`sklearn.linear_model.LogisticRegression`
        (on the standardised features). ``numpy.inf`` fits without a penalty.
    max_iter : int, default=1000
        Iterations of the lbfgs solver.
    feature_names : tuple of str, default=None
        The features' names, one per column, recorded in :meth:`to_dict`
        (``x0``, ``x1``, ... when None).
    tol : float, default=1e-8
        Tolerance of the lbfgs solver (tighter than scikit-learn's 1e-4, so that the
        coefficients stored in a bundle are reproducible to many digits; the problems are
        small).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The outcome labels (0 = good, 1 = poor).
    n_features_in_ : int
        The number of features ``k``.
    coef_ : ndarray of shape (k,)
        Log-odds of a poor outcome per unit of each feature.
    intercept_ : float
        Log-odds when every feature is 0.
    mean_, scale_ : ndarray of shape (k,)
        The standardisation of the fitting rows (``scale_`` is 1 for a constant feature).

    Examples
    --------
    >>> x = np.array([[-2.0, 50], [-1.0, 80], [0.0, 60], [1.0, 70], [2.0, 85], [0.5, 40]])
    >>> model = LogisticFusion(feature_names=("ensemble_logit", "age")).fit(x, [0, 0, 1, 1, 1, 0])
    >>> model.coef_.shape, bool(model.coef_[0] > 0)
    ((2,), True)
    >>> restored = LogisticFusion.from_dict(model.to_dict())
    >>> bool(np.array_equal(restored.decision_function(x), model.decision_function(x)))
    True
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, feature_names=None, tol: float = 1e-8):
        self.C = C
        self.max_iter = max_iter
        self.feature_names = feature_names
        self.tol = tol

    def fit(self, X, y):
        """Fit on ``X`` of shape (n_samples, k) and outcomes ``y`` of shape (n_samples,)."""
        X, y = validate_data(self, X, y, ensure_min_samples=2, y_numeric=False)
        if self.feature_names is not None and len(self.feature_names) != X.shape[1]:
            raise ValueError(
                f"'feature_names' must name each of the {X.shape[1]} feature columns. Got "
                f"{len(self.feature_names)} names instead."
            )
        self.classes_ = np.unique(y)
        if self.classes_.size != 2:
            raise ValueError(
                f"'y' must contain both outcome classes. Got only {self.classes_.tolist()} instead."
            )
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol)
        model.fit((X - mean) / scale, y)
        coef = model.coef_[0] / scale
        self.coef_ = coef
        self.intercept_ = float(model.intercept_[0] - coef @ mean)
        self.mean_ = mean
        self.scale_ = scale
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of a poor outcome, shape (n_samples,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.intercept_ + X @ self.coef_

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of (good, poor), shape (n_samples, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Predicted class at probability 0.5, shape (n_samples,)."""
        poor = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[poor.astype(int)]

    def _names(self) -> list[str]:
        if self.feature_names is None:
            return [f"x{j}" for j in range(self.n_features_in_)]
        return [str(name) for name in self.feature_names]

    def to_dict(self) -> dict:
        """The fitted model as a JSON-ready dict.

        Returns
        -------
        dict
            ``feature_names``, ``coef`` (per unit), ``intercept``, ``mean``, ``scale`` and
            ``C`` (the string ``"inf"`` for an unpenalised fit, so that the dict is strict
            JSON).
        """
        check_is_fitted(self)
        C = float(self.C)
        return {
            "feature_names": self._names(),
            "coef": [float(c) for c in self.coef_],
            "intercept": float(self.intercept_),
            "mean": [float(m) for m in self.mean_],
            "scale": [float(s) for s in self.scale_],
            "C": C if math.isfinite(C) else "inf",
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> LogisticFusion:
        """A fitted model from :meth:`to_dict`'s dict (other keys are ignored).

        The outcome labels are taken to be (0, 1).
        """
        missing = [key for key in ("feature_names", "coef", "intercept") if key not in d]
        if missing:
            raise ValueError(
                f"'d' must have the keys 'feature_names', 'coef' and 'intercept'. Got no {missing} instead."
            )
        coef = np.asarray(d["coef"], dtype=float)
        names = tuple(str(name) for name in d["feature_names"])
        if coef.ndim != 1 or coef.size != len(names):
            raise ValueError(
                f"'d' must hold one coefficient per feature name. Got {coef.size} coefficients and "
                f"{len(names)} names instead."
            )
        k = coef.size
        mean = np.asarray(d.get("mean", np.zeros(k)), dtype=float)
        scale = np.asarray(d.get("scale", np.ones(k)), dtype=float)
        if mean.shape != (k,) or scale.shape != (k,):
            raise ValueError(
                f"'d' must hold {k} means and scales. Got shapes {mean.shape} and {scale.shape} instead."
            )
        model = cls(C=float(d.get("C", 1.0)), feature_names=names)
        model.classes_ = np.array([0, 1])
        model.n_features_in_ = k
        model.coef_ = coef
        model.intercept_ = float(d["intercept"])
        model.mean_ = mean
        model.scale_ = scale
        return model


@dataclass
class LocoFusion:
    """A fusion model trained and evaluated with leave-one-center-out folds.

    Attributes
    ----------
    probability : ndarray of shape (n_samples,)
        Out-of-center probability of a poor outcome (NaN where a feature is missing).
    fold_models : dict of str to LogisticFusion
        The model of each fold (trained on the other folds' participants).
    n_fit : dict of str to int
        The rows each fold's model was fitted on.
    feature_names : tuple of str
        The features, in the order of the coefficients.
    """

    probability: np.ndarray
    fold_models: dict[str, LogisticFusion]
    n_fit: dict[str, int]
    feature_names: tuple[str, ...]


def _features(value, name: str, n: int | None = None) -> np.ndarray:
    """``value`` as a float array of shape (n, k) (a 1-D array is one column)."""
    x = np.asarray(value, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or (n is not None and x.shape[0] != n):
        rows = "n_samples" if n is None else n
        raise ValueError(f"'{name}' must have shape ({rows}, k). Got {np.shape(value)} instead.")
    return x


def loco_logistic(train_features, test_features, outcome, folds, *, feature_names, **params) -> LocoFusion:
    """Train and evaluate a logistic regression on several features with LOCO folds.

    Parameters
    ----------
    train_features : array-like of shape (n_samples, k), or dict of str to array-like
        The features of the training participants: one array used by every fold, or one
        per fold (fold -> (n_samples, k) array, the features of the participants as that
        fold sees them; only the rows of the other folds are read). NaN for a missing
        value: the row is left out of that fold's fit.
    test_features : array-like of shape (n_samples, k)
        The features that predict the participants of their own fold; NaN for a missing
        value: the participant gets a NaN probability.
    outcome : array-like of shape (n_samples,)
        1 = poor, 0 = good.
    folds : array-like of shape (n_samples,)
        The held-out site of the fold that predicts each participant.
    feature_names : sequence of str
        One name per feature column.
    **params
        Passed to :class:`LogisticFusion`.

    Returns
    -------
    LocoFusion

    Raises
    ------
    ValueError
        Shapes differ, a fold has no training features, or a fold's training rows are
        fewer than ``k + 2`` or hold a single outcome class.
    """
    y = np.asarray(outcome)
    f = np.asarray(folds).astype(str)
    if not (y.ndim == f.ndim == 1 and y.size == f.size):
        raise ValueError(
            f"'outcome' and 'folds' must be 1-D arrays of one length. Got shapes {y.shape} and {f.shape} instead."
        )
    n = y.size
    test = _features(test_features, "test_features", n)
    k = test.shape[1]
    names = tuple(str(name) for name in feature_names)
    if len(names) != k:
        raise ValueError(f"'feature_names' must name each of the {k} feature columns. Got {len(names)} names instead.")
    order = [str(fold) for fold in pd.unique(f)]
    if isinstance(train_features, Mapping):
        train = {str(key): value for key, value in train_features.items()}
        absent = [fold for fold in order if fold not in train]
        if absent:
            raise ValueError(f"'train_features' must have a key for every fold. Got none for {absent} instead.")
        train = {fold: _features(train[fold], f"train_features[{fold!r}]", n) for fold in order}
    else:
        shared = _features(train_features, "train_features", n)
        train = dict.fromkeys(order, shared)
    for fold, x in train.items():
        if x.shape[1] != k:
            raise ValueError(
                f"'train_features' of fold '{fold}' must have {k} columns, as 'test_features'. "
                f"Got {x.shape[1]} instead."
            )
    probability = np.full(n, np.nan)
    fold_models: dict[str, LogisticFusion] = {}
    n_fit: dict[str, int] = {}
    for fold in order:
        x = train[fold]
        rows = (f != fold) & np.isfinite(x).all(axis=1)
        if rows.sum() < k + 2:
            raise ValueError(
                f"Fold '{fold}' must have at least {k + 2} training participants with every feature "
                f"({', '.join(names)}). Got {int(rows.sum())} instead."
            )
        classes = np.unique(y[rows])
        if classes.size < 2:
            raise ValueError(
                f"'outcome' must hold both classes among the training participants of fold '{fold}' "
                f"({', '.join(names)}). Got {classes.tolist()} instead."
            )
        model = LogisticFusion(feature_names=names, **params).fit(x[rows], y[rows])
        fold_models[str(fold)] = model
        n_fit[str(fold)] = int(rows.sum())
        held = (f == fold) & np.isfinite(test).all(axis=1)
        if held.any():
            probability[held] = model.predict_proba(test[held])[:, 1]
    return LocoFusion(probability, fold_models, n_fit, names)


def _probability(value, name: str, n: int) -> np.ndarray:
    """``value`` as a 1-D float array of ``n`` probabilities in [0, 1] (or NaN)."""
    p = np.asarray(value, dtype=float)
    if p.shape != (n,):
        raise ValueError(f"'{name}' must have shape ({n},). Got {p.shape} instead.")
    known = ~np.isnan(p)
    if ((p[known] < 0) | (p[known] > 1)).any():
        raise ValueError(f"'{name}' must lie in [0, 1] (or be NaN). Got values in "
                         f"[{p[known].min()}, {p[known].max()}] instead.")
    return p


def _covariates(covariates, covariate_names, n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    x = _features(covariates, "covariates", n)
    names = tuple(str(name) for name in covariate_names)
    if len(names) != x.shape[1]:
        raise ValueError(
            f"'covariate_names' must name each of the {x.shape[1]} covariate columns. Got {len(names)} names instead."
        )
    return x, names


def loco_clinical_fusion(ensemble_probability, inner_probability: Mapping, covariates, outcome, folds, *,
                         covariate_names, **params) -> LocoFusion:
    """The ``ensemble+clinical`` model: the ensemble's logit and clinical covariates, LOCO.

    Parameters
    ----------
    ensemble_probability : array-like of shape (n_samples,)
        The out-of-center ensemble probability of each participant (its fold's ensemble).
    inner_probability : dict of str to array-like of shape (n_samples,)
        Fold -> the inner held-out probability of each participant from that fold's
        variants (:func:`inner_ensemble_probability`; NaN for participants held out by
        none, which are then left out of the fold's fit). Only the rows of the other folds
        are read. Every fold in ``folds`` must have a key.
    covariates : array-like of shape (n_samples, m)
        The clinical covariates; NaN where missing (no probability, left out of fits).
    outcome : array-like of shape (n_samples,)
        1 = poor, 0 = good.
    folds : array-like of shape (n_samples,)
        The held-out site of the fold that predicts each participant.
    covariate_names : sequence of str
        One name per covariate column.
    **params
        Passed to :class:`LogisticFusion`.

    Returns
    -------
    LocoFusion
        With ``feature_names == ("ensemble_logit", *covariate_names)``.

    Raises
    ------
    ValueError
        Shapes differ, a probability lies outside [0, 1], a fold has no key in
        ``inner_probability``, or as :func:`loco_logistic`.
    """
    n = np.asarray(outcome).size
    x, names = _covariates(covariates, covariate_names, n)
    p = _probability(ensemble_probability, "ensemble_probability", n)
    order = [str(fold) for fold in pd.unique(np.asarray(folds).astype(str))]
    inner = {str(key): value for key, value in inner_probability.items()}
    absent = [fold for fold in order if fold not in inner]
    if absent:
        raise ValueError(f"'inner_probability' must have a key for every fold. Got none for {absent} instead.")
    train = {
        fold: np.column_stack([logit_clipped(_probability(inner[fold], f"inner_probability[{fold!r}]", n)), x])
        for fold in order
    }
    test = np.column_stack([logit_clipped(p), x])
    return loco_logistic(train, test, outcome, folds, feature_names=("ensemble_logit", *names), **params)


def _log_volume(volume_ml, n: int) -> np.ndarray:
    v = np.asarray(volume_ml, dtype=float)
    if v.shape != (n,):
        raise ValueError(f"'volume_ml' must have shape ({n},). Got {v.shape} instead.")
    if (v[~np.isnan(v)] < 0).any():
        raise ValueError(f"'volume_ml' must be non-negative (or NaN). Got {np.nanmin(v)} instead.")
    return np.log1p(v)


def loco_volume_clinical(volume_ml, covariates, outcome, folds, *, covariate_names, **params) -> LocoFusion:
    """The ``volume+clinical`` model: log lesion volume and clinical covariates, LOCO.

    Parameters
    ----------
    volume_ml : array-like of shape (n_samples,)
        Lesion volume in mL (non-negative; NaN where missing). The feature is
        ``log1p(volume_ml)``.
    covariates : array-like of shape (n_samples, m)
        The clinical covariates; NaN where missing.
    outcome, folds
        As :func:`loco_logistic`.
    covariate_names : sequence of str
        One name per covariate column.
    **params
        Passed to :class:`LogisticFusion`.

    Returns
    -------
    LocoFusion
        With ``feature_names == ("log1p_lesion_volume_ml", *covariate_names)``; the same
        features train and test.
    """
    n = np.asarray(outcome).size
    x, names = _covariates(covariates, covariate_names, n)
    return loco_clinical(np.column_stack([_log_volume(volume_ml, n), x]), outcome, folds,
                         covariate_names=("log1p_lesion_volume_ml", *names), **params)


def loco_clinical(covariates, outcome, folds, *, covariate_names, **params) -> LocoFusion:
    """The ``lr_clinical`` baseline: a logistic regression on the clinical covariates alone, LOCO.

    Parameters
    ----------
    covariates : array-like of shape (n_samples, m)
        The clinical covariates (e.g. age and NIHSS); NaN where missing.
    outcome, folds
        As :func:`loco_logistic`.
    covariate_names : sequence of str
        One name per covariate column.
    **params
        Passed to :class:`LogisticFusion`.

    Returns
    -------
    LocoFusion
        With ``feature_names == tuple(covariate_names)``; the same features train and test.
    """
    n = np.asarray(outcome).size
    x, names = _covariates(covariates, covariate_names, n)
    return loco_logistic(x, x, outcome, folds, feature_names=names, **params)


def fit_final_fusion(inner_probability, covariates, outcome, *, covariate_names, **params) -> LogisticFusion:
    """The fusion of the final ensemble (trained on everyone), for the model bundle.

    Parameters
    ----------
    inner_probability : array-like of shape (n_samples,)
        The inner held-out probability of each participant from the final ensemble's
        variants (:func:`inner_ensemble_probability`); NaN for participants held out by none.
    covariates : array-like of shape (n_samples, m)
        The clinical covariates; NaN where missing.
    outcome : array-like of shape (n_samples,)
        1 = poor, 0 = good.
    covariate_names : sequence of str
        One name per covariate column.
    **params
        Passed to :class:`LogisticFusion`.

    Returns
    -------
    LogisticFusion
        Fitted on every participant with a finite inner probability and finite covariates,
        on the features ``("ensemble_logit", *covariate_names)``.

    Raises
    ------
    ValueError
        Shapes differ, or the usable participants are fewer than ``m + 3`` or hold a
        single outcome class.
    """
    y = np.asarray(outcome)
    if y.ndim != 1:
        raise ValueError(f"'outcome' must be a 1-D array. Got shape {y.shape} instead.")
    n = y.size
    x, names = _covariates(covariates, covariate_names, n)
    features = np.column_stack([logit_clipped(_probability(inner_probability, "inner_probability", n)), x])
    rows = np.isfinite(features).all(axis=1)
    k = features.shape[1]
    if rows.sum() < k + 2:
        raise ValueError(
            f"'inner_probability' and 'covariates' must be known for at least {k + 2} participants. "
            f"Got {int(rows.sum())} instead."
        )
    classes = np.unique(y[rows])
    if classes.size < 2:
        raise ValueError(
            f"'outcome' must hold both classes among the participants with an inner probability and "
            f"every covariate. Got {classes.tolist()} instead."
        )
    return LogisticFusion(feature_names=("ensemble_logit", *names), **params).fit(features[rows], y[rows])
