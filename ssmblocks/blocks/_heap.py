"""Keep freed memory in the heap during an inference forward, so that large tensors do not page-fault afresh.

A restoration model allocates many short-lived tensors of tens to hundreds of MB per block. glibc serves every
allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and returns it with ``munmap`` on free, so
every such tensor is page-faulted in again: on a 256x256 input mambair_light_x4 touches ~8.5 GB of fresh pages per
forward and spends about as long in the kernel as in its own arithmetic (docs/blocks.md). Inside ``heap_reuse()``
glibc takes every block from the heap (``M_MMAP_MAX`` 0) and keeps freed memory (a huge ``M_TRIM_THRESHOLD``), so a
forward reuses the pages of the blocks before it. On leaving, the settings go back to glibc's steady state for a
process that frees large blocks (mmap for blocks >= 32 MB, trim above 64 MB); the process keeps at most the peak
heap of the forward, as a caching allocator does.

Nothing happens on platforms other than glibc, when the user tunes malloc (``GLIBC_TUNABLES`` / ``MALLOC_*``
variables), or with ``SSMBLOCKS_HEAP_REUSE=0``. Re-entrant: only the outermost use changes settings.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["heap_reuse", "reuse_heap_in_inference"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_GLIBC_MMAP_MAX = 65536                      # glibc's default number of mmapped chunks
_GLIBC_MAX_MMAP_THRESHOLD = 32 << 20         # the most glibc's dynamic mmap threshold grows to on 64-bit systems
_lock = threading.Lock()
_depth = 0


def _glibc() -> ctypes.CDLL | None:
    if os.environ.get("SSMBLOCKS_HEAP_REUSE", "1") == "0":
        return None
    if "malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(k.startswith("MALLOC_") for k in os.environ):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]   # int mallopt(int param, int value)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()


@contextmanager
def heap_reuse() -> Iterator[None]:
    """Inside: freed memory stays in the heap for the next allocations (see the module docstring)."""
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _LIBC.mallopt(_M_MMAP_MAX, 0)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _GLIBC_MAX_MMAP_THRESHOLD)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, 2 * _GLIBC_MAX_MMAP_THRESHOLD)


def reuse_heap_in_inference(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Decorates a model's ``forward``: without gradients (eval inference) it runs inside ``heap_reuse()``. Under
    torch.compile / torch.export the forward is traced as it is (the allocator is not part of a graph)."""

    @functools.wraps(forward)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        if _LIBC is None or torch.compiler.is_compiling() or torch.is_grad_enabled():
            return forward(self, *args, **kwargs)
        with heap_reuse():
            return forward(self, *args, **kwargs)

    return wrapper
