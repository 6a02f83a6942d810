"""BasicSR's residual block without normalisation, and the conv + residual-blocks trunk of BasicVSR-style models.

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/medvsr_arch.py`` (``ResidualBlockNoBN``, ``ConvResidualBlocks``):
``x + conv2(relu(conv1(x)))``; ``conv1``/``conv2`` are 3x3 convs, or (``depthwise_kernel`` = k) Sequential(depthwise
k x k, pointwise 1x1) (keys ``conv1.0``, ``conv1.1``); weights Kaiming-normal times 0.1, biases zero. The trunk is
``main`` = [Conv3x3(in -> out), LeakyReLU(0.1), Sequential(num_blocks blocks)].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["ConvResidualBlocks", "ResidualBlockNoBN"]


class ResidualBlockNoBN(nn.Module):
    """(B, dim, H, W) -> (B, dim, H, W). ``depthwise_kernel``: None for 3x3 convs, k for depthwise k x k + 1x1."""

    def __init__(self, dim: int, *, depthwise_kernel: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        dd = {"device": device, "dtype": dtype}

        def conv() -> nn.Module:
            if depthwise_kernel is None:
                return nn.Conv2d(dim, dim, 3, padding=1, **dd)
            return nn.Sequential(
                nn.Conv2d(dim, dim, depthwise_kernel, padding=depthwise_kernel // 2, groups=dim, **dd),
                nn.Conv2d(dim, dim, 1, **dd),
            )

        self.conv1, self.conv2 = conv(), conv()
        self.relu = nn.ReLU()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        return x + self.conv2(self.relu(self.conv1(x)))


class ConvResidualBlocks(nn.Module):
    """(B, in_channels, H, W) -> (B, out_channels, H, W): conv3x3 + LeakyReLU(0.1), then ``num_blocks`` blocks."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, *,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, device=device, dtype=dtype),
            nn.LeakyReLU(negative_slope=0.1),
            nn.Sequential(*(ResidualBlockNoBN(out_channels, device=device, dtype=dtype) for _ in range(num_blocks))),
        )

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.in_channels, type(self).__name__)
        return self.main(x)
