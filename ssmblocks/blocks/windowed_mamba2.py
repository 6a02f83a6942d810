"""MedVSR's ISSR Mamba layer: pre-norm Mamba-2 blocks over non-overlapping windows of a feature map.

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/modules/mamba_vision.py`` (``MambaVisionLayer_Ours`` with
``Block`` and ``Mamba2SimpleCat``): the map is zero-padded to multiples of the window and split into windows (one
sequence each, row-major); each block is ``x = x + mixer(norm1(x)); x = x + mlp(norm2(x))`` (LayerNorm eps 1e-5,
MLP width ``mlp_ratio * dim``) with a Mamba-2 mixer of output ``'cat'`` (d_conv 3, expand 1, headdim 16).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mamba2 import Mamba2
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.scan_orders import WindowPartition

__all__ = ["Mamba2Block", "WindowedMamba2Layer"]


class Mamba2Block(nn.Module):
    """Tokens (B, L, dim) -> (B, L, dim): pre-norm Mamba-2 mixer and MLP, each with a residual."""

    def __init__(self, dim: int, *, mlp_ratio: float = 2.0, d_state: int = 16, d_conv: int = 3, expand: int = 1,
                 headdim: int = 16, ngroups: int = 1, chunk_size: int = 256, output: str = "cat",
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        dd = {"device": device, "dtype": dtype}
        self.norm1 = nn.LayerNorm(dim, **dd)
        self.mixer = Mamba2(dim, d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim, ngroups=ngroups,
                            chunk_size=chunk_size, output=output, **dd)
        self.norm2 = nn.LayerNorm(dim, **dd)
        self.mlp = GatedMLP(dim, hidden_features=int(dim * mlp_ratio), **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, L, C)", self.dim, type(self).__name__)
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class WindowedMamba2Layer(nn.Module):
    """(B, dim, H, W) -> (B, dim, H, W): ``depth`` Mamba2Blocks on window_size x window_size windows.

    Args:
        dim: channels. depth: number of blocks (``blocks.{i}``). window_size: window side.
        mlp_ratio, d_state, d_conv, expand, headdim, ngroups, chunk_size, output: of each Mamba2Block.
    """

    def __init__(self, dim: int, depth: int = 1, *, window_size: int = 16, mlp_ratio: float = 2.0, d_state: int = 16,
                 d_conv: int = 3, expand: int = 1, headdim: int = 16, ngroups: int = 1, chunk_size: int = 256,
                 output: str = "cat", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.order = WindowPartition(window_size)
        self.blocks = nn.ModuleList(
            Mamba2Block(dim, mlp_ratio=mlp_ratio, d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim,
                        ngroups=ngroups, chunk_size=chunk_size, output=output, device=device, dtype=dtype)
            for _ in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        tokens = self.order.to_tokens(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.order.from_tokens(tokens, x.shape[2:])
