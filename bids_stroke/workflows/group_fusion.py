"""Clinical models at the group level (``--clinical-columns``): the files around :mod:`bids_stroke.stats.fusion`.

Reads each training job's inner held-out predictions (its validation participants, in
its ``done.json``) and the covariate columns of participants.tsv, and adds the models
``lr_clinical`` (the covariates alone), ``volume+clinical`` (with the log lesion volume)
and ``ensemble+clinical`` (with the ensemble's logit) to the out-of-center predictions
table. The final ensemble's fusion (fitted on the inner held-out predictions of the
variants trained on everyone) is computed by :func:`final_fusion` for the bundle's
manifest.

By default the covariates are :data:`~bids_stroke.config.DEFAULT_CLINICAL_COLUMNS` (age
and NIHSS) where participants.tsv has them, and the clinical models are skipped, with a
note, where it does not (:func:`resolve_clinical_columns`); columns named with
``--clinical-columns`` must be there (exit 65 otherwise).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bids_stroke.bids.naming import run_path
from bids_stroke.errors import BadInputError, BidsStrokeError

__all__ = ["add_clinical_fusion", "clinical_covariates", "final_fusion", "job_validation", "resolve_clinical_columns"]

LOGGER = logging.getLogger("bids_stroke")


def clinical_covariates(table: pd.DataFrame, columns, tsv) -> np.ndarray:
    """The covariate columns as floats, shape (n, k); NaN where a value is missing.

    Raises
    ------
    BadInputError
        (exit 65) a column is absent from participants.tsv, or holds a value that is
        neither a number nor missing (``n/a``), named with its participant.
    """
    values = np.full((len(table), len(columns)), np.nan)
    for j, column in enumerate(columns):
        if column not in table.columns:
            raise BadInputError(f"{tsv}: no column {column!r} for --clinical-columns "
                                f"(columns: {', '.join(map(str, table.columns))}).")
        raw = table[column]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & numeric.isna() & ~raw.astype(str).str.strip().isin(["", "n/a", "nan"])
        if bad.any():
            first = bad.to_numpy().nonzero()[0][0]
            raise BadInputError(f"{tsv}: column {column!r} must hold numbers for --clinical-columns. Got "
                                f"{raw.iloc[first]!r} for {table['participant_id'].iloc[first]} instead.")
        values[:, j] = numeric.to_numpy(dtype=float)
    return values


def resolve_clinical_columns(config, table: pd.DataFrame, folds) -> tuple[list[str], str | None]:
    """The covariate columns of the clinical models, or none with the reason.

    Parameters
    ----------
    config : bids_stroke.config.Config
        ``clinical_columns``: None (default: age and NIHSS where usable), [] (none) or
        the columns named by the user.
    table : pandas.DataFrame
        The group inputs (participants.tsv columns included).
    folds : list of bids_stroke.train.folds.Fold

    Returns
    -------
    columns : list of str
        Empty when no clinical model is fitted.
    note : str or None
        Why the clinical models are skipped (None when they are not).

    Raises
    ------
    BadInputError
        (exit 65) columns named by the user are absent or not numeric
        (:func:`clinical_covariates`); with the default columns these skip the models.
    """
    from bids_stroke.config import DEFAULT_CLINICAL_COLUMNS
    from bids_stroke.stats.fusion import MODEL_NAMES

    tsv = Path(config.bids_dir) / "participants.tsv"
    skipped = f"the clinical models ({', '.join(MODEL_NAMES)}) are skipped"
    if config.clinical_columns is not None:
        columns = list(config.clinical_columns)
        if not columns:
            return [], f"--clinical-columns none: {skipped}."
        clinical_covariates(table, columns, tsv)
        return columns, None
    columns = list(DEFAULT_CLINICAL_COLUMNS)
    absent = [column for column in columns if column not in table.columns]
    if absent:
        return [], (f"{tsv} has no column {', '.join(absent)}: {skipped} (name other columns with "
                    "--clinical-columns).")
    try:
        covariates = clinical_covariates(table, columns, tsv)
    except BadInputError as err:
        return [], f"{err} As default columns, {skipped}."
    complete = np.isfinite(covariates).all(axis=1)
    outcome = table["outcome"].to_numpy()
    for fold in folds:
        train = np.zeros(len(table), dtype=bool)
        train[fold.trainval_index] = True
        train &= complete
        if train.sum() < len(columns) + 3 or np.unique(outcome[train]).size < 2:
            return [], (f"{tsv}: too few participants with {', '.join(columns)} to train fold {fold.name} "
                        f"({int(train.sum())}): {skipped}.")
    return columns, None


def job_validation(done: Path) -> tuple[np.ndarray, np.ndarray]:
    """A training job's validation positions and its probabilities for them.

    Raises
    ------
    BidsStrokeError
        The marker has no validation predictions (a job of an older version: delete its
        folder under ``models/`` to retrain it).
    """
    record = json.loads(Path(done).read_text())
    if "validation_probabilities" not in record:
        raise BidsStrokeError(f"{done}: no validation predictions (trained by an older version); remove "
                              f"{Path(done).parent} and rerun the group level to use --clinical-columns.")
    return (np.asarray(record["validation_index"], dtype=np.int64),
            np.asarray(record["validation_probabilities"], dtype=float))


def _inner_probability(n: int, done_files) -> np.ndarray:
    """The inner held-out ensemble probability of n participants from the jobs' ``done.json``."""
    from bids_stroke.stats.fusion import inner_ensemble_probability

    return inner_ensemble_probability(n, [job_validation(Path(done)) for done in done_files])


def add_clinical_fusion(config, columns, table: pd.DataFrame, covariates: np.ndarray, folds,
                        predictions: pd.DataFrame, *, required: bool = True):
    """Add ``lr_clinical``, ``volume+clinical`` and ``ensemble+clinical`` to the predictions table.

    Parameters
    ----------
    config : bids_stroke.config.Config
        ``variants``, ``output_dir``, ``bids_dir``.
    columns : sequence of str
        The covariates' participants.tsv columns (:func:`resolve_clinical_columns`).
    table : pandas.DataFrame
        The group inputs, in the order of the cohort arrays the jobs were trained on.
    covariates : ndarray, shape (n, k)
        ``table``'s clinical columns (:func:`clinical_covariates`).
    folds : list of bids_stroke.train.folds.Fold
    predictions : pandas.DataFrame
        The merged out-of-center predictions (``participant_id``, ``fold``, ``outcome``,
        ``ensemble``).
    required : bool, default=True
        Whether the columns were named by the user. With the default columns an
        ``ensemble+clinical`` that cannot be fitted (too few inner held-out predictions,
        e.g. with one variant) is left out, with a note, instead of failing the run.

    Returns
    -------
    predictions : pandas.DataFrame
        A copy with the new columns (NaN for participants missing a covariate).
    fits : dict of str to bids_stroke.stats.fusion.LocoFusion
    note : str or None
        Why ``ensemble+clinical`` was left out (None when it was not).

    Raises
    ------
    BadInputError
        (exit 65) a fold has too few training
        participants with every covariate (and an inner held-out prediction), or only one
        outcome among them.
    """
    from bids_stroke.stats.fusion import loco_clinical, loco_clinical_fusion, loco_volume_clinical
    from bids_stroke.workflows.group import _safe

    columns = list(columns)
    tsv = Path(config.bids_dir) / "participants.tsv"
    order = pd.Index(table["participant_id"]).get_indexer(predictions["participant_id"])
    inner = {
        fold.name: _inner_probability(len(table), [
            run_path(config.output_dir, "loco_job", fold=_safe(fold.name), variant=variant) / "done.json"
            for variant in config.variants])[order]
        for fold in folds
    }
    outcome = predictions["outcome"].to_numpy()
    fold_labels = predictions["fold"].astype(str).to_numpy()
    x = covariates[order]
    note = None
    try:
        fits = {
            "lr_clinical": loco_clinical(x, outcome, fold_labels, covariate_names=columns),
            "volume+clinical": loco_volume_clinical(table["lesion_volume_ml"].to_numpy(float)[order], x, outcome,
                                                    fold_labels, covariate_names=columns),
        }
        try:
            fits["ensemble+clinical"] = loco_clinical_fusion(predictions["ensemble"].to_numpy(float), inner, x,
                                                             outcome, fold_labels, covariate_names=columns)
        except ValueError as err:
            if required:
                raise
            note = f"ensemble+clinical is skipped: too few inner held-out predictions with {', '.join(columns)}: {err}"
            LOGGER.warning("%s", note)
    except ValueError as err:
        raise BadInputError(f"{tsv}: too few participants with {', '.join(columns)} for --clinical-columns: "
                            f"{err}") from err
    out = predictions.copy()
    for name, fit in fits.items():
        out[name] = fit.probability
        missing = int(np.isnan(fit.probability).sum())
        if missing:
            LOGGER.warning("%s: %d participants without every clinical column get no prediction.", name, missing)
        LOGGER.info("%s: fitted on %s participants per fold.", name,
                    ", ".join(f"{fold} {n}" for fold, n in fit.n_fit.items()))
    return out, fits, note


def final_fusion(columns, covariates: np.ndarray, outcomes: np.ndarray, done_files) -> dict:
    """The final ensemble's fusion, as the bundle manifest's ``clinical_fusion`` entry.

    Parameters
    ----------
    columns : sequence of str
        The covariates' participants.tsv columns.
    covariates : ndarray, shape (n, k)
        Every participant's covariates (NaN where missing), in cohort order.
    outcomes : ndarray of {0, 1}, shape (n,)
    done_files : sequence of path-like
        The ``done.json`` of each variant trained on everyone.

    Raises
    ------
    BadInputError
        Too few participants with every covariate and an inner held-out prediction.
    """
    from bids_stroke.stats.fusion import fit_final_fusion

    covariates = np.asarray(covariates, dtype=float)
    inner = _inner_probability(len(outcomes), done_files)
    try:
        model = fit_final_fusion(inner, covariates, np.asarray(outcomes), covariate_names=list(columns))
    except ValueError as err:
        raise BadInputError(f"too few participants with {', '.join(columns)} for the final ensemble's "
                            f"clinical fusion: {err}") from err
    used = np.isfinite(inner) & np.isfinite(covariates).all(axis=1)
    return {**model.to_dict(), "columns": list(columns), "n_fit": int(used.sum()),
            "description": ("P(poor) = sigmoid(intercept + coef . [logit(ensemble probability), "
                            + ", ".join(columns) + "]), fitted on the inner held-out (validation) "
                            "predictions of the variants trained on everyone")}
