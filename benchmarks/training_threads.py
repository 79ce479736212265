"""Benchmark of training jobs side by side: N one-thread processes against one N-thread process.

For each variant, ``model.fit`` of the compiled ``probability`` output (batch 16, Adam,
float32, TensorFlow's oneDNN kernels) on random volumes of the real 96 x 96 x 24 input,
after a warm-up epoch, in fresh processes:

- the plain reference: one process whose TensorFlow uses ``--threads`` threads;
- ``--threads`` processes at once, each with one thread (how the group level runs its
  jobs on TensorFlow by default, ``--omp-nthreads`` 1);

and prints one line per variant with both images/s (summed over the processes) and
their ratio.

Usage::

    python benchmarks/training_threads.py --threads 2 --variants f8-g1.5 f16-g2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def images_per_second(variant: str, threads: int, n_images: int, epochs: int) -> float:
    """``model.fit`` images/s of ``variant`` with TensorFlow on ``threads`` threads (this process)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from bids_stroke.model.spec import INPUT_SHAPE
    from bids_stroke.model.variants import build_variant

    rng = np.random.default_rng(0)
    x = rng.random((n_images, *INPUT_SHAPE), dtype=np.float32)
    y = (rng.random(n_images) < 0.5).astype("float32")
    model = build_variant(variant, INPUT_SHAPE, seed=0)
    trainable = keras.Model(model.input, model.output["probability"])
    trainable.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    trainable.fit(x[:32], y[:32], batch_size=16, epochs=1, verbose=0)  # warm-up: graph tracing
    start = time.perf_counter()
    trainable.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return epochs * n_images / (time.perf_counter() - start)


def _start(variant: str, threads: int, args) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, __file__, "--one", variant, "--threads", str(threads),
                             "--images", str(args.images), "--epochs", str(args.epochs)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _rate(process: subprocess.Popen) -> float:
    out, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"a measurement failed (exit code {process.returncode})")
    return float(json.loads(out.strip().splitlines()[-1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of the reference, and processes side by side (default: every CPU)")
    parser.add_argument("--variants", nargs="+", default=["f8-g1.5", "f16-g2"])
    parser.add_argument("--images", type=int, default=192, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs")
    parser.add_argument("--one", metavar="VARIANT", help=argparse.SUPPRESS)  # a single measurement
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(images_per_second(args.one, args.threads, args.images, args.epochs)))
        return 0
    for variant in args.variants:
        reference = _rate(_start(variant, args.threads, args))
        side_by_side = sum(_rate(p) for p in [_start(variant, 1, args) for _ in range(args.threads)])
        print(f"train {variant}: 1 process x {args.threads} threads {reference:.1f} images/s; {args.threads} "
              f"processes x 1 thread {side_by_side:.1f} images/s together; ratio {side_by_side / reference:.2f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
