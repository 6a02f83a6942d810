"""Position-aligned cross-scale fusion (MambaCSR's ``Cross_SS2D``): a fine map scanned together with its x0.5 map.

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``Cross_SS2D``, ``multi_selective_scan_cross``)
and ``basicsr/archs/mamba/local_scan.py`` (``cross_scale_scan``) at f71199e, on channels-last tokens:
fine: ln_1 -> in_proj C -> 2 d_inner -> x, z; x -> depthwise conv ``conv2d`` + SiLU. Coarse: NO LayerNorm ->
in_proj_down -> its x half (its z half is unused) -> depthwise conv ``conv2d2`` + SiLU. Both streams are scanned as
one sequence by the cross-scale order (``ssmblocks.scan_orders.cross_scale_scan``: K = 4 paths, every coarse token
right before the four fine tokens it covers), selective scan with per-path parameters, only the fine tokens are
mapped back, each path is gated by the shared BiAttn, summed, out_norm, * SiLU(z), out_proj;
out = x * skip_scale + that; out = out * skip_scale2 + Mlp(ln_2(out)) with hidden width 4C. The official module
builds its SSM with d_state 16 whatever the model's d_state. Fine H and W must be multiples of the order's window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks.local_ss2d import LocalSS2D
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.scan_orders import ScanOrder, cross_scale_scan

__all__ = ["CrossScaleFusion"]


class CrossScaleFusion(LocalSS2D):
    """fine (B, H, W, C), coarse (B, H/2, W/2, C) -> fine (B, H, W, C).

    Args:
        dim: channels C of both maps.
        d_state, expand, d_conv, dt_rank, conv_bias, bias, attn_ratio: as LocalSS2D.
        scan_order: an order scanning (fine, coarse) together (default ``cross_scale_scan(16)``).
        mlp_ratio: the Mlp hidden width is int(mlp_ratio * C).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: ScanOrder | None = None, conv_bias: bool = True,
                 bias: bool = False, attn_ratio: float = 0.125, mlp_ratio: float = 4.0,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        super().__init__(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank,
                         scan_order=scan_order if scan_order is not None else cross_scale_scan(16),
                         conv_bias=conv_bias, bias=bias, attn_ratio=attn_ratio, **dd)
        self.in_proj_down = nn.Linear(dim, 2 * self.d_inner, bias=bias, **dd)
        self.conv2d2 = nn.Conv2d(self.d_inner, self.d_inner, d_conv, padding=(d_conv - 1) // 2, groups=self.d_inner,
                                 bias=conv_bias, **dd)
        self.ln_1 = nn.LayerNorm(dim, **dd)
        self.ln_2 = nn.LayerNorm(dim, **dd)
        self.mlp = GatedMLP(dim, hidden_features=int(mlp_ratio * dim), **dd)
        self.skip_scale = nn.Parameter(torch.ones(dim, **dd))
        self.skip_scale2 = nn.Parameter(torch.ones(dim, **dd))
        nn.init.trunc_normal_(self.in_proj_down.weight, std=0.02)
        if self.in_proj_down.bias is not None:
            nn.init.zeros_(self.in_proj_down.bias)

    def forward(self, x: Tensor, coarse: Tensor) -> Tensor:
        """fine (B, H, W, C), coarse (B, H/2, W/2, C) -> (B, H, W, C)."""
        u, z = self.project(self.ln_1(x), self.in_proj)
        u = F.silu(self.conv2d(u.permute(0, 3, 1, 2)))                                 # (B, d_inner, H, W)
        d = self.project(coarse, self.in_proj_down)[0]                                 # its z half is unused
        d = F.silu(self.conv2d2(d.permute(0, 3, 1, 2)))                               # (B, d_inner, H/2, W/2)
        y = self.scan_paths(self.scan_order.scan(u, d))
        y = self.output(self.merge_paths(y, tuple(x.shape[1:3])), z)
        out = x * self.skip_scale + y
        return out * self.skip_scale2 + self.mlp(self.ln_2(out))
