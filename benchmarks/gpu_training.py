"""Training throughput of every variant on the machine's accelerator, Keras on JAX (the gpu extra).

For each variant and precision: ``model.fit`` of the compiled ``probability`` output at
the real 96 x 96 x 24 input on in-memory arrays (batch 16, Adam, binary cross-entropy),
images/s after a warm-up epoch (compilation); the plain reference is float32. Then the
projected wall time of the paper's protocol on this machine: every left-out site as a fold
plus the final ensemble, eight variants, each job at ``--stop-epoch`` epochs (early
stopping) and at the 150-epoch bound, one job at a time, from the measured images/s of the
precision ``--train-precision auto`` picks here. The training loop's augmentation threads
are not part of this measurement (``benchmarks/training.py`` measures them on the CPU).

It imports only the model code, so it runs where Keras and JAX are the only extras::

    KERAS_BACKEND=jax python benchmarks/gpu_training.py --n-subjects 300 --n-sites 8
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bids_stroke.config import PAPER_MAX_EPOCHS, VARIANT_NAMES  # noqa: E402
from bids_stroke.model.spec import INPUT_SHAPE  # noqa: E402
from bids_stroke.model.variants import build_variant, model_flops  # noqa: E402

def _images_per_second(name: str, precision: str, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    keras.utils.set_random_seed(0)
    model = build_variant(name, INPUT_SHAPE, seed=0, precision=precision)
    trainable = keras.Model(model.input, model.output["probability"])
    trainable.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.BinaryCrossentropy())
    trainable.fit(x, y, batch_size=16, epochs=1, verbose=0)  # compilation
    start = time.perf_counter()
    trainable.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return epochs * len(x) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="in-memory training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per measurement")
    parser.add_argument("--variants", nargs="+", default=list(VARIANT_NAMES))
    parser.add_argument("--n-subjects", type=int, default=300, help="cohort size of the projection")
    parser.add_argument("--n-sites", type=int, default=8, help="sites of the projection")
    parser.add_argument("--stop-epoch", type=int, default=50, help="epochs per job with early stopping")
    args = parser.parse_args(argv)

    import jax

    # as bids_stroke.train.precision decides (that package needs the whole install)
    capabilities = [str(getattr(d, "compute_capability", "")) for d in jax.devices() if d.platform == "gpu"]
    auto = "bfloat16" if any(int(c.partition(".")[0] or 0) >= 8 for c in capabilities) else "float32"
    devices = ", ".join(str(d) for d in jax.devices())
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, devices {devices}, "
          f"compute capabilities {capabilities}; auto precision: {auto}", flush=True)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.3, (args.images, *INPUT_SHAPE, 1)).astype("float32")
    y = rng.integers(0, 2, (args.images, 1)).astype("float32")
    rates: dict[str, float] = {}
    for name in args.variants:
        flops = 3 * model_flops(build_variant(name, INPUT_SHAPE))
        reference = _images_per_second(name, "float32", x, y, args.epochs)
        line = f"train {name}: float32 {reference:.0f} images/s ({flops * reference / 1e12:.2f} TFLOP/s)"
        rates[name] = reference
        if auto == "bfloat16":
            ours = _images_per_second(name, "bfloat16", x, y, args.epochs)
            rates[name] = ours
            line += f", bfloat16 {ours:.0f} images/s ({flops * ours / 1e12:.2f} TFLOP/s); ratio {ours / reference:.2f}x"
        print(line, flush=True)
    folds = args.n_sites + 1
    train_images = args.n_subjects * (args.n_sites - 1) / args.n_sites
    for label, epochs in (("early stopping at", args.stop_epoch), ("the bound of", PAPER_MAX_EPOCHS)):
        seconds = sum(folds * epochs * train_images / rates[name] for name in args.variants)
        print(f"projected training time of the protocol ({folds} folds x {len(args.variants)} variants, "
              f"{args.n_subjects} subjects, {label} {epochs} epochs, {auto}, one job at a time, "
              f"training passes only): {seconds / 3600:.2f} h", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
