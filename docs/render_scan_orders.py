"""Regenerates the pictures in docs/images/ used by docs/scan_orders.md: python docs/render_scan_orders.py"""

from pathlib import Path

import torch

from ssmblocks.scan_orders import (
    AntiDiagonal,
    CrossScale,
    Diagonal,
    SemanticOrder,
    Windowed,
    bidirectional,
    concat,
    cross_scan,
    dual_interleaved,
    eamamba_scan,
    medvsr_windows,
    nested_s_scan,
    render,
    s2t_scan,
    save_png,
    t2s_scan,
)

PICTURES = {
    "cross_scan": (cross_scan(4), (8, 8), {}),
    "windowed_w4_pair": (bidirectional(Windowed(4)), (8, 12), {}),
    "windowed_c_w4_pair": (bidirectional(Windowed(4, column_major=True)), (8, 12), {}),
    "windowed_w4_padding": (Windowed(4), (6, 10), {}),
    "cross_scale_row": (CrossScale(8), (16, 16), {"trace_steps": 40}),
    "cross_scale_col": (CrossScale(8, column_major=True), (16, 16), {"trace_steps": 40}),
    "cross_scale_row_flip": (CrossScale(8, flip=True), (16, 16), {"trace_steps": 40}),
    "schedule_dual_interleaved": (dual_interleaved(local=4, global_=8), (8, 8), {"cell": 8}),
    "s2t": (s2t_scan(), (3, 4, 4), {"trace_steps": 20}),
    "t2s": (t2s_scan(), (3, 4, 4), {"trace_steps": 8}),
    "medvsr_windows": (medvsr_windows(), (20, 36), {"cell": 6, "trace_steps": 40}),
    # MambaIRv2's order is data-dependent: drawn for one routing of an 8x12 map into 3 classes (diagonal bands)
    "semantic_routing": (SemanticOrder(3).route((torch.arange(8)[:, None] // 3 + torch.arange(12)[None, :] // 4)
                                                .remainder(3)[None]), (8, 12), {"trace_steps": 30}),
    "diagonals": (concat(Diagonal(), AntiDiagonal()), (6, 8), {"trace_steps": 20}),
    "eamamba_heads": (eamamba_scan(), (6, 8), {"trace_steps": 12}),
    "mair_nss": (nested_s_scan(4), (8, 10), {"trace_steps": 40}),
    "mair_nss_shifted": (nested_s_scan(4, shifted=True), (8, 10), {"trace_steps": 40}),
}

if __name__ == "__main__":
    out = Path(__file__).with_name("images")
    out.mkdir(exist_ok=True)
    for name, (order, shape, options) in PICTURES.items():
        save_png(render(order, shape, **options), out / f"{name}.png")
        print(f"docs/images/{name}.png  {order!r} on {shape}")
