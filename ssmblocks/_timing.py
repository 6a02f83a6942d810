"""Timing for the demo and the benchmark scripts (never for tests): wall time, or the calling thread's CPU time."""

from __future__ import annotations

import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int, warmup: bool = True, cpu_time: bool = False) -> float:
    """Median time of ``repeats`` calls of ``fn`` in milliseconds, after one untimed call if ``warmup``: wall time,
    or with ``cpu_time`` the CPU time of the calling thread (``time.thread_time``: unaffected by other processes,
    but blind to work on other threads, so measure with ``torch.set_num_threads(1)``)."""
    clock = time.thread_time if cpu_time else time.perf_counter
    if warmup:
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = clock()
        fn()
        times.append(clock() - start)
    return sorted(times)[len(times) // 2] * 1e3
