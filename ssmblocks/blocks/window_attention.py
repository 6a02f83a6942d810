"""Shifted-window multi-head self-attention with a relative position bias (Swin), as MambaIRv2 uses it.

Facts (csguoh/MambaIR ``basicsr/archs/mambairv2_arch.py`` at 33d7b34, ``WindowAttention``, ``AttentiveLayer``,
``MambaIRv2.calculate_rpi_sa`` / ``calculate_mask``):

* The block receives q, k, v already projected, channels laid out [q | k | v], each (heads, head_dim).
* Shifted layers roll the map by (-shift, -shift) before the window split and by (+shift, +shift) after.
* ``attn = (q * head_dim**-0.5) @ k^T + table[rpi]`` (table ((2ws-1)^2, heads), key
  ``relative_position_bias_table``); shifted layers then add the mask; softmax; ``@ v``; ``proj`` (Linear C -> C).
* The index ``rpi`` (ws^2, ws^2) maps the offset (dy, dx) of two window pixels to ``(dy + ws-1)(2ws-1) + dx + ws-1``.
* The mask splits the (unshifted) map into 3 x 3 regions, rows [0, H-ws), [H-ws, H-shift), [H-shift, H) (likewise
  columns), and puts -100 (not -inf) between pixels of different regions of a window.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["WindowAttention", "relative_position_index", "shifted_window_mask"]


def relative_position_index(window_size: int, device: torch.device | str | None = None) -> Tensor:
    """(ws^2, ws^2) int64: the row of the bias table for every (query, key) pixel pair of a window (row-major)."""
    coords = torch.arange(window_size, device=device)
    rows = coords.repeat_interleave(window_size)            # the row of each window pixel, row-major
    cols = coords.repeat(window_size)
    dy = rows[:, None] - rows[None, :] + window_size - 1
    dx = cols[:, None] - cols[None, :] + window_size - 1
    return dy * (2 * window_size - 1) + dx


def _windows(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B, nH, nW, ws^2, C): the windows (pixels row-major inside). The window grid stays two axes
    (never merged with the batch), so torch.export keeps its symbolic sizes apart."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h // window_size, w // window_size, window_size**2, c)


def _unwindows(x: Tensor, window_size: int) -> Tensor:
    """(B, nH, nW, ws^2, C) -> (B, H, W, C), the inverse of ``_windows``."""
    b, nh, nw, _, c = x.shape
    x = x.view(b, nh, nw, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, nh * window_size, nw * window_size, c)


def shifted_window_mask(height: int, width: int, window_size: int, shift: int, *,
                        device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(nH, nW, ws^2, ws^2): 0 within a region, -100 across regions, for every window of a map of (height, width)
    (multiples of ws) rolled by ``shift`` (see the module docstring). Torch ops only: sizes may be symbolic."""
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    row_region = (rows >= height - window_size).long() + (rows >= height - shift).long()
    col_region = (cols >= width - window_size).long() + (cols >= width - shift).long()
    region = (row_region[:, None] * 3 + col_region[None, :])[None, :, :, None]     # (1, H, W, 1)
    region = _windows(region, window_size)[0, ..., 0]                             # (nH, nW, ws^2)
    differs = region[..., None, :] != region[..., :, None]
    return torch.zeros(differs.shape, device=device, dtype=dtype).masked_fill(differs, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ws x ws windows, optionally shifted. Input: projected q, k, v as
    channels-last tokens (B, H, W, 3 * dim), H and W multiples of ``window_size``; output (B, H, W, dim).

    Args:
        dim: channels C (heads * head_dim).
        num_heads: attention heads (dim must divide by it).
        window_size: ws.
        shift_size: the roll of shifted layers (0: none; MambaIRv2's odd layers: ws // 2).
        device, dtype: factory arguments.

    ``forward(qkv, rpi=None, mask=None)``: ``rpi`` the relative position index (default computed from ws; a model
    may pass its buffer), ``mask`` the shift mask for this map (default computed when shifted).
    """

    def __init__(self, dim: int, *, num_heads: int, window_size: int, shift_size: int = 0,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} does not divide into {num_heads} heads")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.dim, self.num_heads, self.window_size, self.shift_size = dim, num_heads, window_size, shift_size
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.empty((2 * window_size - 1) ** 2, num_heads, device=device, dtype=dtype))
        self.proj = nn.Linear(dim, dim, device=device, dtype=dtype)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, qkv: Tensor, rpi: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        check_layout(qkv, "(B, H, W, C)", 3 * self.dim, type(self).__name__)
        height, width = qkv.shape[1:3]
        ws, shift = self.window_size, self.shift_size
        if not torch.compiler.is_compiling() and (height % ws or width % ws):
            raise ValueError(f"WindowAttention needs H and W multiples of the window size {ws}, got {height}x{width}")
        if shift:
            qkv = torch.roll(qkv, shifts=(-shift, -shift), dims=(1, 2))
            if mask is None:
                mask = shifted_window_mask(height, width, ws, shift, device=qkv.device, dtype=qkv.dtype)
        if rpi is None:
            rpi = relative_position_index(ws, qkv.device)
        windows = _windows(qkv, ws)                                               # (B, nH, nW, n, 3C)
        images, rows, cols, n, _ = windows.shape
        heads = self.num_heads
        q, k, v = windows.reshape(images, rows, cols, n, 3, heads, self.dim // heads).permute(4, 0, 1, 2, 5, 3, 6) \
            .unbind(0)                                                            # (B, nH, nW, heads, n, hd)
        attn = (q * self.scale) @ k.transpose(-2, -1)                             # (B, nH, nW, heads, n, n)
        bias = self.relative_position_bias_table[rpi.reshape(-1)].view(n, n, heads).permute(2, 0, 1)
        attn = attn + bias
        if shift:
            attn = attn + mask.to(attn.dtype).unsqueeze(2)
        out = (attn.softmax(dim=-1) @ v).transpose(-3, -2).reshape(images, rows, cols, n, self.dim)
        out = _unwindows(self.proj(out), ws)
        return torch.roll(out, shifts=(shift, shift), dims=(1, 2)) if shift else out
