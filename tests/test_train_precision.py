"""Choice of the training precision, and the mixed-precision build of the variants."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bids_stroke.cli import build_parser  # noqa: E402
from bids_stroke.errors import UsageError  # noqa: E402
from bids_stroke.model.variants import BFLOAT16_FROM_LEVEL, build_variant  # noqa: E402
from bids_stroke.train.precision import cpu_flags, resolve_precision  # noqa: E402


@pytest.mark.parametrize(("flags", "gpus", "expected"), [
    ({"avx2", "avx512f"}, [], "float32"),
    ({"avx512f", "avx512_bf16"}, [], "float32"),  # AVX-512 BF16 without AMX: not trusted
    ({"amx_bf16", "amx_tile"}, [], "bfloat16"),
    (set(), [(9, 0)], "bfloat16"),
    ({"amx_bf16"}, [(7, 5)], "float32"),  # the GPU trains, and it lacks bfloat16
])
def test_auto_picks_bfloat16_only_on_native_hardware(flags, gpus, expected):
    precision, reason = resolve_precision("auto", flags=flags, gpus=gpus)
    assert precision == expected and reason.startswith("auto:")


def test_explicit_precision_is_kept_and_bad_values_refused():
    assert resolve_precision("float32", flags={"amx_bf16"}, gpus=[])[0] == "float32"
    assert resolve_precision("bfloat16", flags={"amx_bf16"}, gpus=[])[0] == "bfloat16"
    assert resolve_precision("bfloat16", flags=set(), gpus=[(8, 0)])[0] == "bfloat16"
    with pytest.raises(UsageError, match="bfloat16' needs hardware"):
        resolve_precision("bfloat16", flags={"avx512_bf16"}, gpus=[])
    with pytest.raises(ValueError, match="'requested'"):
        resolve_precision("float16")


def test_cpu_flags_parses_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_cli_option_defaults_to_auto_and_refuses_other_values(tmp_path, capsys):
    parser = build_parser()
    args = [str(tmp_path), str(tmp_path / "out"), "group"]
    assert parser.parse_args(args).train_precision == "auto"
    assert parser.parse_args([*args, "--train-precision", "float32"]).train_precision == "float32"
    with pytest.raises(SystemExit):
        parser.parse_args([*args, "--train-precision", "float16"])
    assert "train-precision" in capsys.readouterr().err


def test_bfloat16_build_computes_levels_2_to_5_in_bfloat16_with_float32_weights():
    low = build_variant("f8-g1.5-bn", (32, 32, 8, 1), seed=3, precision="bfloat16")
    full = build_variant("f8-g1.5-bn", (32, 32, 8, 1), seed=3)
    for layer in low.layers:
        level = int(layer.name[5]) if layer.name.startswith("level") else None
        expected = "bfloat16" if level is not None and level >= BFLOAT16_FROM_LEVEL else "float32"
        if layer.name != "dwi":
            assert layer.compute_dtype == expected, layer.name
    assert [(w.path, w.shape, w.dtype) for w in low.weights] == \
           [(w.path, w.shape, w.dtype) for w in full.weights]
    assert all(np.array_equal(a, b) for a, b in zip(low.get_weights(), full.get_weights()))
    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 32, 32, 8, 1)).astype(np.float32)
    out_low, out_full = low(x, training=False), full(x, training=False)
    for key in out_full:
        assert keras.backend.standardize_dtype(out_low[key].dtype) == "float32"
        np.testing.assert_allclose(np.asarray(out_low[key]), np.asarray(out_full[key]), rtol=0.1, atol=0.02)
    with pytest.raises(ValueError, match="'precision'"):
        build_variant("f8-g1.5", (32, 32, 8, 1), precision="float16")
