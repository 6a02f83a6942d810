"""Orders on one 2-D map (B, C, H, W): raster (row/column-major), VMamba's cross-scan, LocalMamba windows.

Facts: MambaIR's SS2D uses K = 4 paths [row-major, column-major, reversed row, reversed column] (csguoh/MambaIR at
33d7b34, ``basicsr/archs/mambair_arch.py``); MambaCSR's ``wK`` / ``c_wK`` / ``_flip`` windows (renyulin-f/MambaCSR at
f71199e, ``basicsr/archs/mamba/local_scan.py``): zero-pad right/bottom to a multiple of K, windows and the pixels inside
them both row-major (``wK``) or both column-major (``c_wK``); the padding tokens stay in the sequence.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from ssmblocks.scan_orders.base import ScanOrder, concat

__all__ = ["ColMajor", "RowMajor", "Windowed", "bidirectional", "blocked_walk", "cross_scan", "mambacsr_order"]


def blocked_walk(height: int, width: int, sizes: tuple[int, ...], column_major: tuple[bool, ...]) -> tuple[Tensor,
                                                                                                          Tensor]:
    """(rows, cols), each (height * width,) int64: the pixel visited at every step of a walk over a height x width
    grid block by block — blocks of ``sizes[0]`` x ``sizes[0]``, inside each the blocks of ``sizes[1]``, ..., inside
    the last the pixels. Level i (blocks of level 0, ..., pixels last) is visited row-major, or column-major where
    ``column_major[i]`` (one flag per level: ``len(sizes) + 1``). height and width must be multiples of ``sizes[0]``,
    each size a multiple of the next. Integer arithmetic on one arange (no views), so sizes may be symbolic.
    """
    steps = (*sizes, 1)
    counts = [(height // steps[0], width // steps[0])] + [(a // b, a // b) for a, b in itertools.pairwise(steps)]
    rest = torch.arange(height * width)
    rows, cols = torch.zeros_like(rest), torch.zeros_like(rest)
    for (n_rows, n_cols), step, column in zip(counts, steps, column_major, strict=True):
        block, rest = rest // (step * step), rest % (step * step)
        r, c = (block % n_rows, block // n_rows) if column else (block // n_cols, block % n_cols)
        rows, cols = rows + r * step, cols + c * step
    return rows, cols


class RowMajor(ScanOrder):
    """One path, row by row: index h * W + w."""

    def build_paths(self, shape):
        return torch.arange(shape[0] * shape[1])[None]


class ColMajor(ScanOrder):
    """One path, column by column: the flattening of the transposed map (w * H + h visits pixel (h, w))."""

    def build_paths(self, shape):
        rows, cols = blocked_walk(*shape, (), (True,))
        return (rows * shape[1] + cols)[None]


def bidirectional(order: ScanOrder) -> ScanOrder:
    """``order`` followed by its reverse: the two-path [order, order_flip] pair every MambaCSR block scans."""
    return concat(order, order.reversed())


def cross_scan(num_paths: int = 4) -> ScanOrder:
    """VMamba / MambaIR cross-scan. 4: [row, col, reversed row, reversed col] (the official path order, which fixes
    the layout of per-path parameters in checkpoints); 2: [row, col]; 1: [row]."""
    row, col = RowMajor(), ColMajor()
    choices = {1: (row,), 2: (row, col), 4: (row, col, row.reversed(), col.reversed())}
    if num_paths not in choices:
        raise ValueError(f"cross_scan has 1, 2 or 4 paths, got {num_paths}")
    return concat(*choices[num_paths])


class Windowed(ScanOrder):
    """Windows of ``size`` x ``size``: the map is zero-padded right/bottom to multiples of ``size``; windows are
    visited row-major (or column-major) and the pixels inside each window row-major (or column-major).

    ``Windowed(8)`` is MambaCSR's ``w8``; ``Windowed(8, column_major=True)`` its ``c_w8`` (windows and pixels
    column-major); ``windows=``/``pixels=`` set the two independently. Padding tokens stay in the sequence
    (L = H_pad * W_pad) and read zeros; merge crops them.
    """

    def __init__(self, size: int, column_major: bool = False, *, windows: str | None = None,
                 pixels: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        default = "col" if column_major else "row"
        self.size, self.windows, self.pixels = size, windows or default, pixels or default
        if {self.windows, self.pixels} - {"row", "col"}:
            raise ValueError(f"windows/pixels must be 'row' or 'col', got {self.windows!r}/{self.pixels!r}")

    @property
    def padding(self) -> str:
        return (f"zeros on the right and bottom up to multiples of {self.size}; the padding tokens are scanned, "
                "merge crops them")

    def padded_shape(self, shape):
        k = self.size
        return (-(-shape[0] // k) * k, -(-shape[1] // k) * k)

    def build_paths(self, shape):
        h, w = shape
        levels = (self.windows == "col", self.pixels == "col")
        rows, cols = blocked_walk(*self.padded_shape(shape), (self.size,), levels)
        return torch.where((rows < h) & (cols < w), rows * w + cols, h * w)[None]     # h * w is the zero token

    def __repr__(self) -> str:
        return f"Windowed({self.size}, windows={self.windows!r}, pixels={self.pixels!r})"


def mambacsr_order(name: str) -> ScanOrder:
    """A MambaCSR direction name as an order: ``'w8'``, ``'c_w64'``, ``'w8_flip'``, ``'c_w16_flip'`` ..."""
    base, flip = (name[:-5], True) if name.endswith("_flip") else (name, False)
    column = base.startswith("c_")
    size = base[2:] if column else base
    if not size.startswith("w") or not size[1:].isdigit():
        raise ValueError(f"not a MambaCSR scan name: {name!r} (expected like 'w8', 'c_w64', 'w8_flip')")
    order = Windowed(int(size[1:]), column_major=column)
    return order.reversed() if flip else order
