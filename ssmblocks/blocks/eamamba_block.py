"""The EAMamba block (the official ``MambaFormerBlock``) and its SimpleGate FFN.

Facts from daidaijr/EAMamba at ec13c77, ``models/eamamba.py``: x = x + MHSSM(norm1(x)); x = x + FFN(norm2(x)); the
norms are the Restormer 'WithBias' channel LayerNorm (per pixel over the channels, biased variance, eps 1e-5 inside
the square root: on channels-last tokens exactly ``nn.LayerNorm``; keys ``normX.body.weight/bias``); the 'Simple'
channel mixer is project_in 1x1 conv C -> int(C * f) (no bias), SimpleGate (first half * second half),
project_out 1x1 conv int(C * f) / 2 -> C (no bias).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._keys import keyed
from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mhssm import MHSSM
from ssmblocks.scan_orders import MultiHead

__all__ = ["EAMambaBlock", "SimpleGateFFN"]


class SimpleGateFFN(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): 1x1 conv to int(C * expansion), the halves multiplied, 1x1 conv back.

    The weights are 1x1 convs (official keys ``project_in`` / ``project_out``, shapes (h, C, 1, 1) and
    (C, h / 2, 1, 1)); on channels-last tokens they run as linear maps.
    """

    def __init__(self, dim: int, *, expansion: float = 2.0, bias: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        if hidden < 2 or hidden % 2:
            raise ValueError(f"SimpleGateFFN splits int(dim * expansion) channels in halves: it must be even and "
                             f">= 2, got {hidden} (dim {dim}, expansion {expansion})")
        self.dim = dim
        self.project_in = nn.Conv2d(dim, hidden, 1, bias=bias, device=device, dtype=dtype)
        self.project_out = nn.Conv2d(hidden // 2, dim, 1, bias=bias, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        value, gate = F.linear(x, self.project_in.weight.flatten(1), self.project_in.bias).chunk(2, dim=-1)
        return F.linear(value * gate, self.project_out.weight.flatten(1), self.project_out.bias)


class EAMambaBlock(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): MHSSM and the SimpleGate FFN, each pre-normalised, with plain skips.

    Args:
        dim: channels C (times ``expand``: a multiple of the scan's head count, 8 for EAMamba's).
        d_state, expand, d_conv, dt_rank, scan_order, conv_bias, dt_min, dt_max, dt_init_floor: the MHSSM mixer's
            options (see ``MHSSM``); proj_bias: its ``bias`` (in_proj / out_proj).
        ffn_expansion_factor: the FFN's hidden width int(dim * f) before the gate (U-Net 2, light SR 1).
        bias: biases of the FFN's 1x1 convs (the official ``bias``, False in every release).
        norm_eps: epsilon of both channel LayerNorms.
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 1.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: MultiHead | None = None, conv_bias: bool = True,
                 proj_bias: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 ffn_expansion_factor: float = 2.0, bias: bool = False, norm_eps: float = 1e-5,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.norm1 = keyed("body", nn.LayerNorm(dim, eps=norm_eps, **dd))
        self.mamba = MHSSM(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank,
                           scan_order=scan_order, conv_bias=conv_bias, bias=proj_bias, dt_min=dt_min, dt_max=dt_max,
                           dt_init_floor=dt_init_floor, **dd)
        self.norm2 = keyed("body", nn.LayerNorm(dim, eps=norm_eps, **dd))
        self.ffn = SimpleGateFFN(dim, expansion=ffn_expansion_factor, bias=bias, **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        x = x + self.mamba(self.norm1["body"](x))
        return x + self.ffn(self.norm2["body"](x))
