"""Random selective-scan inputs shared by the scan tests."""

from __future__ import annotations

import pytest
import torch

from ssmblocks.ops._native.build import find_compiler


def scan_inputs(
    batch: int,
    dim: int,
    length: int,
    dstate: int,
    groups: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    with_D: bool = True,
    with_z: bool = True,
    with_bias: bool = True,
    delta_scale: float = 0.5,
    seed: int = 0,
) -> dict[str, torch.Tensor | None]:
    """Keyword arguments of selective_scan_fn. groups=None gives (batch, N, L) B/C, else (batch, groups, N, L)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    bc_shape = (batch, dstate, length) if groups is None else (batch, groups, dstate, length)
    return {
        "u": rand(batch, dim, length),
        "delta": rand(batch, dim, length) * delta_scale,
        "A": -(torch.rand(dim, dstate, generator=g, dtype=dtype) * 4 + 0.1),
        "B": rand(*bc_shape),
        "C": rand(*bc_shape),
        "D": rand(dim) if with_D else None,
        "z": rand(batch, dim, length) if with_z else None,
        "delta_bias": rand(dim) * 0.3 if with_bias else None,
    }


def tolerance(dtype: torch.dtype) -> float:
    """Max |a - b| / max |b| allowed between a backend and the reference."""
    return 1e-11 if dtype == torch.float64 else 2e-5


# Tests of the native kernel: skipped with a reason where there is no C++ compiler (where one exists and the kernel
# still does not build, they fail rather than skip).
needs_compiler = pytest.mark.skipif(find_compiler() is None,
                                    reason="needs a C++ compiler to build the native kernel (none found)")
