"""Orders on one 2-D map (B, C, H, W): raster (row/column-major), VMamba's cross-scan, LocalMamba windows.

Facts: MambaIR's SS2D uses K = 4 paths [row-major, column-major, reversed row, reversed column]
(shared/reference/mambair.md); MambaCSR's ``wK`` / ``c_wK`` / ``_flip`` windows (local_scan.py, summarised in
shared/reference/mambacsr.md): zero-pad right/bottom to a multiple of K, windows and the pixels inside them both
row-major (``wK``) or both column-major (``c_wK``); the padding tokens stay in the sequence.
"""

from __future__ import annotations

import torch

from ssmblocks.scan_orders.base import ScanOrder, concat

__all__ = ["ColMajor", "RowMajor", "Windowed", "bidirectional", "cross_scan", "mambacsr_order"]


def _grid(h: int, w: int) -> torch.Tensor:
    return torch.arange(h * w).view(h, w)


class RowMajor(ScanOrder):
    """One path, row by row: index h * W + w."""

    def build_paths(self, shape):
        return torch.arange(shape[0] * shape[1])[None]


class ColMajor(ScanOrder):
    """One path, column by column: the flattening of the transposed map (w * H + h visits pixel (h, w))."""

    def build_paths(self, shape):
        return _grid(*shape).t().reshape(1, -1)


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
        super().__init__()
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
        hp, wp = self.padded_shape(shape)
        k = self.size
        index = torch.full((hp, wp), h * w, dtype=torch.int64)  # h * w is the zero token
        index[:h, :w] = _grid(h, w)
        tiles = index.view(hp // k, k, wp // k, k)          # (Hg, kh, Wg, kw)
        win = (0, 2) if self.windows == "row" else (2, 0)   # outer loop over window rows or columns
        pix = (1, 3) if self.pixels == "row" else (3, 1)
        return tiles.permute(*win, *pix).reshape(1, -1)

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
