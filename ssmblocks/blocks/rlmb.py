"""MambaCSR's residual local Mamba block (RLMB); ``ResidualGroup(dim, depth, block=RLMB, schedule=...)`` stacks them
into the paper's RLMG.

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``RLMBlock``, ``BasicLayer``,
``ResidualLocalGroup``) at f71199e, on channels-last tokens (B, H, W, C):
h = ln_1(x); x = x * skip_scale + LocalSS2D(h) + 0.01 * CAB(h); x = x * skip_scale2 + Mlp(ln_2(x)).
The CAB is the classic one with compress ratio 24 and squeeze factor 24; the Mlp hidden width is mlp_ratio * C;
LayerNorms eps 1e-5; the SS2D expansion is 2 whatever mlp_ratio is.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.cab import CAB
from ssmblocks.blocks.local_ss2d import LocalSS2D
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.scan_orders import ScanOrder

__all__ = ["RLMB"]


class RLMB(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): LocalSS2D plus a damped CAB on one LayerNorm, then an Mlp, with skip scales.

    Args:
        dim: channels C.
        d_state, expand, d_conv, scan_order: the LocalSS2D's (scan_order default: SS2D's cross-scan).
        mlp_ratio: the Mlp hidden width is int(mlp_ratio * C).
        cab_compress, cab_squeeze: the CAB's compress ratio and channel-attention squeeze factor.
        cab_scale: the factor on the CAB branch.
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 scan_order: ScanOrder | None = None, mlp_ratio: float = 2.0, cab_compress: int = 24,
                 cab_squeeze: int = 24, cab_scale: float = 0.01, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        dd = {"device": device, "dtype": dtype}
        self.cab_scale = cab_scale
        self.ln_1 = nn.LayerNorm(dim, **dd)
        self.self_attention = LocalSS2D(dim, d_state=d_state, expand=expand, d_conv=d_conv, scan_order=scan_order,
                                        **dd)
        self.skip_scale = nn.Parameter(torch.ones(dim, **dd))
        self.conv_block = CAB(dim, variant="classic", compress_ratio=cab_compress, squeeze_factor=cab_squeeze, **dd)
        self.ln_2 = nn.LayerNorm(dim, **dd)
        self.skip_scale2 = nn.Parameter(torch.ones(dim, **dd))
        self.mlp = GatedMLP(dim, hidden_features=int(mlp_ratio * dim), **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        h = self.ln_1(x)
        conv = self.conv_block(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = x * self.skip_scale + self.self_attention(h) + conv * self.cab_scale
        return x * self.skip_scale2 + self.mlp(self.ln_2(x))

