"""What the benchmark scripts share: timing a call."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, runs: int, warmup: int = 1) -> float:
    """Median wall seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
