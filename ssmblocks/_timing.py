"""Wall-clock timing for the demo and the benchmark scripts (never for tests)."""

from __future__ import annotations

import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` in milliseconds, after one untimed call if ``warmup``."""
    if warmup:
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3
