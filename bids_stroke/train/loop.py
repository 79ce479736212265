"""Training of one variant: oversampled, augmented batches, early stopping, best weights.

The recipe of Moulton et al. (2022), as ``../shared/design/METHOD.md`` (Training) gives it:

* each epoch the training set is randomly oversampled to balance outcome × lesion side
  (:func:`~bids_stroke.train.sampling.oversample`), shuffled, cut into batches of 16 and
  every batch is augmented on the fly (:func:`~bids_stroke.train.augment.augment_batch`);
  the validation set is used as it is;
* Adam (learning rate 1e-4) on the binary cross-entropy of the ``probability`` output;
* after each epoch the validation loss is computed; training stops once it has not
  improved (strictly decreased) for ``patience`` epochs, or after ``epochs`` epochs, and
  the weights of the best epoch are put back into the returned model.

Seeds: :func:`keras.utils.set_random_seed` (Python, NumPy and backend generators), the
initial weights and the dropout (:func:`~bids_stroke.model.variants.build_variant`), the
oversampling of epoch ``e`` (seed ``[seed, e]``) and the augmentation of batch ``b`` of
epoch ``e`` (seed ``[seed, e, b]``) all derive from the one ``seed`` argument, so a batch
does not depend on which thread builds it or on how many batches were drawn before. On a
CPU the same seed gives the same predictions. :func:`bids_stroke.train.job.derive_seed`
turns the run's ``--random-seed``, a fold name and a variant into the seed of one job.

Precision: ``precision="bfloat16"`` trains levels 2–5 of the network in bfloat16
(:func:`~bids_stroke.model.variants.build_variant`); the weights, the optimizer and the
loss stay float32, and the returned model is a float32 model holding the trained weights,
so saving, inference and attention do not depend on how it was trained.

Epochs are counted from 1 in every returned value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from bids_stroke.model.variants import build_variant, check_input_shape

from .batches import TrainingBatches
from .sampling import normalise_sides

__all__ = [
    "CURVE_COLUMNS",
    "BestEpochTracker",
    "TrainResult",
    "check_volumes",
    "compile_for_training",
    "curve_rows",
    "predict_probabilities",
    "train_variant",
]

#: Columns of :meth:`TrainResult.curve`.
CURVE_COLUMNS = ("epoch", "loss", "val_loss", "val_auc")


def check_volumes(x, name: str) -> np.ndarray:
    """Volumes as float32 of shape (n, X, Y, Z, 1); a ValueError naming ``name`` otherwise."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 4:
        x = x[..., None]
    if x.ndim != 5 or x.shape[-1] != 1:
        raise ValueError(f"'{name}' must have shape (n, X, Y, Z) or (n, X, Y, Z, 1). "
                         f"Got {x.shape} instead.")
    return x


def _as_binary(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if y.size != n or not np.isin(y, (0, 1)).all():
        raise ValueError(f"'{name}' must hold {n} values of 0 or 1. Got {y.size} values "
                         f"{sorted(set(y.tolist()))[:5]} instead.")
    return y.astype(np.float32)


class BestEpochTracker:
    """Early-stopping bookkeeping on a sequence of validation losses.

    An epoch improves when its loss is finite and strictly lower than the best so far.
    :attr:`should_stop` becomes true once ``patience`` epochs in a row have not improved.

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping (>= 1).

    Examples
    --------
    >>> tracker = BestEpochTracker(patience=2)
    >>> [tracker.update(loss) for loss in (1.0, 0.8, 0.9, 0.85)]
    [True, True, False, False]
    >>> tracker.best_epoch, tracker.should_stop
    (2, True)
    """

    def __init__(self, patience: int):
        if int(patience) < 1:
            raise ValueError(f"'patience' must be an integer >= 1. Got {patience!r} instead.")
        self.patience = int(patience)
        self.epoch = 0
        self.best_epoch: int | None = None
        self.best_loss = math.inf

    def update(self, loss: float) -> bool:
        """Record the next epoch's loss; return whether it is the new best."""
        self.epoch += 1
        loss = float(loss)
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, self.epoch
            return True
        return False

    @property
    def wait(self) -> int:
        """Epochs since the best one (all epochs when none improved)."""
        return self.epoch - (self.best_epoch or 0)

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.patience


class _EpochControl(keras.callbacks.Callback):
    """Sets the batches' epoch, tracks the best validation loss and its weights."""

    def __init__(self, batches: TrainingBatches, tracker: BestEpochTracker):
        super().__init__()
        self.batches, self.tracker = batches, tracker
        self.best_weights = None
        self.rows: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}})
        if self.tracker.update(logs.get("val_loss", math.nan)):
            self.best_weights = self.model.get_weights()
        if self.tracker.should_stop:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


@dataclass
class TrainResult:
    """A trained variant and how it was trained.

    Attributes
    ----------
    model : keras.Model
        The variant with its dict outputs (``probability``, ``a1``, ``a2``, ``a3``),
        holding the weights of the best epoch.
    best_epoch : int or None
        Epoch (from 1) of the lowest validation loss; None if no epoch had a finite one
        (the model then holds the last epoch's weights).
    best_val_loss : float
        Validation loss of ``best_epoch`` (binary cross-entropy, mean over participants).
    epochs_run : int
        Epochs trained (``best_epoch + patience`` when early stopping ended the run).
    history : dict of str to list of float
        Per epoch: ``epoch``, ``loss`` (training, on augmented batches), ``auc``,
        ``val_loss``, ``val_auc``.
    seconds : float
        Wall time of the training, in s.
    seed : int
        The seed everything random was drawn from.
    stopped_early : bool
        Whether early stopping ended the run before ``epochs``.
    """

    model: keras.Model = field(repr=False)
    best_epoch: int | None
    best_val_loss: float
    epochs_run: int
    history: dict = field(repr=False)
    seconds: float
    seed: int
    stopped_early: bool

    def curve(self) -> list[dict]:
        """The training curve, one dict per epoch with :data:`CURVE_COLUMNS`."""
        return curve_rows(self.history)


def curve_rows(history: dict) -> list[dict]:
    """A training history as curve rows, one dict per epoch with :data:`CURVE_COLUMNS`."""
    n = len(history.get("epoch", []))
    return [{key: history.get(key, [math.nan] * n)[i] for key in CURVE_COLUMNS} for i in range(n)]


def compile_for_training(model: keras.Model, learning_rate: float = 1e-4) -> keras.Model:
    """The model's ``probability`` output as a compiled single-output model.

    Shares the weights of ``model``. Adam, binary cross-entropy, AUC as a metric.
    """
    trainable = keras.Model(model.input, model.output["probability"], name=f"{model.name}_train")
    trainable.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.BinaryCrossentropy(),
                      metrics=[keras.metrics.AUC(name="auc")])
    return trainable


def train_variant(name: str, x_train, y_train, x_val, y_val, *, sides=None, epochs: int = 150,
                  patience: int = 30, batch_size: int = 16, learning_rate: float = 1e-4,
                  seed: int = 0, input_shape=None, verbose: int = 0,
                  callbacks=None, workers: int = 2, precision: str = "float32",
                  size_branch: str = "none") -> TrainResult:
    """Train one variant with oversampling, augmentation and early stopping.

    Parameters
    ----------
    name : str
        Variant, one of :data:`bids_stroke.config.VARIANT_NAMES`.
    x_train : array-like, shape (n_train, X, Y, Z) or (n_train, X, Y, Z, 1)
        Normalised training volumes on the model grid.
    y_train : array-like of {0, 1}, shape (n_train,)
        Outcomes (1 = poor); both classes must be present.
    x_val : array-like, shape (n_val, X, Y, Z[, 1])
        Validation volumes (never augmented).
    y_val : array-like of {0, 1}, shape (n_val,)
    sides : array-like of str, shape (n_train,), default=None
        Lesion side of each training participant for the oversampling; None balances
        the outcome only.
    epochs : int, default=150
        Most epochs.
    patience : int, default=30
        Epochs without improvement of the validation loss before stopping.
    batch_size : int, default=16
    learning_rate : float, default=1e-4
        Adam's learning rate.
    seed : int, default=0
        Seed of the weights, dropout, oversampling and augmentation.
    input_shape : tuple of 4 int, default=None
        Model input; None takes it from ``x_train``.
    verbose : int, default=0
        Keras ``fit`` verbosity (2 = one line per epoch).
    callbacks : list of keras.callbacks.Callback, default=None
        Called before the early-stopping bookkeeping at each epoch end.
    workers : int, default=2
        Threads preparing (oversampling, augmenting) the next batches while the model
        trains on the current one; 1 prepares each batch in turn. The batches do not
        depend on it.
    precision : {"float32", "bfloat16"}, default="float32"
        Compute precision of levels 2–5 during training (see
        :mod:`bids_stroke.train.precision`); the returned model computes in float32.
    size_branch : {"none", "mean"}, default="none"
        Head of the variant (:func:`~bids_stroke.model.variants.build_variant`).

    Returns
    -------
    TrainResult
    """
    x_train = check_volumes(x_train, "x_train")
    x_val = check_volumes(x_val, "x_val")
    y_train = _as_binary(y_train, x_train.shape[0], "y_train")
    y_val = _as_binary(y_val, x_val.shape[0], "y_val")
    if len(set(y_train.tolist())) < 2:
        raise ValueError("'y_train' must hold both outcomes (0 and 1). Got only "
                         f"{sorted(set(y_train.tolist()))} instead.")
    if x_val.shape[0] == 0:
        raise ValueError("'x_val' must hold at least one volume for early stopping. Got none.")
    shape = check_input_shape(input_shape if input_shape is not None else x_train.shape[1:])
    if x_train.shape[1:] != shape or x_val.shape[1:] != shape:
        raise ValueError(f"'x_train' and 'x_val' must have volumes of shape {shape}. Got "
                         f"{x_train.shape[1:]} and {x_val.shape[1:]} instead.")
    for label, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
        if int(value) < low:
            raise ValueError(f"'{label}' must be an integer >= {low}. Got {value!r} instead.")
    sides = normalise_sides(sides, x_train.shape[0])
    seed = int(seed)

    keras.utils.set_random_seed(seed)
    model = build_variant(name, shape, seed=seed, precision=precision, size_branch=size_branch)
    trainable = compile_for_training(model, learning_rate)
    batches = TrainingBatches(x_train, y_train, sides, batch_size=batch_size, seed=seed,
                              workers=max(1, int(workers)))
    tracker = BestEpochTracker(patience)
    control = _EpochControl(batches, tracker)

    start = time.perf_counter()
    trainable.fit(batches, validation_data=(x_val, y_val[:, None]), validation_batch_size=batch_size,
                  epochs=int(epochs), verbose=verbose, shuffle=False,
                  callbacks=[*(callbacks or []), control])
    seconds = time.perf_counter() - start
    if precision != "float32":
        trained = model
        model = build_variant(name, shape, seed=seed, size_branch=size_branch)
        model.set_weights(trained.get_weights())

    history: dict[str, list] = {}
    for row in control.rows:
        for key, value in row.items():
            history.setdefault(key, []).append(value)
    return TrainResult(model=model, best_epoch=tracker.best_epoch,
                       best_val_loss=float(tracker.best_loss), epochs_run=tracker.epoch,
                       history=history, seconds=seconds, seed=seed,
                       stopped_early=tracker.should_stop and tracker.epoch < int(epochs))


def predict_probabilities(model: keras.Model, x, batch_size: int = 16) -> np.ndarray:
    """P(poor outcome) of every volume, without augmentation.

    Parameters
    ----------
    model : keras.Model
        A variant (dict outputs) or a single-output model.
    x : array-like, shape (n, X, Y, Z) or (n, X, Y, Z, 1)
    batch_size : int, default=16

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    x = check_volumes(x, "x")
    if x.shape[0] == 0:
        return np.zeros(0)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(out, dict):
        out = out["probability"]
    return np.asarray(out, dtype=np.float64).reshape(-1)
