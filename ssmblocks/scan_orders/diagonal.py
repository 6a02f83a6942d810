"""Diagonal orders on one 2-D map (B, C, H, W): EAMamba's "diagonal" and "anti-diagonal" walks.

Facts (daidaijr/EAMamba at ec13c77, ``models/module/scan.py``, ``ScanTransform('diagonal', 8, 'concate')``; the
index file ``eamamba_scan_orders.json`` of the golden data was made by running it): with the row-major flat index
p = i * W + j,

- ``Diagonal``: the lines i + j = s for s = 0, 1, ..., H + W - 2 (geometrically the anti-diagonals of the map,
  running from the top-left to the bottom-right corner); inside one line, row i ascending (column j descending).
  On a 3x4 map: 0, 1, 4, 2, 5, 8, 3, 6, 9, 7, 10, 11.
- ``AntiDiagonal``: the same walk on the width-flipped map, i.e. pixel (i, W - 1 - j) at the step where
  ``Diagonal`` reads (i, j): it starts at the top-right corner and runs over the lines j - i = const from the
  largest to the smallest, row ascending inside. On a 3x4 map: 3, 2, 7, 1, 6, 11, 0, 5, 10, 4, 9, 8.

Their reverses (``.reversed()``) are the official heads 1 and 3. Each is one path over every pixel (no padding).
"""

from __future__ import annotations

import torch

from ssmblocks.scan_orders.base import ScanOrder

__all__ = ["AntiDiagonal", "Diagonal"]


def _by_line_then_row(height, width, flip_width: bool):
    """Flat indices i * W + j of the pixels sorted by (i + j', i), j' = W - 1 - j when ``flip_width`` else j.

    The sort key (i + j') * H + i is unique per pixel, so one argsort gives the walk; torch ops only (the sizes
    may be symbolic)."""
    rows = torch.arange(height).unsqueeze(1).expand(height, width)
    cols = torch.arange(width).unsqueeze(0).expand(height, width)
    line = rows + ((width - 1) - cols if flip_width else cols)
    return torch.argsort((line * height + rows).flatten())


class Diagonal(ScanOrder):
    """One path over the lines i + j = s (s ascending), each read top to bottom (EAMamba's head 0)."""

    def build_paths(self, shape):
        return _by_line_then_row(shape[0], shape[1], flip_width=False)[None]


class AntiDiagonal(ScanOrder):
    """``Diagonal`` on the width-flipped map (EAMamba's head 2): from the top-right corner over the lines
    j - i = const (largest first), each read top to bottom."""

    def build_paths(self, shape):
        return _by_line_then_row(shape[0], shape[1], flip_width=True)[None]
