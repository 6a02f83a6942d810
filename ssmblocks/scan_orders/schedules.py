"""Interleave schedules: which scan order block i of a stage uses.

Facts (renyulin-f/MambaCSR at f71199e, ``basicsr/archs/mambacsr_arch.py`` ``BasicLayer``): MambaCSR's dual-interleaved
schedule gives block i of every residual group entry i % 4 of [w8 + w8_flip, c_w8 + c_w8_flip, w64 + w64_flip, c_w64 +
c_w64_flip]: horizontal/vertical interleaving (row- vs column-major windows) crossed with hierarchical local/global
interleaving (8 vs 64 windows; on 64x64 training patches w64 is one global raster scan).
"""

from __future__ import annotations

from collections.abc import Sequence

from ssmblocks.scan_orders.base import ScanOrder
from ssmblocks.scan_orders.planar import Windowed, bidirectional

__all__ = ["Schedule", "dual_interleaved", "hv_interleaved", "local_global_interleaved"]


class Schedule:
    """A cyclic list of scan orders: ``schedule[i]`` is the order of block i (``orders[i % len(orders)]``)."""

    def __init__(self, orders: Sequence[ScanOrder]) -> None:
        if not orders:
            raise ValueError("a schedule needs at least one scan order")
        if len({o.num_paths for o in orders}) != 1:
            raise ValueError("every order of a schedule must have the same number of paths (per-path parameters)")
        self.orders = tuple(orders)

    def __getitem__(self, block: int) -> ScanOrder:
        return self.orders[block % len(self.orders)]

    def __len__(self) -> int:
        return len(self.orders)

    @property
    def num_paths(self) -> int:
        return self.orders[0].num_paths

    def __repr__(self) -> str:
        return f"Schedule({list(self.orders)!r})"


def dual_interleaved(local: int = 8, global_: int = 64) -> Schedule:
    """MambaCSR: [w_local, c_w_local, w_global, c_w_global], each with its reverse (2 paths per block)."""
    return Schedule([bidirectional(Windowed(size, column_major=col))
                     for size in (local, global_) for col in (False, True)])


def hv_interleaved(window: int = 64) -> Schedule:
    """Horizontal/vertical interleaving alone: row-major then column-major windows, each with its reverse."""
    return Schedule([bidirectional(Windowed(window, column_major=col)) for col in (False, True)])


def local_global_interleaved(local: int = 8, global_: int = 64) -> Schedule:
    """Hierarchical interleaving alone: local then global row-major windows, each with its reverse."""
    return Schedule([bidirectional(Windowed(size)) for size in (local, global_)])
