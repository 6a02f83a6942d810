"""VSSBlock: the MambaIR paper's residual state-space block (RSSB).

Facts from csguoh/MambaIR ``basicsr/archs/mambair_arch.py`` (``VSSBlock``) at 33d7b34: tokens (B, H, W, C);
x = input * skip_scale + SS2D(ln_1(input)); x = x * skip_scale2 + CAB(ln_2(x)) (CAB in NCHW); LayerNorms eps 1e-5
(the ``partial(eps=1e-6)`` default is overridden by ``norm_layer=nn.LayerNorm``); skip scales per channel, init 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.cab import CAB
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.scan_orders import ScanOrder

__all__ = ["VSSBlock"]


class VSSBlock(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): SS2D and a CAB, each pre-normalised, with learned per-channel skip scales.

    Args:
        dim: channels C.
        d_state, expand, d_conv, dt_rank, scan_order, conv_bias, bias, dt_min, dt_max, dt_init_floor: the SS2D
            mixer's options (see ``SS2D``).
        cab_variant, compress_ratio, squeeze_factor: the CAB's options (see ``CAB``); small ``dim`` works (the
            hidden widths are at least 1).
        norm_eps: epsilon of both LayerNorms.
        device, dtype: factory arguments for the parameters.

    The CAB runs on the channels-last tokens viewed as (B, C, H, W) (channels-last strides, no copy).
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: ScanOrder | None = None, conv_bias: bool = True,
                 bias: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 cab_variant: str = "classic", compress_ratio: int | None = None,
                 squeeze_factor: int = 30, norm_eps: float = 1e-5, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        dd = {"device": device, "dtype": dtype}
        self.ln_1 = nn.LayerNorm(dim, eps=norm_eps, **dd)
        self.self_attention = SS2D(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank,
                                   scan_order=scan_order, conv_bias=conv_bias, bias=bias, dt_min=dt_min, dt_max=dt_max,
                                   dt_init_floor=dt_init_floor, **dd)
        self.skip_scale = nn.Parameter(torch.ones(dim, **dd))
        self.conv_blk = CAB(dim, variant=cab_variant, compress_ratio=compress_ratio, squeeze_factor=squeeze_factor,
                            **dd)
        self.ln_2 = nn.LayerNorm(dim, eps=norm_eps, **dd)
        self.skip_scale2 = nn.Parameter(torch.ones(dim, **dd))

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        # under no_grad the branch outputs are this block's own tensors: accumulate the skips into them in place
        inplace = not torch.is_grad_enabled()
        h = self.self_attention(self.ln_1(x))
        x = h.addcmul_(x, self.skip_scale) if inplace else torch.addcmul(h, x, self.skip_scale)
        c = self.conv_blk(self.ln_2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return c.addcmul_(x, self.skip_scale2) if inplace else torch.addcmul(c, x, self.skip_scale2)
