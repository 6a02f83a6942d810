"""Position-aligned cross-scale order (MambaCSR): a fine map and its x0.5 coarse map in one sequence.

Facts (renyulin-f/MambaCSR at f71199e, ``basicsr/archs/mambacsr_arch.py``, ``basicsr/archs/mamba/local_scan.py``): fine
tokens by a nested scan — outer windows of ``window`` x ``window`` (16 in MambaCSR), inside each window its 2x2
sub-blocks, inside each sub-block its 4 pixels, all in the same order (row- or column-major); coarse tokens by the
matching ``window/2`` local scan of the half-size map; the streams are interleaved so every coarse token comes right
before the four fine tokens it covers: [d0, f0, f1, f2, f3, d1, ...] (length 5HW/4). ``_flip`` reverses the fine and the
coarse streams separately, then interleaves them. The split back keeps only the fine tokens. H and W must be multiples
of ``window``; no padding.

This is the correct general order for any H x W. The official code un-scans its column-major paths with the grid
transposed when H != W; that quirk belongs to the MambaCSR zoo model, not here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmblocks.scan_orders.base import ScanOrder, concat
from ssmblocks.scan_orders.planar import blocked_walk

__all__ = ["CrossScale", "cross_scale_scan"]


class CrossScale(ScanOrder):
    """One path through a fine (H, W) map and its coarse (H/2, W/2) map. ``scan(fine, coarse)`` -> (B, 1, C, 5HW/4).

    Indices address the fine map flattened (H*W tokens) followed by the coarse map flattened (H*W/4 tokens).
    """

    def __init__(self, window: int = 16, column_major: bool = False, flip: bool = False) -> None:
        if window < 2 or window % 2:
            raise ValueError(f"the fine window must be an even size >= 2, got {window}")
        self.window, self.column_major, self.flip = window, column_major, flip

    @property
    def padding(self) -> str:
        return f"none: H and W must be multiples of {self.window}; the coarse map must be exactly half the size"

    def check_shape(self, shape):
        h, w = shape
        if h < self.window or w < self.window or h % self.window or w % self.window:
            raise ValueError(f"CrossScale(window={self.window}) needs a fine map whose sides are positive multiples "
                             f"of {self.window}, got {h}x{w}")

    def source_size(self, shape):
        return shape[0] * shape[1] * 5 // 4

    def build_paths(self, shape):
        h, w = shape
        levels = (self.column_major,) * 3
        rows, cols = blocked_walk(h, w, (self.window, 2), levels)
        fine = rows * w + cols                                                                # (HW,)
        rows, cols = blocked_walk(h // 2, w // 2, (self.window // 2,), levels[:2])
        coarse = h * w + rows * (w // 2) + cols                                               # (HW/4,)
        if self.flip:
            fine, coarse = fine.flip(0), coarse.flip(0)
        return torch.cat([coarse[:, None], fine.view(-1, 4)], dim=1).reshape(1, -1)            # [d, f, f, f, f]

    def flatten_inputs(self, *maps: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """``scan(fine, coarse)``: fine (B, C, H, W), coarse (B, C, H/2, W/2) -> source (B, C, 5HW/4)."""
        if len(maps) != 2:
            raise ValueError(f"{self!r} scans two maps (fine, coarse), got {len(maps)}")
        fine, coarse = maps
        shape = self._check_map(fine, "fine")
        self._check_map(coarse, "coarse")
        half = (*fine.shape[:2], shape[0] // 2, shape[1] // 2)
        if tuple(coarse.shape) != half or shape[0] % 2 or shape[1] % 2:
            raise ValueError(f"the coarse map must be half the fine map: fine {tuple(fine.shape)} needs coarse "
                             f"{half}, got {tuple(coarse.shape)}")
        return torch.cat([fine.flatten(2), coarse.flatten(2)], dim=-1), shape

    def __repr__(self) -> str:
        order = "col" if self.column_major else "row"
        return f"CrossScale(window={self.window}, {order}{', flip' if self.flip else ''})"


def cross_scale_scan(window: int = 16) -> ScanOrder:
    """MambaCSR's four cross-scale paths, in the official order [w16, w16_flip, c_w16, c_w16_flip]."""
    return concat(*(CrossScale(window, column_major=c, flip=f) for c in (False, True) for f in (False, True)))
