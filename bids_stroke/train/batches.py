"""The training set as the batches a variant learns from: oversampled, shuffled, augmented.

Batch ``b`` of epoch ``e`` is a function of ``(seed, e, b)`` only, so the batches do not
depend on which worker thread builds them (see :mod:`bids_stroke.train.loop`).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from .augment import augment_batch
from .sampling import oversample

__all__ = ["TrainingBatches"]


class TrainingBatches(keras.utils.PyDataset):
    """The training set as oversampled, shuffled, augmented batches.

    Batch ``b`` of epoch ``e`` is a function of ``(seed, e, b)`` only. Call
    :meth:`set_epoch` before each epoch (the training loop does it from a callback).

    Parameters
    ----------
    x : ndarray of float32, shape (n, X, Y, Z, 1)
        Training volumes (kept in memory, never modified).
    y : ndarray of float32, shape (n,)
        Outcomes (1 = poor).
    sides : ndarray of str, shape (n,)
        Lesion sides for the oversampling.
    batch_size : int
    seed : int
    augment : bool, default=True
        False yields the oversampled volumes as they are (for benchmarks).
    **kwargs
        Passed to :class:`keras.utils.PyDataset` (``workers``: threads building batches
        ahead; the batches are the same for any number).
    """

    def __init__(self, x, y, sides, *, batch_size: int, seed: int, augment: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.sides = x, y, sides
        self.batch_size, self.seed, self.augment = int(batch_size), int(seed), augment
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the oversampled order of epoch ``epoch`` (0-based)."""
        self.epoch = int(epoch)
        self.order = oversample(self.y.astype(int), self.sides, seed=[self.seed, self.epoch])

    def __len__(self) -> int:
        return math.ceil(self.order.size / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = self.x[rows]
        if self.augment:
            batch = augment_batch(batch, np.random.default_rng([self.seed, self.epoch, int(index)]))
        return batch, self.y[rows][:, None]
