"""MaIR's mixer and residual block: SS2D over the nested S-shaped scan, merged by sequence shuffle attention (SSA).

Facts (XLearning-SCU/2025-CVPR-MaIR at 2fb433e, ``basicsr/archs/mair_arch.py``: ``VMM``, ``RMB``;
``realDenoising/basicsr/models/archs/mairunet_arch.py``: ``LoSh2D``, ``VSSBlock``; as summarised in
shared/reference/mair.md): the mixer (key ``self_attention``) is SS2D's computation — in_proj C -> 2 d_inner without
bias, depthwise 3x3 conv with bias + SiLU, four NSS sequences with per-sequence x_proj / dt_projs / A_logs / Ds,
selective scan with softplus — whose four un-scanned outputs are merged by SSA (key ``gating``) instead of summed,
then out_norm LayerNorm(d_inner) * SiLU(z) -> out_proj (no bias); d_inner = int(ssm_ratio * C), dt_rank = ceil(C/16).
The block: x = in * skip_scale + mixer(ln_1(in)); x = x * skip_scale2 + MLP(ln_2(x)), the MLP fc1 -> GELU (erf) ->
fc2 of width int(C * mlp_ratio) (key ``conv_blk`` in MaIR, ``mlp`` in the U-Net), LayerNorms eps 1e-5.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.ssa import SSA
from ssmblocks.scan_orders import ScanOrder, nested_s_scan

__all__ = ["MaIRBlock", "MaIRMixer"]


class MaIRMixer(SS2D):
    """SS2D with the SSA merge under the official key ``gating``. (B, H, W, C) -> (B, H, W, C).

    Args:
        dim: channels C.
        d_state: SSM state size. expand: d_inner = int(expand * C) (MaIR's ``ssm_ratio``).
        scan_order: any 2-D order (default the plain 4-sequence NSS with stripes of 4); K = its paths.
        d_conv, dt_rank, conv_bias, bias: as SS2D (MaIR: 3, ceil(C / 16), True, False).
        device, dtype: factory arguments for the parameters.
    """

    path_merge_key = "gating"

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, scan_order: ScanOrder | None = None,
                 d_conv: int = 3, dt_rank: int | str = "auto", conv_bias: bool = True, bias: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        order = scan_order if scan_order is not None else nested_s_scan(4)
        dd = {"device": device, "dtype": dtype}
        super().__init__(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank, scan_order=order,
                         conv_bias=conv_bias, bias=bias,
                         path_merge=SSA(int(expand * dim), num_paths=order.num_paths, **dd), **dd)


class MaIRBlock(nn.Module):
    """MaIR's residual Mamba block (RMB; the U-Net's VSSBlock): (B, H, W, C) -> (B, H, W, C).

    Args:
        dim: channels C.
        d_state, expand (``ssm_ratio``), scan_order: the mixer's (see ``MaIRMixer``).
        mlp_ratio: MLP hidden width int(C * mlp_ratio).
        mlp_key: the MLP's key ('conv_blk' in MaIR, 'mlp' in MaIRUNet).
        norm_eps: epsilon of both LayerNorms.
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, scan_order: ScanOrder | None = None,
                 mlp_ratio: float = 2.0, mlp_key: str = "conv_blk", norm_eps: float = 1e-5,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dim, self.mlp_key = dim, mlp_key
        self.ln_1 = nn.LayerNorm(dim, eps=norm_eps, **dd)
        self.self_attention = MaIRMixer(dim, d_state=d_state, expand=expand, scan_order=scan_order, **dd)
        self.skip_scale = nn.Parameter(torch.ones(dim, **dd))
        self.ln_2 = nn.LayerNorm(dim, eps=norm_eps, **dd)
        self.add_module(mlp_key, GatedMLP(dim, hidden_features=int(dim * mlp_ratio), **dd))
        self.skip_scale2 = nn.Parameter(torch.ones(dim, **dd))

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        inplace = not torch.is_grad_enabled()   # the branch outputs are this block's own tensors under no_grad
        h = self.self_attention(self.ln_1(x))
        x = h.addcmul_(x, self.skip_scale) if inplace else torch.addcmul(h, x, self.skip_scale)
        m = self._modules[self.mlp_key](self.ln_2(x))
        return m.addcmul_(x, self.skip_scale2) if inplace else torch.addcmul(m, x, self.skip_scale2)
