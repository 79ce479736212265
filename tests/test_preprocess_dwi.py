"""b0/trace extraction, ADC and voxel-value checks (bids_stroke.preprocess.dwi)."""

import numpy as np
import pytest

from bids_stroke.errors import BadInputError, ExitCode
from bids_stroke.preprocess.dwi import (
    ADC_MAX,
    b0_and_trace,
    check_not_empty,
    compute_adc,
    sanitize,
    split_shells,
)


@pytest.fixture
def rng():
    return np.random.default_rng(20220501)


def test_split_shells_multishell_picks_highest():
    bvals = [0, 1000, 1400, 2000, 5, 1000, 1995, 1400, 2005, 0]
    b0, high, high_b = split_shells(bvals)
    assert b0.tolist() == [0, 4, 9]
    assert high.tolist() == [3, 6, 8]
    assert high_b == pytest.approx(2000.0)


def test_split_shells_tolerance_and_threshold():
    bvals = [0, 60, 1850, 2000, 1400]
    b0, high, high_b = split_shells(bvals)
    assert b0.tolist() == [0]  # 60 > 50: not a b = 0 volume
    assert high.tolist() == [2, 3]  # 1850 within 10 % of 2000, 1400 not
    assert high_b == pytest.approx(1925.0)
    b0, high, _ = split_shells(bvals, b0_threshold=100, shell_tolerance=0.01)
    assert b0.tolist() == [0, 1]
    assert high.tolist() == [3]


def test_split_shells_without_b0():
    b0, high, high_b = split_shells([1000, 1000, 1000])
    assert b0.size == 0 and b0.dtype.kind == "i"
    assert high.tolist() == [0, 1, 2]
    assert high_b == 1000.0


@pytest.mark.parametrize(
    ("bvals", "match"),
    [
        ([0, 0, 20], r"'bvals' must contain a diffusion-weighted volume.*Got only"),
        ([0, -1000, 1000], r"'bvals' must be finite and non-negative"),
        ([0, np.nan, 1000], r"'bvals' must be finite and non-negative"),
        ([0, np.inf, 1000], r"'bvals' must be finite and non-negative"),
        ([[0, 1000], [0, 1000]], r"'bvals' must be a non-empty list.*shape \(2, 2\)"),
        ([], r"'bvals' must be a non-empty list"),
    ],
)
def test_split_shells_errors(bvals, match):
    with pytest.raises(BadInputError, match=match) as info:
        split_shells(bvals)
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_b0_and_trace_known_values():
    data = np.zeros((2, 1, 1, 5))
    data[0, 0, 0] = [10, 1, 4, 20, 16]
    data[1, 0, 0] = [3, 2, 2, 5, 2]
    b0, trace, high_b = b0_and_trace(data, [0, 1000, 1000, 0, 1000])
    np.testing.assert_allclose(b0[:, 0, 0], [15.0, 4.0])
    # geometric, not arithmetic, mean: (1 * 4 * 16) ** (1/3) = 4 (arithmetic: 7)
    np.testing.assert_allclose(trace[:, 0, 0], [4.0, 2.0], rtol=1e-12)
    assert high_b == 1000.0
    assert trace.shape == b0.shape == (2, 1, 1)


def test_b0_and_trace_uses_only_the_highest_shell():
    data = np.ones((1, 1, 1, 4))
    data[..., 1] = 100.0  # b = 1000 volume, ignored
    data[..., 2:] = [[[[2.0, 8.0]]]]
    b0, trace, high_b = b0_and_trace(data, [0, 1000, 2000, 2000])
    assert trace.item() == pytest.approx(4.0)
    assert high_b == 2000.0


def test_b0_and_trace_non_positive_values():
    data = np.array([[[[5.0, 0.0, 4.0, 16.0]], [[0.0, 0.0, -1.0, 0.0]]]])
    b0, trace, _ = b0_and_trace(data, [0, 1000, 1000, 1000], eps=1e-6)
    expected = np.exp((np.log(1e-6) + np.log(4.0) + np.log(16.0)) / 3)
    assert trace[0, 0, 0] == pytest.approx(expected)
    assert np.all(np.isfinite(trace))
    assert trace[0, 1, 0] == 0.0  # every direction <= 0: background


def test_b0_and_trace_without_b0_and_input_unchanged(rng):
    data = rng.uniform(1, 2, (3, 3, 2, 3))
    copy = data.copy()
    b0, trace, _ = b0_and_trace(data, [1000, 1000, 1000])
    assert b0 is None
    np.testing.assert_allclose(trace, np.exp(np.log(data).mean(axis=3)))
    np.testing.assert_array_equal(data, copy)


def test_b0_and_trace_count_mismatch():
    with pytest.raises(BadInputError, match=r"32 volumes\). Got 31 b-values instead"):
        b0_and_trace(np.ones((2, 2, 2, 32)), np.r_[0, np.full(30, 1000)])


def test_b0_and_trace_needs_4d():
    with pytest.raises(BadInputError, match=r"'data' must be a 4D.*\(4, 4, 4\)"):
        b0_and_trace(np.ones((4, 4, 4)), [0, 1000])


def test_adc_recovers_diffusivity(rng):
    shape = (6, 5, 4)
    s0 = rng.uniform(500, 1500, shape)
    diff = rng.uniform(0.2e-3, 3e-3, (*shape, 3))  # one diffusivity per direction
    bvals = np.array([0, 0, 1000, 1000, 1000])
    data = np.concatenate(
        [s0[..., None], s0[..., None], s0[..., None] * np.exp(-1000 * diff)], axis=3
    )
    b0, trace, high_b = b0_and_trace(data, bvals)
    adc = compute_adc(b0, trace, high_b)
    # the trace's ADC is the mean diffusivity over directions
    np.testing.assert_allclose(adc, diff.mean(axis=3), rtol=1e-10)


def test_adc_zero_where_invalid_and_clipped():
    b0 = np.array([[[100.0, 0.0, 100.0, 100.0, 100.0, 100.0]]])
    trace = np.array([[[50.0, 50.0, -1.0, 200.0, 1e-9, np.nan]]])
    adc = compute_adc(b0, trace, 1000)
    assert adc[0, 0, 0] == pytest.approx(np.log(2) / 1000)
    assert adc[0, 0, 1] == 0.0  # b0 <= 0
    assert adc[0, 0, 2] == 0.0  # trace <= 0
    assert adc[0, 0, 3] == 0.0  # negative ADC clipped
    assert adc[0, 0, 4] == ADC_MAX == 5e-3
    assert adc[0, 0, 5] == 0.0
    mask = np.array([[[0, 1, 1, 1, 1, 1]]])
    assert compute_adc(b0, trace, 1000, mask=mask)[0, 0, 0] == 0.0


@pytest.mark.parametrize("b_value", [0, -1000, np.nan, "x"])
def test_adc_bad_b_value(b_value):
    with pytest.raises(BadInputError, match="'b_value' must be a positive number"):
        compute_adc(np.ones((2, 2, 2)), np.ones((2, 2, 2)), b_value)


def test_adc_shape_mismatch():
    with pytest.raises(BadInputError, match=r"'trace' must have the shape"):
        compute_adc(np.ones((2, 2, 2)), np.ones((2, 2, 3)), 1000)


def test_sanitize_counts_and_copies():
    data = np.array([1.0, np.nan, np.inf, -np.inf, 2.0], dtype=np.float32)
    copy = data.copy()
    clean, n_bad = sanitize(data)
    assert n_bad == 3
    np.testing.assert_array_equal(clean, [1, 0, 0, 0, 2])
    assert clean.dtype == np.float32
    np.testing.assert_array_equal(data, copy)  # NaNs still there
    clean, n_bad = sanitize(np.arange(4, dtype=np.int16))
    assert n_bad == 0 and clean.dtype == np.float64


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((4, 4, 4)), r"constant image \(every voxel is 0\)"),
        (np.full((4, 4, 4), 7.0), r"every voxel is 7"),
        (np.full((2, 2, 2), np.nan), r"must contain finite voxel values"),
        (np.zeros((0, 4, 4)), r"must contain finite voxel values"),
    ],
)
def test_check_not_empty_raises(data, match):
    with pytest.raises(BadInputError, match=match):
        check_not_empty(data)


def test_check_not_empty_accepts_varying_image():
    data = np.zeros((4, 4, 4))
    data[1, 2, 3] = 1.0
    data[0, 0, 0] = np.nan
    check_not_empty(data)
    with pytest.raises(BadInputError, match="'b0' must vary"):
        check_not_empty(np.ones(3), name="b0")
