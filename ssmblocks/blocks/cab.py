"""Channel attention and the CAB variants of MambaIR (RCAN-style channel attention after a small conv stack).

Facts from csguoh/MambaIR ``basicsr/archs/mambair_arch.py`` (``CAB``, ``ChannelAttention``) at 33d7b34 (the
Oct-2024 light CAB), 06dc6cd (Mar-2024) and 3ad5892 (Feb-2024). All convs have a bias. Submodule indices match the
official ``cab.N`` keys:
- classic (and MambaIRUNet): [Conv3x3 C->C/r, GELU, Conv3x3 C/r->C, ChannelAttention(C, 30)], r = 3;
- light, Oct-2024 (current): [Conv1x1 C->C/r, DWConv3x3 (C/r), GELU, Conv1x1 C/r->C, DWConv3x3 dilation 2 (C), CA],
  r = 2;
- light, Mar-2024: the classic stack with r = 6;
- light, Feb-2024: [DWConv3x3 (C), CA].
Hidden widths are ``max(1, C // ratio)``: the official code builds 0-channel convs below the ratio and fails, here
small blocks (``CAB(16)``) work; at the official sizes (C >= ratio) the widths are the official ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["CAB", "CAB_VARIANTS", "ChannelAttention"]

CAB_VARIANTS = ("classic", "light_oct2024", "light_mar2024", "light_feb2024")
_DEFAULT_COMPRESS = {"classic": 3, "light_oct2024": 2, "light_mar2024": 6, "light_feb2024": 1}


def _hidden(channels: int, ratio: int) -> int:
    if ratio < 1:
        raise ValueError(f"channel ratios must be >= 1, got {ratio}")
    return max(1, channels // ratio)


class ChannelAttention(nn.Module):
    """x * sigmoid(conv1x1(relu(conv1x1(avgpool(x))))) with max(1, C // squeeze_factor) hidden channels.

    Input and output (B, C, H, W).
    """

    def __init__(self, channels: int, *, squeeze_factor: int = 30, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = channels
        dd = {"device": device, "dtype": dtype}
        hidden = _hidden(channels, squeeze_factor)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1, **dd), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, **dd), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel-attention block, (B, C, H, W) -> (B, C, H, W).

    Args:
        dim: channels C.
        variant: one of CAB_VARIANTS.
        compress_ratio: the conv stack's hidden width is C // compress_ratio (default per variant: classic 3,
            light_oct2024 2, light_mar2024 6; light_feb2024 has no hidden width).
        squeeze_factor: the channel attention's hidden width is C // squeeze_factor.
    """

    def __init__(self, dim: int, *, variant: str = "classic", compress_ratio: int | None = None,
                 squeeze_factor: int = 30, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        if variant not in CAB_VARIANTS:
            raise ValueError(f"unknown CAB variant {variant!r}; choose from {CAB_VARIANTS}")
        dd = {"device": device, "dtype": dtype}
        c = dim
        h = _hidden(c, _DEFAULT_COMPRESS[variant] if compress_ratio is None else compress_ratio)
        if variant in ("classic", "light_mar2024"):
            layers = [nn.Conv2d(c, h, 3, padding=1, **dd), nn.GELU(), nn.Conv2d(h, c, 3, padding=1, **dd)]
        elif variant == "light_oct2024":
            layers = [nn.Conv2d(c, h, 1, **dd), nn.Conv2d(h, h, 3, padding=1, groups=h, **dd), nn.GELU(),
                      nn.Conv2d(h, c, 1, **dd), nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=c, **dd)]
        else:
            layers = [nn.Conv2d(c, c, 3, padding=1, groups=c, **dd)]
        self.variant = variant
        self.cab = nn.Sequential(*layers, ChannelAttention(c, squeeze_factor=squeeze_factor, **dd))

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        return self.cab(x)
