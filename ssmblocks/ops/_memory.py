"""Keep freed memory for reuse: the process-wide glibc malloc setting that stops the CPU path page-faulting.

By default glibc serves every allocation above a (dynamic, at most 32 MiB) threshold with a fresh ``mmap`` and
returns it to the kernel on ``free``. A model forward allocates and frees the same large activations on every
call, so every call pays the kernel to map and zero them again (~0.35 ms per MB): a third or more of the time of a
large-image forward is then ``sys`` time (``docs/benchmarks.md``). ``keep_freed_memory`` sets, through ``mallopt``:

* ``M_MMAP_MAX = 0``: large blocks come from the heap too, so a freed block is reused by the next allocation of
  its size instead of being unmapped (glibc still falls back to ``mmap`` when the heap cannot grow);
* ``M_TRIM_THRESHOLD = limit``: when more than ``limit`` bytes are free at the top of the heap, ``free`` returns
  them to the kernel.

What stays resident: the heap grows to hold the largest working set (measured: up to about twice it, because
aligned blocks fragment) and then stops growing; later calls reuse it and fault no pages. Freed space at the heap
top beyond ``limit`` goes back to the kernel; free blocks between live ones stay until reused, as with any
allocator. ``tests/test_memory.py`` checks both: no page faults after a warm-up, a heap that stops growing.

The library applies it once, when the native CPU kernel loads (the first model run on CPU), with a 1024 MiB
bound. ``SSMBLOCKS_KEEP_FREED_MB`` changes the bound (in MiB); ``0`` leaves malloc untouched. It only exists on
Linux with glibc; elsewhere nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

DEFAULT_LIMIT_MB = 1024
ENV_VAR = "SSMBLOCKS_KEEP_FREED_MB"
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_MAX_INT = 2**31 - 1  # mallopt takes an int


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory(limit_mb: int = DEFAULT_LIMIT_MB) -> bool:
    """Lets glibc malloc keep up to ``limit_mb`` MiB of freed memory for reuse (see the module docstring).

    Process-wide and idempotent. Returns True when applied, False where there is no glibc or ``limit_mb`` <= 0.
    """
    libc = _libc()
    if libc is None or limit_mb <= 0:
        return False
    limit = min(int(limit_mb) * 2**20, _MAX_INT)
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, limit)) and bool(libc.mallopt(_M_MMAP_MAX, 0))


@functools.cache
def apply_default() -> bool:
    """Applies ``keep_freed_memory`` once per process with the bound from ``$SSMBLOCKS_KEEP_FREED_MB`` (default
    1024; ``0`` opts out). Returns whether it was applied."""
    value = os.environ.get(ENV_VAR, "").strip()
    try:
        limit_mb = int(value) if value else DEFAULT_LIMIT_MB
    except ValueError as err:
        raise ValueError(f"{ENV_VAR} must be a whole number of MiB (0 to opt out), got {value!r}") from err
    return keep_freed_memory(limit_mb)
