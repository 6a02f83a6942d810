"""Peak resident memory of a piece of work (Linux): reset VmHWM through /proc/self/clear_refs, read it after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def status_kb(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def peak_extra_mb(fn: Callable[[], object]) -> float:
    """Runs ``fn`` once; returns the process's peak resident memory during it minus the memory before, in MB.

    Call it in a fresh process (or on a first call): memory freed earlier stays resident and hides allocations.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kb("VmRSS")
    fn()
    return (status_kb("VmHWM") - before) / 1024
