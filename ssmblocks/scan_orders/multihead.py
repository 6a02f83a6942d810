"""Multi-head scan: the channels are split into K equal heads and head k is read in its own order, so that K
directions cost ONE selective scan over C channels (instead of K scans of all C channels, summed).

Layouts: ``scan``: (B, C, H, W) -> (B, K, C / K, L), head k = channels [k * C / K, (k + 1) * C / K) read along path
k (a view of the map split into heads; one gather). ``merge``: (B, K, C / K, L) -> (B, K, C / K, H, W), each head
un-permuted; ``merge_concat``: -> (B, C, H, W), the heads back on their own channels (the concatenating merge).
A mixer flattens the (K, C / K) axes into C for the scan kernel, whose B/C projections are grouped per head
(groups = K), exactly as for a K-path order over C / K channels.

The orders may be any 2-D orders of equal path length (K = their total number of paths: a 2-path order gives two
heads). Facts (daidaijr/EAMamba at ec13c77, ``models/module/scan.py`` and ``models/module/mamba.py``
``ExtendedMamba``, scan_merge_method 'concate'): EAMamba's eight heads are [diagonal, diagonal reversed,
anti-diagonal, anti-diagonal reversed, row-major, row-major reversed, column-major, column-major reversed]
(``eamamba_scan``); channel i belongs to head i // (C / 8); after the scan every head is mapped back to row-major
order and the heads are concatenated in head order (nothing is summed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmblocks.ops.path_gather import path_gather
from ssmblocks.scan_orders.base import Concat, Reversed, ScanOrder
from ssmblocks.scan_orders.diagonal import AntiDiagonal, Diagonal
from ssmblocks.scan_orders.planar import ColMajor, RowMajor

__all__ = ["MultiHead", "eamamba_scan"]


def _reads_one_map(order: ScanOrder) -> bool:
    """True for orders whose paths index one map with the base class's scan (not the cross-scale order's two
    inputs, not a window partition's batch of windows)."""
    if isinstance(order, Reversed):
        return _reads_one_map(order.order)
    if isinstance(order, Concat):
        return all(_reads_one_map(o) for o in order.orders)
    kind = type(order)
    return kind.scan is ScanOrder.scan and kind.flatten_inputs is ScanOrder.flatten_inputs


class MultiHead(ScanOrder):
    """Channel group k of the map is read along path k of ``orders`` (their paths in the order given).

    ``MultiHead(RowMajor(), ColMajor())`` reads the first half of the channels row-major and the second half
    column-major. ``scan`` needs C divisible by K (``num_paths``).
    """

    def __init__(self, *orders: ScanOrder) -> None:
        paths = Concat(*orders)
        if paths.ndim != 2:
            raise ValueError(f"MultiHead composes 2-D scan orders, got {paths!r}")
        for order in paths.orders:
            if not _reads_one_map(order):
                raise ValueError(f"a MultiHead head reads its channels of one map along a path; {order!r} reads "
                                 f"several inputs or moves windows to the batch axis")
        self.orders, self.num_paths = paths.orders, paths.num_paths

    def build_paths(self, shape):
        parts = [order.build_paths(shape) for order in self.orders]
        if any(part.shape[1] != parts[0].shape[1] for part in parts):
            raise ValueError(f"the heads of a MultiHead order must have equal path lengths for shape {shape}")
        return torch.cat(parts)

    def check_shape(self, shape):
        for order in self.orders:
            order.check_shape(shape)

    @property
    def padding(self) -> str:
        return Concat(*self.orders).padding

    @property
    def num_heads(self) -> int:
        """K: one head per path."""
        return self.num_paths

    def head_dim(self, channels: int) -> int:
        """Channels per head for a map of ``channels`` channels (raises unless K divides them)."""
        if channels % self.num_paths:
            raise ValueError(f"{self!r} splits the channels into {self.num_paths} heads: C must be a multiple of "
                             f"{self.num_paths}, got {channels}")
        return channels // self.num_paths

    def scan(self, *maps: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, K, C / K, L): head k's channels along path k."""
        src, shape = self.flatten_inputs(*maps)
        heads = src.unflatten(1, (self.num_paths, self.head_dim(src.shape[1])))      # (B, K, C / K, HW)
        tables = self._tables(shape, src.device)
        return path_gather(heads, tables.paths, tables.source_inverse, False, False)

    def merge_concat(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        """(B, K, C / K, L) -> (B, C, *shape): every head un-permuted onto its own channels."""
        return self.merge(y, shape).flatten(1, 2)

    def __repr__(self) -> str:
        return f"MultiHead({', '.join(repr(o) for o in self.orders)})"


def eamamba_scan() -> MultiHead:
    """EAMamba's eight heads, in the official channel order: diagonal, its reverse, anti-diagonal, its reverse,
    row-major, its reverse, column-major, its reverse (the paper's figure draws them in another order)."""
    diagonal, anti, row, col = Diagonal(), AntiDiagonal(), RowMajor(), ColMajor()
    return MultiHead(diagonal, diagonal.reversed(), anti, anti.reversed(), row, row.reversed(), col, col.reversed())


