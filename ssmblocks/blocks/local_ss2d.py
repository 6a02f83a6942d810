"""LocalSS2D: MambaCSR's local-window SS2D (``LW_SS2D``), an SS2D whose paths are gated one by one before summing.

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``LW_SS2D``, ``multi_selective_scan``,
``MultiScanVSSM``) at f71199e: the parameters and the path computation are SS2D's (in_proj C -> 2 d_inner without
bias, depthwise conv + SiLU, per-path x_proj / dt_projs / A_logs / Ds, selective scan with softplus); after the scan
every path is mapped back to (H, W) on its own (padding dropped), gated by ONE shared ``BiAttn`` (key
``multi_scan.attn``, its token mean over the H x W output pixels), and only then summed; out_norm LayerNorm(d_inner)
-> * SiLU(z) -> out_proj. MambaCSR gives each block a two-path order (a window order and its reverse, see
``ssmblocks.scan_orders.dual_interleaved``).

So it is an SS2D with one path merge (``BiAttnMerge``, see ``ssmblocks.blocks.path_merge``) held under the official
key ``multi_scan``.
"""

from __future__ import annotations

import torch

from ssmblocks.blocks.path_merge import BiAttnMerge
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.scan_orders import ScanOrder

__all__ = ["LocalSS2D"]


class LocalSS2D(SS2D):
    """SS2D with a BiAttn gate on every path before the paths are summed. Input and output (B, H, W, C).

    Args:
        dim: channels C.
        d_state, expand, d_conv, dt_rank, conv_bias, bias: as SS2D (d_inner = int(expand * dim)).
        scan_order: any 2-D scan order; K = its number of paths (MambaCSR: ``bidirectional(Windowed(8))`` and the
            other entries of ``dual_interleaved()``).
        attn_ratio: the BiAttn hidden width is int(d_inner * attn_ratio).
        device, dtype: factory arguments for the parameters.
    """

    path_merge_key = "multi_scan"

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: ScanOrder | None = None, conv_bias: bool = True,
                 bias: bool = False, attn_ratio: float = 0.125, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        super().__init__(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank, scan_order=scan_order,
                         conv_bias=conv_bias, bias=bias,
                         path_merge=BiAttnMerge(int(expand * dim), act_ratio=attn_ratio, **dd), **dd)
