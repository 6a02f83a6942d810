"""Mamba-2 chunked SSD scan with the semantics of mamba_ssm's ``mamba_chunk_scan_combined``.

    y = ssd_scan(x, dt, A, B, C, chunk_size, D=None, z=None, dt_bias=None, dt_softplus=False,
                 initial_states=None, return_final_states=False)

Layouts: x, z (batch, L, heads, headdim); dt (batch, L, heads); A (heads,); B, C (batch, L, groups, N), head h
using group h // (heads / groups); D (heads, headdim) or (heads,); dt_bias (heads,); initial_states and the
final states (batch, heads, headdim, N).

Recurrence per head (scalar decay): dt = softplus(dt + dt_bias); h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T;
y_t = h_t C_t + D x_t; y = y * silu(z). Output in x's dtype, final states in float32 (float64 for float64 inputs).

Backends: ``cuda`` (mamba_ssm's Triton kernel), ``native`` (the SSD as one selective scan on the C++ CPU kernel,
``_ssd_native``), ``torch`` (chunked SSD in matmul form, below), ``reference`` (a sequential loop, the test oracle).
All are differentiable by autograd. ``native`` takes no ``initial_states`` and its final states carry no gradient:
the automatic choice sends such calls (initial states; final states while autograd records) to ``torch``, and
forcing ``native`` for them raises RuntimeError.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmblocks.ops._backends import (
    MAMBA_SSM_NEEDS,
    dispatch,
    mamba_ssm_on_cuda,
    native_needs,
    native_on_cpu,
    register_backend,
)
from ssmblocks.ops._validate import compute_dtype, require_same_device, require_shape, require_tensor
from ssmblocks.ops.selective_scan import native_scan, records_grad

__all__ = ["mamba_chunk_scan_combined", "ssd_scan", "ssd_scan_ref"]


def _check(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states) -> None:
    require_tensor("x", x, 4, "(batch, seqlen, nheads, headdim)")
    batch, length, heads, headdim = x.shape
    require_tensor("dt", dt, 3, "(batch, seqlen, nheads)")
    require_shape("dt", dt, (batch, length, heads), "(batch, seqlen, nheads)")
    require_tensor("A", A, 1, "(nheads,)")
    require_shape("A", A, (heads,), "(nheads,)")
    require_tensor("B", B, 4, "(batch, seqlen, ngroups, dstate)")
    groups, dstate = B.shape[2], B.shape[3]
    require_shape("B", B, (batch, length, groups, dstate), "(batch, seqlen, ngroups, dstate)")
    require_tensor("C", C, 4, "(batch, seqlen, ngroups, dstate)")
    require_shape("C", C, (batch, length, groups, dstate), "(batch, seqlen, ngroups, dstate)")
    if groups == 0 or heads % groups:
        raise ValueError(f"B and C have {groups} groups, which do not divide nheads = {heads}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if D is not None:
        require_tensor("D", D, (1, 2), "(nheads, headdim) or (nheads,)")
        require_shape("D", D, (heads, headdim) if D.dim() == 2 else (heads,), "(nheads, headdim) or (nheads,)")
    if z is not None:
        require_tensor("z", z, 4, "(batch, seqlen, nheads, headdim)")
        require_shape("z", z, tuple(x.shape), "(batch, seqlen, nheads, headdim)")
    if dt_bias is not None:
        require_tensor("dt_bias", dt_bias, 1, "(nheads,)")
        require_shape("dt_bias", dt_bias, (heads,), "(nheads,)")
    if initial_states is not None:
        require_tensor("initial_states", initial_states, 4, "(batch, nheads, headdim, dstate)")
        require_shape("initial_states", initial_states, (batch, heads, headdim, dstate),
                      "(batch, nheads, headdim, dstate)")
    if 0 in (batch, length, heads, headdim, dstate):
        raise ValueError(f"empty scan: x has shape {tuple(x.shape)} and B {tuple(B.shape)}")
    require_same_device(x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias, initial_states=initial_states)


def _prepare(x, dt, A, B, C, dt_bias, dt_softplus, dtype):
    """Casts to ``dtype``, applies bias/softplus and expands B, C from groups to heads: (b, L, H, N)."""
    dt = dt.to(dtype)
    if dt_bias is not None:
        dt = dt + dt_bias.to(dtype)
    if dt_softplus:
        dt = F.softplus(dt)
    per_group = x.shape[2] // B.shape[2]
    B = B.to(dtype).repeat_interleave(per_group, dim=2)
    C = C.to(dtype).repeat_interleave(per_group, dim=2)
    return x.to(dtype), dt, A.to(dtype), B, C


def _finish(y, x, D, z, dtype):
    if D is not None:
        D = D.to(dtype)
        y = y + x.to(dtype) * (D if D.dim() == 2 else D[:, None])
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y


def _initial(initial_states, x, B, dtype):
    if initial_states is not None:
        return initial_states.to(dtype)
    return x.new_zeros(x.shape[0], x.shape[2], x.shape[3], B.shape[3], dtype=dtype)


def _ssd_reference(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states, dtype):
    """Sequential loop over L. Returns (y (b, L, H, P), final_states (b, H, P, N))."""
    xx, dt, A, Bh, Ch = _prepare(x, dt, A, B, C, dt_bias, dt_softplus, dtype)
    h = _initial(initial_states, x, B, dtype)
    ys = []
    for t in range(x.shape[1]):
        decay = torch.exp(dt[:, t] * A)                                   # (b, H)
        h = decay[..., None, None] * h + (dt[:, t, :, None] * xx[:, t])[..., None] * Bh[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", h, Ch[:, t]))
    return _finish(torch.stack(ys, dim=1), x, D, z, dtype), h


def _segsum(a: Tensor) -> Tensor:
    """(..., T) -> (..., T, T) with out[i, j] = a[j+1] + ... + a[i] for j <= i and -inf above the diagonal.

    Built as a cumulative sum of masked copies rather than a difference of cumulative sums, which cancels.
    """
    T = a.shape[-1]
    strictly_lower = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)     # [k, j]: k > j
    terms = a[..., :, None].expand(*a.shape, T).masked_fill(~strictly_lower, 0)
    sums = terms.cumsum(dim=-2)
    lower = torch.ones(T, T, dtype=torch.bool, device=a.device).tril()
    return sums.masked_fill(~lower, float("-inf"))


def _ssd_chunked(x, dt, A, B, C, chunk, D, z, dt_bias, dt_softplus, initial_states, dtype):
    """Chunked SSD: quadratic (attention-like) form inside chunks, a recurrence over chunk states between them.

    Returns (y (b, L, H, P), final_states (b, H, P, N)). Cost O(L T) inside chunks plus O(L/T) state steps.
    """
    batch, length, heads, _ = x.shape
    xx, dt, A, Bh, Ch = _prepare(x, dt, A, B, C, dt_bias, dt_softplus, dtype)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    if pad:  # dt = 0, x = B = C = 0: the state passes through unchanged; outputs are cropped
        xx, Bh, Ch = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (xx, Bh, Ch))
        dt = F.pad(dt, (0, 0, 0, pad))
    xx, Bh, Ch = (t.unflatten(1, (n_chunks, chunk)) for t in (xx, Bh, Ch))   # (b, c, T, H, *)
    dt = dt.unflatten(1, (n_chunks, chunk))                                    # (b, c, T, H)
    a = (dt * A).permute(0, 3, 1, 2)                                           # (b, H, c, T) log-decays
    x_dt = xx * dt[..., None]

    seg = _segsum(a)                                                           # (b, H, c, T, T)
    y = torch.einsum("bcihn,bcjhn,bhcij,bcjhp->bcihp", Ch, Bh, torch.exp(seg), x_dt)
    # state at the end of each chunk from its own inputs; decay from step j to the chunk end = seg[T-1, j]
    local = torch.einsum("bcjhn,bhcj,bcjhp->bchpn", Bh, torch.exp(seg[..., -1, :]), x_dt)
    chunk_decay = torch.exp(a.sum(-1))                                         # (b, H, c)
    h = _initial(initial_states, x, B, dtype)
    starts = []
    for c in range(n_chunks):
        starts.append(h)
        h = chunk_decay[:, :, c, None, None] * h + local[:, c]
    start = torch.stack(starts, dim=1)                                         # (b, c, H, P, N)
    y = y + torch.einsum("bcihn,bchpn,bhci->bcihp", Ch, start, torch.exp(a.cumsum(-1)))
    y = y.reshape(batch, n_chunks * chunk, heads, -1)[:, :length]
    return _finish(y, x, D, z, dtype), h


def _ssd_native(x, dt, A, B, C, chunk, D, z, dt_bias, dt_softplus, initial_states, dtype):
    """The SSD as one selective scan (Mamba-1) on the native kernel, whose channels are the (head, p) pairs.

    A head's recurrence is the selective scan's with, for every channel d = h * P + p: u[d] = x[h, p],
    delta[d] = dt[h], A[d, n] = A[h] for every state n, delta_bias[d] = dt_bias[h], D[d] = D[h(, p)], z[d] = z[h, p];
    B and C keep their groups (channel d uses group d // (H P / G) = h // (H / G), the SSD's head-to-group rule).
    Layouts change from (b, L, H, P) to the scan's (b, H P, L) and back; the expands and reshapes are ordinary
    autograd, so gradients reach x, dt, A, B, C, D, z and dt_bias through the kernel's backward.
    Returns (y (b, L, H, P), final_states (b, H, P, N), not differentiable). ``chunk``, ``initial_states`` and
    ``dtype`` are unused: ssd_scan sends calls with initial states elsewhere, and the op casts to the compute dtype.
    """
    batch, length, heads, headdim = x.shape
    dstate = B.shape[3]

    def channels_first(t):  # (b, L, H, P) -> (b, H P, L)
        return t.permute(0, 2, 3, 1).reshape(batch, heads * headdim, length)

    def per_channel(t):  # (H,) -> (H P,): the head's value for each of its P channels
        return t[:, None].expand(heads, headdim).reshape(-1)

    u = channels_first(x)
    delta = channels_first(dt[..., None].expand(batch, length, heads, headdim))
    A_channels = per_channel(A)[:, None].expand(heads * headdim, dstate)
    D = None if D is None else D.reshape(-1) if D.dim() == 2 else per_channel(D)
    z = None if z is None else channels_first(z)
    delta_bias = None if dt_bias is None else per_channel(dt_bias)
    out, last = native_scan(u, delta, A_channels, B.permute(0, 2, 3, 1), C.permute(0, 2, 3, 1), D, z, delta_bias,
                            dt_softplus)
    y = out.unflatten(1, (heads, headdim)).permute(0, 3, 1, 2).contiguous()
    return y, last.unflatten(1, (heads, headdim))


def _mamba_ssm_ssd(x, dt, A, B, C, chunk, D, z, dt_bias, dt_softplus, initial_states, dtype):
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined as triton_ssd

    return triton_ssd(x, dt, A, B, C, chunk, D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus,
                      initial_states=initial_states, return_final_states=True)


def _ssd_reference_chunked(x, dt, A, B, C, chunk, D, z, dt_bias, dt_softplus, initial_states, dtype):
    """``_ssd_reference`` with the backends' signature (the chunk size is not used)."""
    return _ssd_reference(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states, dtype)


# Backends in automatic-priority order; each runs (x, dt, A, B, C, chunk_size, D, z, dt_bias, dt_softplus,
# initial_states, compute dtype), validated, and returns (y, final_states).
register_backend("ssd_scan", "cuda", _mamba_ssm_ssd, available=mamba_ssm_on_cuda, needs=MAMBA_SSM_NEEDS)
register_backend("ssd_scan", "native", _ssd_native, available=native_on_cpu(), needs=native_needs())
register_backend("ssd_scan", "torch", _ssd_chunked)
register_backend("ssd_scan", "reference", _ssd_reference_chunked, automatic=False)


def _native_limits(initial_states, return_final_states, inputs) -> dict[str, str]:
    """What the ``native`` backend cannot do in this call: start from ``initial_states`` (the kernel starts from
    zero), or return final states that autograd records (the kernel's last state carries no gradient)."""
    if initial_states is not None:
        return {"native": "takes no initial_states"}
    if return_final_states and records_grad(inputs):
        return {"native": "returns final states without gradients, and this call records gradients"}
    return {}


def ssd_scan(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
    initial_states: Tensor | None = None,
    return_final_states: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Chunked SSD scan on the automatically chosen (or user-forced) backend. See the module docstring."""
    _check(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states)
    dtype = compute_dtype(x, dt, A, B, C, D, z, dt_bias, initial_states)
    backend = dispatch("ssd_scan", x.device, torch.float64 if dtype == torch.float64 else x.dtype,
                       unsupported=_native_limits(initial_states, return_final_states, (x, dt, A, B, C, D, z, dt_bias)))
    y, final = backend.run(x, dt, A, B, C, chunk_size, D, z, dt_bias, dt_softplus, initial_states, dtype)
    y = y.to(x.dtype)
    return (y, final) if return_final_states else y


mamba_chunk_scan_combined = ssd_scan


def ssd_scan_ref(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    dt_bias: Tensor | None = None,
    dt_softplus: bool = False,
    initial_states: Tensor | None = None,
    return_final_states: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Sequential reference of ``ssd_scan`` (no chunking), differentiable by autograd; the test oracle."""
    _check(x, dt, A, B, C, 1, D, z, dt_bias, initial_states)
    dtype = compute_dtype(x, dt, A, B, C, D, z, dt_bias, initial_states)
    y, final = _ssd_reference(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_states, dtype)
    y = y.to(x.dtype)
    return (y, final) if return_final_states else y
