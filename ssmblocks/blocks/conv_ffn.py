"""The two feed-forward networks of MambaIRv2's AttentiveLayer: ConvFFN (classic) and the spatial-gate MLP (light).

Facts (csguoh/MambaIR at 33d7b34):

* ``ConvFFN`` (``basicsr/archs/mambairv2_arch.py``): fc1 C -> hidden -> GELU -> ``y + GELU(depthwise kxk conv(y))``
  (key ``dwconv.depthwise_conv.0``, padding k // 2, with bias) -> fc2 hidden -> C.
* ``GatedMLP`` + ``Gate`` (``basicsr/archs/mambairv2light_arch.py``): fc1 C -> hidden -> GELU -> halves
  [x1 | x2] -> ``x1 * sg.conv(sg.norm(x2))`` (LayerNorm(hidden / 2), then a depthwise 5x5 conv with bias; always
  5x5) -> fc2 hidden / 2 -> C. Here ``SpatialGateFFN``.

GELU is the exact (erf) one. Both take channels-last tokens (B, H, W, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._keys import keyed
from ssmblocks.blocks._layout import check_layout

__all__ = ["ConvFFN", "SpatialGateFFN"]


def _depthwise(channels: int, kernel_size: int, **dd) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, **dd)


class ConvFFN(nn.Module):
    """fc1 -> GELU -> (+ GELU(depthwise conv)) -> fc2. (B, H, W, dim) -> (B, H, W, dim).

    Args:
        dim: channels C.
        hidden_features: width of fc1's output.
        kernel_size: the depthwise conv's kernel (odd).
        device, dtype: factory arguments.
    """

    def __init__(self, dim: int, *, hidden_features: int, kernel_size: int = 5,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.fc1 = nn.Linear(dim, hidden_features, **dd)
        self.dwconv = keyed("depthwise_conv", nn.Sequential(_depthwise(hidden_features, kernel_size, **dd),
                                                            nn.GELU()))
        self.fc2 = nn.Linear(hidden_features, dim, **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        y = F.gelu(self.fc1(x))
        conv = self.dwconv["depthwise_conv"](y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(y + conv)


class SpatialGateFFN(nn.Module):
    """fc1 -> GELU -> [x1 | x2] -> x1 * dwconv5x5(LayerNorm(x2)) -> fc2 (the light model's ``GatedMLP``).
    (B, H, W, dim) -> (B, H, W, dim).

    Args:
        dim: channels C.
        hidden_features: width of fc1's output (even; fc2 takes half of it).
        device, dtype: factory arguments.
    """

    def __init__(self, dim: int, *, hidden_features: int, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if hidden_features % 2:
            raise ValueError(f"SpatialGateFFN needs an even hidden width, got {hidden_features}")
        dd = {"device": device, "dtype": dtype}
        half = hidden_features // 2
        self.dim = dim
        self.fc1 = nn.Linear(dim, hidden_features, **dd)
        self.sg = nn.ModuleDict({"norm": nn.LayerNorm(half, **dd), "conv": _depthwise(half, 5, **dd)})
        self.fc2 = nn.Linear(half, dim, **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        value, gate = F.gelu(self.fc1(x)).chunk(2, dim=-1)
        gate = self.sg["conv"](self.sg["norm"](gate).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(value * gate)
