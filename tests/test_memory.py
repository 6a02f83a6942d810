"""The malloc setting that keeps freed memory for reuse: applied on request, bounded, opt-out by environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ssmblocks.ops import _memory

MB = 2**20

# Runs in a fresh process: optionally applies the setting, then, six rounds, allocates and frees four 48 MB blocks
# (the pattern of a model forward) and reports each round's page faults and glibc's heap statistics (mallinfo2, MB).
_PROBE = """
import ctypes, json, resource, sys
import torch
from ssmblocks.ops import _memory
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in FIELDS.split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
limit = int(sys.argv[1])
applied = _memory.keep_freed_memory(limit) if limit else False
rounds = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    xs = [torch.ones(48 * 2**20 // 4) for _ in range(4)]
    del xs
    info = libc.mallinfo2()
    rounds.append({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
                   "heap_mb": info.arena >> 20, "top_free_mb": info.keepcost >> 20})
print(json.dumps({"applied": applied, "rounds": rounds}))
"""
BLOCK_PAGES = 4 * 48 * MB // 4096  # pages of one round


def _probe(limit_mb: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(limit_mb)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


needs_glibc = pytest.mark.skipif(_memory._libc() is None or not hasattr(_memory._libc(), "mallinfo2"),
                                 reason="the setting and its statistics exist only with glibc >= 2.33 (Linux)")


@needs_glibc
def test_freed_memory_is_reused_without_growing():
    default, kept = _probe(0), _probe(_memory.DEFAULT_LIMIT_MB)
    assert not default["applied"] and kept["applied"]
    # without the setting every round maps its blocks afresh; with it, once the heap holds the working set (after
    # two or three rounds, depending on where glibc places the blocks) every round reuses it
    assert all(r["faults"] > 0.8 * BLOCK_PAGES for r in default["rounds"])
    assert all(r["faults"] < 0.05 * BLOCK_PAGES for r in kept["rounds"][3:])
    # bounded: the heap stops growing once it holds the working set (192 MB; fragmentation may double it)
    assert len({r["heap_mb"] for r in kept["rounds"][3:]}) == 1 and kept["rounds"][-1]["heap_mb"] <= 3 * 192


@needs_glibc
def test_free_space_at_the_heap_top_stays_below_the_limit():
    small = _probe(64)
    assert all(r["top_free_mb"] <= 64 for r in small["rounds"])


def test_env_var_sets_the_bound_or_opts_out(monkeypatch):
    calls = []
    monkeypatch.setattr(_memory, "keep_freed_memory", lambda limit_mb: calls.append(limit_mb) or limit_mb > 0)
    apply = _memory.apply_default.__wrapped__  # the uncached function
    monkeypatch.delenv(_memory.ENV_VAR, raising=False)
    assert apply() is True
    monkeypatch.setenv(_memory.ENV_VAR, "0")
    assert apply() is False
    monkeypatch.setenv(_memory.ENV_VAR, "256")
    assert apply() is True
    assert calls == [_memory.DEFAULT_LIMIT_MB, 0, 256]
    monkeypatch.setenv(_memory.ENV_VAR, "lots")
    with pytest.raises(ValueError, match=_memory.ENV_VAR):
        apply()


def test_nothing_is_applied_without_a_positive_bound():
    assert _memory.keep_freed_memory(0) is False
