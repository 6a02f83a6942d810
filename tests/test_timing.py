"""The timing helper of the demo and the benchmarks: which clock it reads (no speed is asserted)."""

from __future__ import annotations

import time

from ssmblocks._timing import median_ms


def test_cpu_time_leaves_out_waiting_and_wall_time_counts_it():
    calls = []

    def nap():
        calls.append(None)
        time.sleep(0.05)

    assert median_ms(nap, 3, cpu_time=True) < 25   # sleeping takes no CPU time of the thread
    assert median_ms(nap, 1, warmup=False) >= 50
    assert len(calls) == 4 + 1                     # warm-up + 3, then 1 without warm-up
