"""Upsamplers (SwinIR / MambaIR heads). Layouts (B, C, H, W).

Facts (csguoh/MambaIR at 33d7b34, ``basicsr/archs/mambair_arch.py`` ``Upsample`` / ``UpsampleOneStep``):
``pixelshuffle`` = [Conv3x3 F -> 4F, PixelShuffle(2)] x log2(s) for s = 2^n, or [Conv3x3 F -> 9F, PixelShuffle(3)] for s
= 3 (keys upsample.0, upsample.2, ...); ``pixelshuffledirect`` = one Conv3x3 C -> out * s^2 + PixelShuffle(s) (key
upsample.0).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PixelShuffleDirect", "PixelShuffleUpsample"]


class PixelShuffleUpsample(nn.Sequential):
    """x``scale`` (2^n or 3) by repeated conv + pixel shuffle, keeping ``channels``."""

    def __init__(self, scale: int, channels: int, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0 and scale > 1:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(channels, 4 * channels, 3, padding=1, **dd), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(channels, 9 * channels, 3, padding=1, **dd), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"pixelshuffle upsampling supports scales 2^n and 3, got {scale}")
        super().__init__(*layers)


class PixelShuffleDirect(nn.Sequential):
    """One conv to ``out_channels * scale**2`` channels, then PixelShuffle(scale)."""

    def __init__(self, scale: int, in_channels: int, out_channels: int, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        conv = nn.Conv2d(in_channels, out_channels * scale**2, 3, padding=1, device=device, dtype=dtype)
        super().__init__(conv, nn.PixelShuffle(scale))
