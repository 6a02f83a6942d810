"""ViMM, the DVMSR paper's vision Mamba module; ``ResidualGroup(dim, depth, block=ViMM, ...)`` stacks them into the
paper's RSSB.

Facts from nathan66666/DVMSR (MIT) ``models/team07_DVMSR.py`` at 86663ce: a block holds ``mixer`` (mamba_ssm's
``Mamba``) and ``norm`` (LayerNorm, eps 1e-5) and computes Mamba(LayerNorm(x)) on tokens; the group (code name
RMMB) holds ``residual_group.blocks.{j}`` and a 3x3 ``conv`` and computes x + conv3x3(blocks(x)).

The general ViMM block has the pre-norm skip, x + Mamba(LayerNorm(x)). The released DVMSR weights were trained
without it (the official layer passes the map size where the block expects its residual, so each block returns
only Mamba(LayerNorm(x))); ``skip=False`` gives that, and the DVMSR zoo model names it as its ``no_block_skip``
option.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mamba import Mamba

__all__ = ["ViMM"]


class ViMM(nn.Module):
    """(B, *spatial, C) -> (B, *spatial, C): x + Mamba(LayerNorm(x)), or Mamba(LayerNorm(x)) with ``skip=False``.

    ``mixer_kwargs`` are the options of ``Mamba`` (d_state, d_conv, expand, dt_rank, scan_order, ...).
    """

    def __init__(self, dim: int, *, skip: bool = True, norm_eps: float = 1e-5,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 **mixer_kwargs: Any) -> None:
        super().__init__()
        self.dim = dim
        self.skip = skip
        self.mixer = Mamba(dim, device=device, dtype=dtype, **mixer_kwargs)
        self.norm = nn.LayerNorm(dim, eps=norm_eps, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, ..., C)", self.dim, type(self).__name__)
        out = self.mixer(self.norm(x))
        return x + out if self.skip else out

