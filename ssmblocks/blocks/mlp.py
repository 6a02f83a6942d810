"""Mlp: the two-layer feed-forward of transformer blocks (fc1 -> GELU -> fc2), official key names fc1 / fc2."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """(..., C) -> (..., C): fc2(gelu(fc1(x))), hidden width ``hidden`` (both linear layers with bias).

    Args:
        dim: channels C.
        hidden: hidden width.
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, hidden: int, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))
