"""Mamba-1 selective scan with the signature and semantics of mamba_ssm's ``selective_scan_fn``.

    out = selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                            return_last_state=False)

Layouts: u, delta, z (batch, dim, L); A (dim, N) real; B, C (batch, N, L) or grouped (batch, G, N, L), channel d
using group d // (dim / G); D, delta_bias (dim,). Returns out (batch, dim, L) in u's dtype, and with
``return_last_state`` also the final state (batch, dim, N) in the compute dtype (float32, or float64 for float64
inputs; half inputs accumulate in float32). The last state is not differentiable, as in mamba_ssm.

Recurrence: dt = softplus(delta + delta_bias); h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t; y_t = C_t . h_t + D u_t;
out = y * silu(z).

Backends (see ``ssmblocks.ops.get_backend``): ``cuda`` (mamba_ssm's kernel), ``native`` (the C++ CPU kernel),
``torch`` (chunked pure PyTorch), ``parallel`` (log-depth pure PyTorch: more memory, a small graph — what ONNX
export uses; never chosen automatically before ``torch``), ``reference`` (sequential loop, the test oracle). The
native kernel is registered as the torch custom op ``torch.ops.ssmblocks.selective_scan`` (fake implementation +
the kernel's backward as ``ssmblocks::selective_scan_backward``), so torch.compile and torch.export see one op on
CPU. The pure-PyTorch backends are ordinary differentiable torch code, traceable as such; the ``cuda`` backend
calls mamba_ssm's own autograd function.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import torch
from torch import Tensor

from ssmblocks.ops import _native
from ssmblocks.ops._backends import (
    MAMBA_SSM_NEEDS,
    dispatch,
    mamba_ssm_on_cuda,
    native_needs,
    native_on_cpu,
    register_backend,
)
from ssmblocks.ops._scan_torch import scan_chunked, scan_parallel, scan_reference
from ssmblocks.ops._validate import check_selective_scan_args, compute_dtype

__all__ = ["selective_scan_fn", "selective_scan_ref"]


def _grouped(t: Tensor) -> Tensor:
    return t.unsqueeze(1) if t.dim() == 3 else t


def _mamba_ssm_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as mamba_scan

    # the CUDA kernel wants A, D, delta_bias in float32 and variable B/C in the input dtype
    f32 = torch.float32
    return mamba_scan(
        u, delta, A.to(f32), B.to(u.dtype), C.to(u.dtype), None if D is None else D.to(f32), z,
        None if delta_bias is None else delta_bias.to(f32), delta_softplus, return_last_state=True,
    )


def _torch_scan(scan, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """(out, last_state) of a pure-PyTorch scan (``_scan_torch``), differentiable by autograd."""
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    out, last = scan(u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, delta_softplus, dtype)
    return out.to(u.dtype), last


def _native_args(u, delta, A, B, C, D, z, delta_bias):
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    return [None if t is None else t.to(dtype).contiguous() for t in (u, delta, A, _grouped(B), _grouped(C), D, z,
                                                                      delta_bias)]


# The native kernel as a torch custom op: torch.compile / torch.export see one opaque op with a fake
# implementation, and autograd uses the kernel's own backward (a second op).
@torch.library.custom_op("ssmblocks::selective_scan", mutates_args=())
def _native_scan_op(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
    delta_bias: Tensor | None, delta_softplus: bool, save_for_backward: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (out, last_state, checkpoints); checkpoints (``_native.checkpoint_shape``) are empty unless saved."""
    args = _native_args(u, delta, A, B, C, D, z, delta_bias)
    out, last, saved = _native.forward(*args, delta_softplus, save_for_backward)
    return out.to(u.dtype), last, saved


@_native_scan_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, save_for_backward):
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    saved = _native.checkpoint_shape(batch, dim, length, A.shape[1]) if save_for_backward else (0,)
    return torch.empty_like(u), u.new_empty((batch, dim, A.shape[1]), dtype=dtype), u.new_empty(saved, dtype=dtype)


@torch.library.custom_op("ssmblocks::selective_scan_backward", mutates_args=())
def _native_scan_backward_op(
    dout: Tensor, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
    z: Tensor | None, delta_bias: Tensor | None, checkpoints: Tensor, delta_softplus: bool,
) -> list[Tensor]:
    """Gradients for (u, delta, A, B, C, D, z, delta_bias); an empty tensor stands for an absent input."""
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    args = _native_args(*inputs)
    grads = _native.backward(dout.to(args[0].dtype).contiguous(), *args, delta_softplus, checkpoints)
    return [u.new_empty(0) if t is None else g.reshape(t.shape).to(t.dtype) for g, t in zip(grads, inputs, strict=True)]


@_native_scan_backward_op.register_fake
def _(dout, u, delta, A, B, C, D, z, delta_bias, checkpoints, delta_softplus):
    return [u.new_empty(0) if t is None else torch.empty_like(t) for t in (u, delta, A, B, C, D, z, delta_bias)]


def _setup_context(ctx, inputs, output):
    *tensors, delta_softplus, _ = inputs
    ctx.save_for_backward(*tensors, output[2])
    ctx.delta_softplus = delta_softplus
    ctx.present = [t is not None for t in tensors]


def _backward(ctx, dout, _dlast, _dcheckpoints):
    *inputs, checkpoints = ctx.saved_tensors
    grads = _native_scan_backward_op(dout, *inputs, checkpoints, ctx.delta_softplus)
    return (*[g if present else None for g, present in zip(grads, ctx.present, strict=True)], None, None)


torch.library.register_autograd("ssmblocks::selective_scan", _backward, setup_context=_setup_context)


def records_grad(inputs: Iterable[Tensor | None]) -> bool:
    """True when autograd records a call on ``inputs`` (tensors or None): grad mode on and one of them requires
    grad."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)


def native_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> tuple[Tensor, Tensor]:
    """(out, last_state) of the native kernel through the registered op ``ssmblocks::selective_scan``, arguments as
    ``selective_scan_fn`` (already validated). The state checkpoints for the backward are kept only when autograd
    records the call; the last state carries no gradient."""
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    out, last_state, _ = _native_scan_op(*inputs, delta_softplus, records_grad(inputs))
    return out, last_state


# Backends in automatic-priority order; each runs (u, delta, A, B, C, D, z, delta_bias, delta_softplus), validated,
# and returns (out, last_state).
register_backend("selective_scan", "cuda", _mamba_ssm_scan, available=mamba_ssm_on_cuda, needs=MAMBA_SSM_NEEDS)
register_backend("selective_scan", "native", native_scan, available=native_on_cpu(), needs=native_needs())
register_backend("selective_scan", "torch", functools.partial(_torch_scan, scan_chunked))
register_backend("selective_scan", "parallel", functools.partial(_torch_scan, scan_parallel), automatic=False)
register_backend("selective_scan", "reference", functools.partial(_torch_scan, scan_reference), automatic=False)


def selective_scan_fn(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan on the automatically chosen (or user-forced) backend. See the module docstring."""
    check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias)
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    dtype = torch.float64 if compute_dtype(*inputs) == torch.float64 else u.dtype
    out, last_state = dispatch("selective_scan", u.device, dtype).run(*inputs, delta_softplus)
    return (out, last_state) if return_last_state else out


def selective_scan_ref(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """The sequential reference (mamba_ssm's ``selective_scan_ref`` semantics), differentiable by autograd.

    Computes in float32 (float64 when an input is float64) and materialises (batch, dim, L, N) tensors: a test
    oracle and benchmark baseline, not for real workloads.
    """
    check_selective_scan_args(u, delta, A, B, C, D, z, delta_bias)
    out, last = _torch_scan(scan_reference, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return (out, last) if return_last_state else out
