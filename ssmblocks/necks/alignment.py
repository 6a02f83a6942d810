"""Second-order flow-guided deformable alignment (BasicVSR++ / MedVSR): a DCNv2 whose offsets are flow plus a
bounded residue predicted from the features and the flows.

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/medvsr_arch.py`` (``SecondOrderDeformableAlignment``, a BasicSR
``ModulatedDeformConvPack``): parameters ``weight`` (C_out, C_in / groups, k, k), ``bias`` and ``conv_offset`` =
Conv(3 C_out + 4 -> C_out), LReLU(0.1), Conv, LReLU, Conv, LReLU, Conv(C_out -> 3 k^2 G) (last one zero-initialised).
Forward: ``o1, o2, m = chunk(conv_offset(cat[extra, flow_1, flow_2]), 3)``; offsets ``R tanh(cat[o1, o2])``, the
first half plus ``flow_1.flip(1)`` (x, y -> y, x) repeated per tap, the second half plus ``flow_2.flip(1)``;
mask ``sigmoid(m)``; ``deform_conv2d(x, offsets, weight, bias, stride 1, padding, mask)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssmblocks.ops import deform_conv2d

__all__ = ["SecondOrderDeformableAlignment"]


class SecondOrderDeformableAlignment(nn.Module):
    """``forward(x, extra, flow_1, flow_2)`` -> (B, out_channels, H, W).

    x (B, in_channels, H, W): the features to align (two frames stacked on channels); extra (B, 3 out_channels,
    H, W): the conditioning features; flow_1, flow_2 (B, 2, H, W): flows (x, y) to the two frames.

    Args:
        in_channels, out_channels, kernel_size, padding: of the deformable convolution (stride 1).
        deformable_groups: offset groups G (must divide in_channels and 9 G must be even).
        max_residue_magnitude: bound R of the learned offset residue.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int = 3, padding: int = 1,
                 deformable_groups: int = 16, max_residue_magnitude: float = 10.0,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if in_channels % deformable_groups:
            raise ValueError(f"deformable_groups = {deformable_groups} must divide in_channels = {in_channels}")
        dd = {"device": device, "dtype": dtype}
        self.padding, self.max_residue_magnitude = padding, max_residue_magnitude
        self.taps = kernel_size * kernel_size * deformable_groups
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size, **dd)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_channels, **dd))
        act = nn.LeakyReLU(negative_slope=0.1)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * out_channels + 4, out_channels, 3, padding=1, **dd), act,
            nn.Conv2d(out_channels, out_channels, 3, padding=1, **dd), act,
            nn.Conv2d(out_channels, out_channels, 3, padding=1, **dd), act,
            nn.Conv2d(out_channels, 3 * self.taps, 3, padding=1, **dd),
        )
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, x: Tensor, extra: Tensor, flow_1: Tensor, flow_2: Tensor) -> Tensor:
        o1, o2, mask = torch.chunk(self.conv_offset(torch.cat([extra, flow_1, flow_2], dim=1)), 3, dim=1)
        residue = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        residue_1, residue_2 = torch.chunk(residue, 2, dim=1)
        repeats = residue_1.shape[1] // 2
        offset = torch.cat([residue_1 + flow_1.flip(1).repeat(1, repeats, 1, 1),
                            residue_2 + flow_2.flip(1).repeat(1, repeats, 1, 1)], dim=1)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.padding, mask=torch.sigmoid(mask))
