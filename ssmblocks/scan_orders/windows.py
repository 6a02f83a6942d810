"""Window partition: every window becomes its own short sequence (MedVSR's CSSB and ISSR Mamba-2 blocks).

Facts (CUHK-AIM-Group/MedVSR at 3421505, ``archs/medvsr_arch.py``): both inputs are zero-padded (right/bottom) to
multiples of 16 and split into 16x16 windows; each window is one sequence of 256 tokens, row-major, one causal
direction. Unlike ``Windowed``, the state does not carry from one window to the next, so the windows go to the batch
axis.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssmblocks.scan_orders.base import _symbolic
from ssmblocks.scan_orders.planar import Windowed

__all__ = ["WindowPartition", "medvsr_windows"]


class WindowPartition(Windowed):
    """Windows as separate sequences. ``to_tokens``: (B, C, H, W) -> (B * nW, size**2, C), windows row-major, each
    window row-major, zero-padded right/bottom; ``from_tokens`` inverts it (padding cropped). As a scan order:
    ``scan``: (B, C, H, W) -> (B * nW, 1, C, size**2); ``merge`` / ``merge_sum``: (B * nW, 1, C, size**2) ->
    (B, 1, C, H, W) / (B, C, H, W).

    The tokens are gathered channels-last, so that (B, nW) fold into one batch axis without moving data. Under
    ``torch.compile`` / ``torch.export`` every image gets one extra all-zero window at the end of its windows
    (B * (nW + 1) sequences; ``from_tokens`` drops them): windows are independent sequences, so the others are
    unchanged, and a window count that is provably at least 2 keeps the traced program free of guards on it being 1
    (a program exported where a map has several windows runs where it has one, and the reverse).
    """

    def to_tokens(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B * nW, size**2, C) (B * (nW + 1) when traced, see the class docstring)."""
        shape = self._check_map(x)
        index = self._tables(shape, x.device).paths[0]
        zero_token = math.prod(shape)
        if _symbolic(shape):
            index = torch.cat([index, index.new_full((self.size**2,), zero_token)])     # one all-zero window
        flat = x.flatten(2).transpose(1, 2)                                 # (B, HW, C), a view
        source = torch.cat([flat, flat.new_zeros(flat.shape[0], 1, flat.shape[2])], dim=1)   # + the zero token
        tokens = source.index_select(1, index)                              # (B, windows * size^2, C)
        return tokens.reshape(-1, self.size**2, tokens.shape[-1])

    def from_tokens(self, tokens: Tensor, shape) -> Tensor:
        """(B * nW, size**2, C) -> (B, C, *shape), the padding tokens dropped."""
        shape = tuple(shape)
        tables = self._tables(shape, tokens.device)
        per_window = self.size**2
        length = tables.paths.shape[1] + (per_window if _symbolic(shape) else 0)
        if tokens.dim() != 3 or tokens.shape[1] != per_window:
            raise ValueError(f"{self!r} takes window tokens (B * nW, {per_window}, C) for a map of shape {shape}, "
                             f"got {tuple(tokens.shape)}")
        sequence = tokens.reshape(-1, length, tokens.shape[-1])             # (B, windows * size^2, C)
        pixels = sequence.index_select(1, tables.pixel_inverse[0])          # (B, HW, C)
        return pixels.transpose(1, 2).unflatten(-1, shape)

    def scan(self, *maps: Tensor) -> Tensor:
        self.flatten_inputs(*maps)                                         # checks: one map
        return self.to_tokens(maps[0]).transpose(1, 2).unsqueeze(1)

    def merge(self, y: Tensor, shape) -> Tensor:
        return self.merge_sum(y, shape).unsqueeze(1)

    def merge_sum(self, y: Tensor, shape) -> Tensor:
        if y.dim() != 4 or y.shape[1] != 1:
            raise ValueError(f"{self!r} merges (B * nW, 1, C, {self.size**2}) window paths, got {tuple(y.shape)}")
        return self.from_tokens(y[:, 0].transpose(1, 2), shape)

    def __repr__(self) -> str:
        return f"WindowPartition({self.size})"


def medvsr_windows() -> WindowPartition:
    """MedVSR's order: 16x16 windows, row-major inside, zero padding, one direction."""
    return WindowPartition(16)
