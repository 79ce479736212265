"""Benchmark of training throughput per variant at the real 96 × 96 × 24 input.

Prints one line per measurement:

* the machine's attainable arithmetic peak: a 4096² matrix product in float32 and in
  bfloat16 through TensorFlow (oneDNN), GFLOP/s;
* the augmentation alone (:func:`bids_stroke.train.augment.augment_batch`, batch 16):
  images/s on one thread;
* for each variant, the plain reference: ``model.fit`` of the compiled ``probability``
  output on arrays augmented beforehand and held in memory (batch 16, float32, TensorFlow's
  default oneDNN kernels), images/s and the achieved GFLOP/s (a training step taken as
  3 × the forward FLOPs of :func:`bids_stroke.model.variants.model_flops`) and its share
  of the float32 peak;
* for each variant and each precision of ``--precisions``, the training loop's own path
  (:class:`bids_stroke.train.batches.TrainingBatches`: oversampling, shuffling and
  on-the-fly augmentation of every batch by ``--workers`` threads while the model trains,
  fed to ``fit`` of the model built in that precision), images/s, GFLOP/s and the ratio to
  the reference measured just before on the same machine;
* the sum over the variants (one training step of each, i.e. what a fold costs per
  batch), reference vs ours;
* with ``--eigen-reference``, the same reference with oneDNN switched off
  (``TF_ENABLE_ONEDNN_OPTS=0``, TensorFlow's portable Eigen kernels, in a subprocess), the
  kind of plain TensorFlow-CPU set-up that trains these variants at a few images/s.

Throughput is the median over ``--steps`` timed steps (the interval between consecutive
batch ends) after ``--warmup`` steps (graph tracing and compilation).

Usage::

    python benchmarks/training.py --steps 3 --variants f8-g1.5 f16-g2 --eigen-reference
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bids_stroke.config import VARIANT_NAMES  # noqa: E402
from bids_stroke.model.spec import INPUT_SHAPE  # noqa: E402
from bids_stroke.model.variants import PRECISIONS, build_variant, model_flops  # noqa: E402
from bids_stroke.train.augment import augment_batch  # noqa: E402
from bids_stroke.train.batches import TrainingBatches  # noqa: E402
from bids_stroke.train.loop import compile_for_training  # noqa: E402
from bids_stroke.train.precision import resolve_precision  # noqa: E402
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


def _matmul_peak(dtype: str, size: int = 4096, runs: int = 5) -> float:
    """GFLOP/s of a size² matrix product in ``dtype`` (TensorFlow, all threads)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
    b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    start = time.perf_counter()
    for _ in range(runs):
        out = product(a, b)
    out.numpy()
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def _reference_seconds(name: str, data: np.ndarray, outcomes: np.ndarray, batch: int, warmup: int) -> float:
    """s/step of plain ``model.fit`` (float32) of ``name`` on in-memory ``data``."""
    keras.utils.set_random_seed(0)
    trainable = compile_for_training(build_variant(name, INPUT_SHAPE, seed=0))
    timer = _StepTimer()
    trainable.fit(data, outcomes[:, None], batch_size=batch, epochs=1, shuffle=False, verbose=0,
                  callbacks=[timer])
    return _step_seconds(timer, warmup)


def _inputs(args):
    rng = np.random.default_rng(0)
    volumes, outcomes, sides = _cohort(args.batch_size * (args.warmup + args.steps), rng)
    pre_augmented = np.concatenate([
        augment_batch(volumes[i:i + args.batch_size], np.random.default_rng([0, 0, i // args.batch_size]))
        for i in range(0, volumes.shape[0], args.batch_size)])
    return volumes, outcomes, sides, pre_augmented


def _eigen_reference(args) -> dict:
    """The reference's s/step per variant with oneDNN off, measured in a subprocess."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    command = [sys.executable, __file__, "--reference-only", "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
               "--variants", *args.variants]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (compilation)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--augment-runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2,
                        help="threads building batches (train_variant's default)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--precisions", nargs="+", choices=("auto", *PRECISIONS),
                        default=["float32", "auto"],
                        help="precisions of the training loop to measure (auto: as the group "
                        "level resolves --train-precision auto on this machine)")
    parser.add_argument("--eigen-reference", action="store_true",
                        help="also measure the reference with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)")
    parser.add_argument("--reference-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batch = args.batch_size

    if args.reference_only:  # subprocess of --eigen-reference: JSON of s/step per variant
        _, outcomes, _, pre_augmented = _inputs(args)
        print(json.dumps({name: _reference_seconds(name, pre_augmented, outcomes, batch, args.warmup)
                          for name in args.variants}))
        return 0

    auto, auto_reason = resolve_precision()
    precisions = list(dict.fromkeys(auto if p == "auto" else p for p in args.precisions))
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, "
          f"input {INPUT_SHAPE}, batch {batch}, {args.steps} timed steps after {args.warmup}; "
          f"auto precision here: {auto_reason}", flush=True)
    peaks = {dtype: _matmul_peak(dtype) for dtype in PRECISIONS}
    print(f"arithmetic peak (4096x4096 matmul): float32 {peaks['float32']:.0f} GFLOP/s, "
          f"bfloat16 {peaks['bfloat16']:.0f} GFLOP/s; ratio {peaks['bfloat16'] / peaks['float32']:.2f}x",
          flush=True)
    volumes, outcomes, sides, pre_augmented = _inputs(args)

    times = []
    for run in range(args.augment_runs + 1):
        start = time.perf_counter()
        augment_batch(volumes[:batch], np.random.default_rng(run))
        times.append(time.perf_counter() - start)
    augment_s = float(np.median(times[1:]))
    print(f"augmentation alone (gamma, rotation about z, noise; batch {batch}): "
          f"{batch / augment_s:.1f} images/s ({augment_s:.3f} s/batch, median of {args.augment_runs})",
          flush=True)

    steps = args.warmup + args.steps
    totals = {"reference": 0.0, **{p: 0.0 for p in precisions}}
    for name in args.variants:
        flops = 3 * model_flops(build_variant(name, INPUT_SHAPE))
        reference_s = _reference_seconds(name, pre_augmented, outcomes, batch, args.warmup)
        totals["reference"] += reference_s
        reference_rate = batch / reference_s
        print(f"train {name} reference (model.fit, float32, on pre-augmented in-memory arrays): "
              f"{reference_rate:.2f} images/s, {flops * reference_rate / 1e9:.1f} GFLOP/s "
              f"({100 * flops * reference_rate / 1e9 / peaks['float32']:.0f} % of the float32 peak; "
              f"{reference_s:.3f} s/step)", flush=True)
        for precision in precisions:
            keras.utils.set_random_seed(0)
            trainable = compile_for_training(build_variant(name, INPUT_SHAPE, seed=0, precision=precision))
            batches = TrainingBatches(volumes, outcomes, sides, batch_size=batch, seed=0,
                                      workers=args.workers)
            timer = _StepTimer()
            trainable.fit(batches, epochs=1, steps_per_epoch=min(steps, len(batches)), shuffle=False,
                          verbose=0, callbacks=[timer])
            ours_s = _step_seconds(timer, args.warmup)
            totals[precision] += ours_s
            ours_rate = batch / ours_s
            print(f"train {name} ours ({precision}; oversampling + on-the-fly augmentation, "
                  f"{args.workers} worker thread(s)): {ours_rate:.2f} images/s, "
                  f"{flops * ours_rate / 1e9:.1f} GFLOP/s ({ours_s:.3f} s/step); "
                  f"ratio {ours_rate / reference_rate:.2f}x the reference", flush=True)
    references = {"reference": totals["reference"]}
    if args.eigen_reference:
        eigen = _eigen_reference(args)
        for name in args.variants:
            print(f"train {name} reference with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0, Eigen kernels): "
                  f"{batch / eigen[name]:.2f} images/s ({eigen[name]:.3f} s/step)", flush=True)
        references["reference with oneDNN off"] = sum(eigen.values())
    for label, reference_total in references.items():
        for precision in precisions:
            print(f"all {len(args.variants)} variants, one step each: ours ({precision}) "
                  f"{totals[precision]:.3f} s vs {label} {reference_total:.3f} s; "
                  f"ratio {reference_total / totals[precision]:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
