"""Which compute precision training uses: ``--train-precision auto|float32|bfloat16``.

bfloat16 (levels 2–5 of the network, see :mod:`bids_stroke.model.variants`) is used
only where the hardware computes it natively and training was seen to learn:

* CPUs with AMX (``amx_bf16``, Intel Sapphire Rapids and newer), as Linux lists them in
  ``/proc/cpuinfo``. CPUs with AVX-512 BF16 but no AMX are not enough: on an AMD EPYC
  (Zen 4, ``avx512_bf16``) with TensorFlow 2.21's oneDNN kernels, bfloat16 training of
  f8-g1.5 collapsed to a constant output (loss exactly ln 2 from the third epoch) on a
  task that float32 learns. Without native support TensorFlow emulates bfloat16 and is
  slower than float32 anyway;
* NVIDIA GPUs of compute capability 8.0 or newer (Ampere, Hopper).

``auto`` picks bfloat16 when the machine that resolves it (the one running the group
level, which submits the jobs) has such hardware, float32 otherwise; an explicit
``bfloat16`` on other hardware is refused. The resolved value is part of every training
job's identity and is recorded in its done-marker and in the bundle's manifest.
"""

from __future__ import annotations

from pathlib import Path

from bids_stroke.config import TRAIN_PRECISIONS
from bids_stroke.errors import UsageError

__all__ = ["TRAIN_PRECISIONS", "cpu_flags", "gpu_compute_capabilities", "resolve_precision"]

#: CPU flags of native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("amx_bf16",)


def cpu_flags(cpuinfo="/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``cpuinfo`` (empty if unreadable)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the GPUs the Keras backend sees (empty on CPU-only machines)."""
    import keras

    found: list[tuple[int, int]] = []
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            capability = tf.config.experimental.get_device_details(device).get("compute_capability")
            if capability:
                found.append((int(capability[0]), int(capability[1])))
    elif backend == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                major, _, minor = str(getattr(device, "compute_capability", "0.0")).partition(".")
                found.append((int(major or 0), int(minor or 0)))
    return found


def resolve_precision(requested: str = "auto", *, flags=None, gpus=None) -> tuple[str, str]:
    """The training precision to use, and why.

    Parameters
    ----------
    requested : {"auto", "float32", "bfloat16"}, default="auto"
    flags : collection of str, default=None
        CPU flags; None reads :func:`cpu_flags`.
    gpus : list of (int, int), default=None
        GPU compute capabilities; None asks :func:`gpu_compute_capabilities`.

    Returns
    -------
    precision : {"float32", "bfloat16"}
    reason : str
        One line for the log.

    Raises
    ------
    UsageError
        ``bfloat16`` requested on hardware that does not compute it natively.

    Examples
    --------
    >>> resolve_precision("auto", flags={"avx2"}, gpus=[])
    ('float32', 'auto: no native bfloat16 (no GPU of compute capability >= 8.0, CPU without amx_bf16)')
    >>> resolve_precision("auto", flags={"avx2", "amx_bf16"}, gpus=[])[0]
    'bfloat16'
    """
    if requested not in TRAIN_PRECISIONS:
        raise ValueError(f"'requested' must be one of {', '.join(TRAIN_PRECISIONS)}. "
                         f"Got {requested!r} instead.")
    if requested == "float32":
        return requested, f"{requested} (requested)"
    precision, reason = _native_precision(flags, gpus)
    if requested == "auto":
        return precision, f"auto: {reason}"
    if precision != "bfloat16":
        raise UsageError(f"'--train-precision bfloat16' needs hardware that computes bfloat16 "
                         f"natively: {reason}. Use --train-precision float32 or auto.")
    return requested, f"{requested} (requested; {reason})"


def _native_precision(flags, gpus) -> tuple[str, str]:
    gpus = gpu_compute_capabilities() if gpus is None else list(gpus)
    if gpus:
        if all(capability >= (8, 0) for capability in gpus):
            return "bfloat16", f"GPU of compute capability {gpus[0][0]}.{gpus[0][1]} computes bfloat16 natively"
        return "float32", f"GPU of compute capability {gpus[0][0]}.{gpus[0][1]} (< 8.0) lacks native bfloat16"
    flags = cpu_flags() if flags is None else set(flags)
    native = [flag for flag in BFLOAT16_CPU_FLAGS if flag in flags]
    if native:
        return "bfloat16", f"CPU computes bfloat16 natively ({', '.join(native)})"
    return "float32", "no native bfloat16 (no GPU of compute capability >= 8.0, CPU without amx_bf16)"
