"""Benchmark of training throughput per variant at the real 96 × 96 × 24 input.

Prints one line per measurement:

* the augmentation alone (:func:`bids_stroke.train.augment.augment_batch`, batch 16):
  images/s on one thread;
* for each variant, the plain reference: ``model.fit`` of the compiled ``probability``
  output on arrays augmented beforehand and held in memory (batch 16), images/s and the
  achieved GFLOP/s (a training step taken as 3 × the forward FLOPs of
  :func:`bids_stroke.model.variants.model_flops`);
* for each variant, the training loop's own input path
  (:class:`bids_stroke.train.loop.TrainingBatches`: oversampling, shuffling and on-the-fly
  augmentation of every batch by ``--workers`` threads while the model trains, fed to
  the same ``fit``), images/s, GFLOP/s and the ratio to the reference measured just
  before on the same machine.

Throughput is the median over ``--steps`` timed steps (the interval between consecutive
batch ends) after ``--warmup`` steps (graph tracing and compilation).

Usage::

    python benchmarks/training.py --steps 3 --variants f8-g1.5 f16-g2
"""

from __future__ import annotations

import argparse
import os

import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bids_stroke.config import VARIANT_NAMES  # noqa: E402
from bids_stroke.model.variants import INPUT_SHAPE, build_variant, model_flops  # noqa: E402
from bids_stroke.train.augment import augment_batch  # noqa: E402
from bids_stroke.train.loop import TrainingBatches, compile_for_training  # noqa: E402
from bids_stroke.train.sampling import normalise_sides  # noqa: E402


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def _step_seconds(timer: _StepTimer, warmup: int) -> float:
    intervals = np.diff(timer.ends)[max(0, warmup - 1):]
    return float(np.median(intervals))


def _cohort(n: int, rng: np.random.Generator):
    """``n`` synthetic heads on the model grid, balanced outcome × side (no oversampling)."""
    x, y = np.meshgrid(*(np.arange(n_) - (n_ - 1) / 2 for n_ in INPUT_SHAPE[:2]), indexing="ij")
    brain = ((x / 40) ** 2 + (y / 46) ** 2 <= 1)[..., None]
    volumes = (rng.uniform(0.6, 1.4, (n,) + INPUT_SHAPE[:3]) * brain).astype(np.float32)[..., None]
    outcomes = np.arange(n) % 2
    sides = normalise_sides(np.where((np.arange(n) // 2) % 2 == 0, "left", "right"))
    return volumes, outcomes.astype(np.float32), sides


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--augment-runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2,
                        help="threads building batches (train_variant's default)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    args = parser.parse_args(argv)
    steps = args.warmup + args.steps
    batch = args.batch_size

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, "
          f"input {INPUT_SHAPE}, batch {batch}, {args.steps} timed steps after {args.warmup}",
          flush=True)
    rng = np.random.default_rng(0)
    volumes, outcomes, sides = _cohort(batch * steps, rng)

    times = []
    for run in range(args.augment_runs + 1):
        start = time.perf_counter()
        augment_batch(volumes[:batch], np.random.default_rng(run))
        times.append(time.perf_counter() - start)
    augment_s = float(np.median(times[1:]))
    print(f"augmentation alone (gamma, rotation about z, noise; batch {batch}): "
          f"{batch / augment_s:.1f} images/s ({augment_s:.3f} s/batch, median of {args.augment_runs})",
          flush=True)

    pre_augmented = np.concatenate([
        augment_batch(volumes[i:i + batch], np.random.default_rng([0, 0, i // batch]))
        for i in range(0, volumes.shape[0], batch)])
    for name in args.variants:
        flops = 3 * model_flops(build_variant(name, INPUT_SHAPE))

        keras.utils.set_random_seed(0)
        trainable = compile_for_training(build_variant(name, INPUT_SHAPE, seed=0))
        timer = _StepTimer()
        trainable.fit(pre_augmented, outcomes[:, None], batch_size=batch, epochs=1, shuffle=False,
                      verbose=0, callbacks=[timer])
        reference_s = _step_seconds(timer, args.warmup)
        reference_rate = batch / reference_s
        print(f"train {name} reference (model.fit on pre-augmented in-memory arrays): "
              f"{reference_rate:.2f} images/s, {flops * reference_rate / 1e9:.1f} GFLOP/s "
              f"({reference_s:.2f} s/step)", flush=True)

        keras.utils.set_random_seed(0)
        trainable = compile_for_training(build_variant(name, INPUT_SHAPE, seed=0))
        batches = TrainingBatches(volumes, outcomes, sides, batch_size=batch, seed=0,
                                  workers=args.workers)
        timer = _StepTimer()
        trainable.fit(batches, epochs=1, steps_per_epoch=min(steps, len(batches)), shuffle=False,
                      verbose=0, callbacks=[timer])
        ours_s = _step_seconds(timer, args.warmup)
        ours_rate = batch / ours_s
        print(f"train {name} TrainingBatches (oversampling + on-the-fly augmentation, "
              f"{args.workers} worker thread(s)): "
              f"{ours_rate:.2f} images/s, {flops * ours_rate / 1e9:.1f} GFLOP/s "
              f"({ours_s:.2f} s/step); ratio {ours_rate / reference_rate:.2f}x the reference",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
