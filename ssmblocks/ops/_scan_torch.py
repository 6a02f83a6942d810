"""Pure-PyTorch selective scans: the sequential reference (test oracle) and the chunked default fallback.

Both take the selective-scan arguments already validated, B and C grouped as (batch, groups, dstate, seqlen), and
compute in ``dtype`` (float32, or float64). They are differentiable by autograd.

Layouts: u, delta, z (b, D, L); A (D, N); B, C (b, G, N, L), channel d uses group d // (D / G); D, delta_bias (D,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus, dtype):
    """Casts to ``dtype``, applies bias/softplus, and splits channels into (groups, channels per group)."""
    batch, dim, length = u.shape
    groups = B.shape[1]
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    shape = (batch, groups, dim // groups, length)
    return (u.to(dtype).reshape(shape), delta.reshape(shape), A.to(dtype).reshape(1, groups, dim // groups, -1),
            B.to(dtype), C.to(dtype))


def _finish(y, u, D, z, dtype):
    if D is not None:
        y = y + u.to(dtype) * D.to(dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y


def scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype):
    """Sequential loop over L, the semantics of mamba_ssm's ``selective_scan_ref``. Returns (out, last_state)."""
    batch, dim, length = u.shape
    uu, dt, A4, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus, dtype)
    # (b, G, Dg, L, N) decays and inputs, as the mamba_ssm reference materialises them
    decay = torch.exp(dt[..., None] * A4[:, :, :, None, :])
    drive = (dt * uu)[..., None] * B.transpose(-1, -2)[:, :, None]
    h = uu.new_zeros(batch, B.shape[1], dim // B.shape[1], A.shape[1])
    ys = []
    for t in range(length):
        h = decay[:, :, :, t] * h + drive[:, :, :, t]
        ys.append(torch.einsum("bgdn,bgn->bgd", h, C[..., t]))
    y = torch.stack(ys, dim=-1).reshape(batch, dim, length)
    return _finish(y, u, D, z, dtype), h.reshape(batch, dim, -1)


def scan_parallel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype):
    """Log-depth scan (Hillis-Steele): ceil(log2 L) doubling steps, each h[t] += a[t] h[t - s], a[t] *= a[t - s].

    Only multiplies by decays <= 1, so it is as stable as the recurrence. It materialises (b, D, L, N), which the
    chunked scan avoids, but its graph has O(log L) operations instead of O(sqrt L): the form ONNX export uses
    (``ssmblocks.export.portable_backends``), whose graphs the chunked scan's Python loops would unroll.
    """
    batch, dim, length = u.shape
    uu, dt, A4, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus, dtype)
    decay = torch.exp(dt[..., None] * A4[:, :, :, None, :])              # (b, G, Dg, L, N)
    h = (dt * uu)[..., None] * B.transpose(-1, -2)[:, :, None]          # (b, G, Dg, L, N)
    shift = 1
    while shift < length:
        h = h + decay * F.pad(h[..., :-shift, :], (0, 0, shift, 0))       # h[t] += a[t] h[t - shift]
        decay = decay * F.pad(decay[..., :-shift, :], (0, 0, shift, 0), value=1.0)
        shift *= 2
    y = (h * C.transpose(-1, -2)[:, :, None]).sum(-1).reshape(batch, dim, length)
    return _finish(y, u, D, z, dtype), h[..., -1, :].reshape(batch, dim, -1)


def default_chunk(length: int) -> int:
    """Chunk length ~ sqrt(L): the two Python loops below then take ~2 sqrt(L) steps."""
    return max(1, 2 ** round(math.log2(math.sqrt(length))))


def scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus, dtype, chunk: int | None = None):
    """Chunked scan, vectorised over chunks. Returns (out, last_state).

    Three passes, each only multiplying by decays exp(dt A) and adding — the same operations as the sequential
    recurrence, so it is as stable as the reference for any dt (no exp(-cumsum) that overflows, no differences
    of cumulative sums that cancel):
      1. inside every chunk at once, run the recurrence from a zero state (T steps): local outputs, the chunk's
         end state and its total decay;
      2. carry the true chunk-start states across chunks (L/T steps on (b, D, N));
      3. add each start state's decayed contribution C_t . (prod decay) h_start to the local outputs (T steps).
    Memory stays O(b D L + b D (L/T) N) outside autograd; nothing of size (b, D, L, N) is materialised.
    """
    batch, dim, length = u.shape
    chunk = chunk or default_chunk(length)
    n_chunks = -(-length // chunk)
    pad = n_chunks * chunk - length
    uu, dt, A4, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus, dtype)
    if pad:  # dt = 0 and B = C = 0 past the end: the state is carried unchanged and outputs are cropped
        uu, dt, B, C = (F.pad(t, (0, pad)) for t in (uu, dt, B, C))

    dt_c = dt.unflatten(-1, (n_chunks, chunk))                       # (b, G, Dg, nc, T)
    x_c = (dt * uu).unflatten(-1, (n_chunks, chunk))                 # (b, G, Dg, nc, T)
    B_c = B.unflatten(-1, (n_chunks, chunk))[:, :, None]             # (b, G, 1, N, nc, T)
    C_c = C.unflatten(-1, (n_chunks, chunk))[:, :, None]
    A5 = A4[..., None, :]                                            # (1, G, Dg, 1, N)

    h = total = None
    ys = []
    for step in range(chunk):
        decay = torch.exp(dt_c[..., step, None] * A5)                # (b, G, Dg, nc, N)
        drive = x_c[..., step, None] * B_c[..., step].transpose(-1, -2)
        h = drive if h is None else decay * h + drive
        total = decay if total is None else total * decay
        ys.append((h * C_c[..., step].transpose(-1, -2)).sum(-1))   # (b, G, Dg, nc)

    starts = [torch.zeros_like(h[..., 0, :])]                        # state entering each chunk: (b, G, Dg, N)
    for c in range(n_chunks):
        starts.append(total[..., c, :] * starts[-1] + h[..., c, :])
    last_state = starts[-1]
    start = torch.stack(starts[:-1], dim=-2)                         # (b, G, Dg, nc, N)

    for step in range(chunk):
        start = start * torch.exp(dt_c[..., step, None] * A5)
        ys[step] = ys[step] + (start * C_c[..., step].transpose(-1, -2)).sum(-1)

    y = torch.stack(ys, dim=-1).reshape(batch, dim, n_chunks * chunk)[..., :length]
    return _finish(y, u, D, z, dtype), last_state.reshape(batch, dim, -1)
