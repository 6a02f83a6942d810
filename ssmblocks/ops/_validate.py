"""Argument checks shared by the scan ops: every failure is a ValueError naming the argument and the expected shape."""

from __future__ import annotations

import torch


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def require_tensor(name: str, t: object, ndim: int | tuple[int, ...], layout: str) -> torch.Tensor:
    """Checks that ``t`` is a real floating tensor of rank ``ndim``; ``layout`` names the expected shape."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {layout}, got {type(t).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if t.dim() not in ranks:
        raise ValueError(f"{name} must have shape {layout}, got {t.dim()}-D tensor of shape {_shape(t)}")
    if t.is_complex():
        raise ValueError(f"{name} is complex ({t.dtype}); only real tensors are supported")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    return t


def require_shape(name: str, t: torch.Tensor, expected: tuple[int, ...], layout: str) -> None:
    if tuple(t.shape) != tuple(expected):
        want = "(" + ", ".join(str(s) for s in expected) + ")"
        raise ValueError(f"{name} must have shape {layout} = {want}, got {_shape(t)}")


def require_same_device(**tensors: torch.Tensor | None) -> None:
    devices = {k: v.device for k, v in tensors.items() if v is not None}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise ValueError(f"all tensors must be on one device, got {listing}")


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 if any input is float64, else float32 (half inputs accumulate in float32, as the CUDA kernel)."""
    if any(t is not None and t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias) -> None:
    """Validates selective-scan arguments (ValueError naming the argument and its expected shape)."""
    require_tensor("u", u, 3, "(batch, dim, seqlen)")
    batch, dim, length = u.shape
    require_tensor("delta", delta, 3, "(batch, dim, seqlen)")
    require_shape("delta", delta, (batch, dim, length), "(batch, dim, seqlen)")
    require_tensor("A", A, 2, "(dim, dstate)")
    if A.shape[0] != dim:
        raise ValueError(f"A must have shape (dim, dstate) with dim = {dim}, got {_shape(A)}")
    dstate = A.shape[1]
    groups = None
    for name, t in (("B", B), ("C", C)):
        require_tensor(name, t, (3, 4), "(batch, dstate, seqlen) or (batch, groups, dstate, seqlen)")
        g = 1 if t.dim() == 3 else t.shape[1]
        expected = (batch, dstate, length) if t.dim() == 3 else (batch, g, dstate, length)
        layout = "(batch, dstate, seqlen)" if t.dim() == 3 else "(batch, groups, dstate, seqlen)"
        require_shape(name, t, expected, layout)
        if g == 0 or dim % g:
            raise ValueError(f"{name} has {g} groups, which do not divide dim = {dim}")
        if groups is not None and g != groups:
            raise ValueError(f"B and C must have the same number of groups, got {groups} and {g}")
        groups = g
    if D is not None:
        require_tensor("D", D, 1, "(dim,)")
        require_shape("D", D, (dim,), "(dim,)")
    if z is not None:
        require_tensor("z", z, 3, "(batch, dim, seqlen)")
        require_shape("z", z, (batch, dim, length), "(batch, dim, seqlen)")
    if delta_bias is not None:
        require_tensor("delta_bias", delta_bias, 1, "(dim,)")
        require_shape("delta_bias", delta_bias, (dim,), "(dim,)")
    if length == 0 or batch == 0 or dim == 0 or dstate == 0:
        raise ValueError(f"empty scan: u has shape {_shape(u)} and A {_shape(A)}; every size must be >= 1")
    require_same_device(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
