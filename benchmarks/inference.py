"""Benchmark of the ensemble: per-patient inference latency and training throughput.

Prints one line per measurement, each with a ratio against a reference measured in the
same run:

* the fused ensemble (all variants and their attention maps in one compiled call,
  :class:`bids_stroke.model.ensemble.FusedEnsemble`), median seconds per patient over
  ``--runs`` calls after warm-up, against a plain Python loop of ``model.predict`` over
  the same variants, with the achieved GFLOP/s (FLOPs from
  :func:`bids_stroke.model.variants.model_flops`);
* each variant's training throughput (images/s, ``train_on_batch`` with Adam and binary
  cross-entropy at batch 16), with its GFLOP/s (a training step taken as 3 × the forward
  FLOPs) as a ratio of the fused inference's GFLOP/s.

Usage::

    python benchmarks/inference.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from _timing import median_seconds  # noqa: E402

from bids_stroke.config import VARIANT_NAMES  # noqa: E402
from bids_stroke.model.ensemble import FusedEnsemble  # noqa: E402
from bids_stroke.model.spec import INPUT_SHAPE  # noqa: E402
from bids_stroke.model.variants import build_variant, model_flops  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (>= 20)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reference-runs", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps per variant")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)

    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, "
          f"input {INPUT_SHAPE}", flush=True)
    models = [build_variant(name, INPUT_SHAPE, seed=i) for i, name in enumerate(args.variants)]
    flops = {model.name: model_flops(model) for model in models}
    total = sum(flops.values())
    for model in models:
        print(f"variant {model.name}: {model.count_params():,} parameters, "
              f"{flops[model.name] / 1e9:.3f} GFLOP/image ({flops[model.name] / total:.1%} of the ensemble)")
    print(f"ensemble: {total / 1e9:.3f} GFLOP/patient", flush=True)

    rng = np.random.default_rng(0)
    volume = rng.normal(size=INPUT_SHAPE[:3]).astype("float32")
    batch = volume[None, ..., None]

    ensemble = FusedEnsemble(models)
    fused = median_seconds(lambda: ensemble.predict(volume), args.runs, args.warmup)
    reference = median_seconds(lambda: [m.predict(batch, verbose=0) for m in models],
                                args.reference_runs, args.warmup)
    print(f"inference fused ensemble ({len(models)} variants + attention): {fused:.4f} s/patient "
          f"(median of {args.runs}), {total / fused / 1e9:.1f} GFLOP/s; reference loop of "
          f"model.predict: {reference:.4f} s/patient (median of {args.reference_runs}), "
          f"{total / reference / 1e9:.1f} GFLOP/s; ratio {reference / fused:.2f}x faster", flush=True)

    if args.skip_training:
        return 0
    x = rng.normal(size=(args.batch_size,) + INPUT_SHAPE).astype("float32")
    y = (np.arange(args.batch_size) % 2).astype("float32")[:, None]
    inference_rate = total / fused
    for model in models:
        trainable = keras.Model(model.input, model.output["probability"])
        trainable.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
        seconds = median_seconds(lambda: trainable.train_on_batch(x, y), args.train_steps, 2)
        rate = 3 * flops[model.name] * args.batch_size / seconds
        print(f"training {model.name} (batch {args.batch_size}): {args.batch_size / seconds:.1f} images/s, "
              f"{rate / 1e9:.1f} GFLOP/s; ratio {rate / inference_rate:.2f} of the fused inference's GFLOP/s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
