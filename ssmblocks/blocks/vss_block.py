"""VSSBlock (the MambaIR paper's RSSB) and the residual group that stacks them.

Facts (shared/reference/mambair.md): tokens (B, H, W, C);
x = input * skip_scale + SS2D(ln_1(input)); x = x * skip_scale2 + CAB(ln_2(x)) (CAB in NCHW); LayerNorms eps 1e-5;
skip scales per channel, init 1. A residual group is x + conv3x3(blocks(x)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks.cab import CAB
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.scan_orders import ScanOrder

__all__ = ["ResidualGroup", "VSSBlock"]


class VSSBlock(nn.Module):
    """(B, H, W, C) -> (B, H, W, C): SS2D and a CAB, each pre-normalised, with learned per-channel skip scales."""

    def __init__(self, dim: int, d_state: int = 16, expand: float = 2.0, cab_variant: str = "classic",
                 scan_order: ScanOrder | None = None) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = SS2D(dim, d_state=d_state, expand=expand, scan_order=scan_order)
        self.skip_scale = nn.Parameter(torch.ones(dim))
        self.conv_blk = CAB(dim, cab_variant)
        self.ln_2 = nn.LayerNorm(dim)
        self.skip_scale2 = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.skip_scale + self.self_attention(self.ln_1(x))
        conv = self.conv_blk(self.ln_2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x * self.skip_scale2 + conv


class _Blocks(nn.Module):
    """Holds ``blocks`` so that keys read ``residual_group.blocks.{j}`` as in the official checkpoints."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class ResidualGroup(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + conv3x3(VSSBlocks(x)). ``block_kwargs`` go to every VSSBlock."""

    def __init__(self, dim: int, depth: int, **block_kwargs) -> None:
        super().__init__()
        self.residual_group = _Blocks([VSSBlock(dim, **block_kwargs) for _ in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.permute(0, 2, 3, 1)
        for block in self.residual_group.blocks:
            tokens = block(tokens)
        return x + self.conv(tokens.permute(0, 3, 1, 2))
