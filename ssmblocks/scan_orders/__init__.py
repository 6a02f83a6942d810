"""Scan orders: how a feature map (B, C, *spatial) becomes K one-dimensional paths (B, K, C, L) and back.

Pure index logic, no parameters; any SSM mixer takes one. Index tables live in one shared, bounded cache
(``index_cache``: LRU by bytes, ``index_cache.max_bytes``, ``index_cache.clear()``) and are built inside the graph
under torch.compile / torch.export, so whole models compile and export with dynamic H, W, T.

    order = cross_scan(4)                 # MambaIR / VMamba: [row, col, row reversed, col reversed]
    paths = order.scan(x)                 # (B, 4, C, H*W)
    y = order.merge_sum(paths, x.shape[2:])
    heads = eamamba_scan().scan(x)        # EAMamba: 8 channel groups, each in its own order: (B, 8, C / 8, H*W)
    image = render(order, (8, 8))         # a picture of the four paths

See docs/scan_orders.md for pictures of every order.
"""

from ssmblocks.scan_orders.base import Concat, Reversed, ScanOrder, concat
from ssmblocks.scan_orders.cache import DEFAULT_MAX_BYTES, IndexCache, index_cache
from ssmblocks.scan_orders.cross_scale import CrossScale, cross_scale_scan
from ssmblocks.scan_orders.diagonal import AntiDiagonal, Diagonal
from ssmblocks.scan_orders.multihead import MultiHead, eamamba_scan
from ssmblocks.scan_orders.nested import NestedS, mair_schedule, nested_s_scan
from ssmblocks.scan_orders.planar import (
    ColMajor,
    RowMajor,
    Windowed,
    bidirectional,
    blocked_walk,
    cross_scan,
    mambacsr_order,
)
from ssmblocks.scan_orders.render import render, save_png
from ssmblocks.scan_orders.schedules import Schedule, dual_interleaved, hv_interleaved, local_global_interleaved
from ssmblocks.scan_orders.semantic import TIE_ORDERS, RoutedOrder, SemanticOrder
from ssmblocks.scan_orders.temporal import FrameMajor, TimeMajor, s2t_scan, t2s_scan
from ssmblocks.scan_orders.windows import WindowPartition, medvsr_windows

__all__ = [
    "DEFAULT_MAX_BYTES",
    "TIE_ORDERS",
    "AntiDiagonal",
    "ColMajor",
    "Concat",
    "CrossScale",
    "Diagonal",
    "FrameMajor",
    "IndexCache",
    "MultiHead",
    "NestedS",
    "Reversed",
    "RoutedOrder",
    "RowMajor",
    "ScanOrder",
    "Schedule",
    "SemanticOrder",
    "TimeMajor",
    "WindowPartition",
    "Windowed",
    "bidirectional",
    "blocked_walk",
    "concat",
    "cross_scale_scan",
    "cross_scan",
    "dual_interleaved",
    "eamamba_scan",
    "hv_interleaved",
    "index_cache",
    "local_global_interleaved",
    "mair_schedule",
    "mambacsr_order",
    "medvsr_windows",
    "nested_s_scan",
    "render",
    "s2t_scan",
    "save_png",
    "t2s_scan",
]
