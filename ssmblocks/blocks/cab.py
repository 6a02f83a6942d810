"""Channel attention and the CAB variants of MambaIR (RCAN-style channel attention after a small conv stack).

Facts (shared/reference/mambair.md, shared/golden/README.md; MambaIR ``CAB`` at the named commits). All convs have
a bias. Submodule indices match the official ``cab.N`` keys:
- classic (and MambaIRUNet): [Conv3x3 C->C/3, GELU, Conv3x3 C/3->C, ChannelAttention(C, 30)];
- light, Oct-2024 (current): [Conv1x1 C->C/2, DWConv3x3 (C/2), GELU, Conv1x1 C/2->C, DWConv3x3 dilation 2 (C), CA];
- light, Mar-2024: the classic stack with C/6;
- light, Feb-2024: [DWConv3x3 (C), CA].
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["CAB", "CAB_VARIANTS", "ChannelAttention"]

CAB_VARIANTS = ("classic", "light_oct2024", "light_mar2024", "light_feb2024")


class ChannelAttention(nn.Module):
    """x * sigmoid(conv1x1(relu(conv1x1(avgpool(x))))), hidden C // squeeze_factor channels. (B, C, H, W)."""

    def __init__(self, channels: int, squeeze_factor: int = 30) -> None:
        super().__init__()
        hidden = channels // squeeze_factor
        if hidden < 1:
            raise ValueError(f"ChannelAttention needs channels >= squeeze_factor ({squeeze_factor}), got {channels}")
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel-attention block, (B, C, H, W) -> (B, C, H, W); ``variant`` is one of CAB_VARIANTS."""

    def __init__(self, channels: int, variant: str = "classic", compress_ratio: int = 3, squeeze_factor: int = 30):
        super().__init__()
        c = channels
        if variant == "classic":
            hidden = c // compress_ratio
            layers = [nn.Conv2d(c, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, c, 3, padding=1)]
        elif variant == "light_oct2024":
            h = c // 2
            layers = [nn.Conv2d(c, h, 1), nn.Conv2d(h, h, 3, padding=1, groups=h), nn.GELU(), nn.Conv2d(h, c, 1),
                      nn.Conv2d(c, c, 3, padding=2, dilation=2, groups=c)]
        elif variant == "light_mar2024":
            layers = [nn.Conv2d(c, c // 6, 3, padding=1), nn.GELU(), nn.Conv2d(c // 6, c, 3, padding=1)]
        elif variant == "light_feb2024":
            layers = [nn.Conv2d(c, c, 3, padding=1, groups=c)]
        else:
            raise ValueError(f"unknown CAB variant {variant!r}; choose from {CAB_VARIANTS}")
        self.variant = variant
        self.cab = nn.Sequential(*layers, ChannelAttention(c, squeeze_factor))

    def forward(self, x: Tensor) -> Tensor:
        return self.cab(x)
