"""BiAttn: a channel gate computed from the mean over tokens (MambaCSR applies it to every scan path).

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``BiAttn``) at f71199e: LayerNorm(C), mean over
the tokens, Linear C -> int(C * act_ratio) (act_ratio 0.125), GELU, Linear back to C, sigmoid; the gate multiplies
the un-normalised input. Submodule names (``norm``, ``global_reduce``, ``channel_select``) are the official ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["BiAttn"]


class BiAttn(nn.Module):
    """(..., N, C) -> (..., N, C): x * sigmoid(channel_select(gelu(global_reduce(mean_N(norm(x)))))).

    Args:
        dim: channels C.
        act_ratio: the hidden width is int(C * act_ratio).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, act_ratio: float = 0.125, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        hidden = int(dim * act_ratio)
        if hidden < 1:
            raise ValueError(f"BiAttn needs int(dim * act_ratio) >= 1, got dim {dim}, act_ratio {act_ratio}")
        dd = {"device": device, "dtype": dtype}
        self.norm = nn.LayerNorm(dim, **dd)
        self.global_reduce = nn.Linear(dim, hidden, **dd)
        self.channel_select = nn.Linear(hidden, dim, **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, ..., C)", self.dim, type(self).__name__)
        return x * self.gate(self.norm(x).mean(-2)).unsqueeze(-2)

    def gate(self, pooled: Tensor) -> Tensor:
        """(..., C) token mean of the normalised input -> (..., C) gate in (0, 1)."""
        return torch.sigmoid(self.channel_select(F.gelu(self.global_reduce(pooled))))

    def pooled_channel_first(self, x: Tensor, weights: Tensor) -> Tensor:
        """The weighted token mean of norm(x) for channel-first tokens, without transposing them.

        x: (..., C, L); weights: (..., 1, L), summing to 1 over the tokens that count (0 elsewhere). Returns (..., C).
        With per-token mean m and r = 1/sqrt(var + eps): sum_l w_l (x_l - m_l) r_l = x @ (w r) - sum_l w_l r_l m_l.
        """
        var, mean = torch.var_mean(x, dim=-2, keepdim=True, correction=0)             # (..., 1, L)
        scaled = weights * torch.rsqrt(var + self.norm.eps)
        pooled = (x @ scaled.transpose(-1, -2)).squeeze(-1) - (scaled * mean).sum(-1)
        return pooled * self.norm.weight + self.norm.bias
