"""The channel MLP of the MedVSR blocks (timm's ``GatedMlp`` key layout ``fc1``/``fc2``), with an optional GLU gate.

Fact (timm ``timm/layers/mlp.py`` ``GatedMlp``, as MedVSR CUHK-AIM-Group/MedVSR 3421505 builds it without a
``gate_layer``): fc1 -> GELU (exact) -> fc2, i.e. a plain two-layer MLP.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["GatedMLP"]


class GatedMLP(nn.Module):
    """(..., dim) -> (..., out_features or dim).

    Args:
        dim: input channels.
        hidden_features: width of fc1's output.
        out_features: output channels (default ``dim``).
        gated: False: ``fc2(act(fc1(x)))`` (MedVSR); True: fc1's output is split into halves (value, gate) and
            ``fc2(value * act(gate))`` is returned (a GLU; fc2 then takes hidden_features / 2 channels).
        act_layer: the activation class (default exact GELU).
        bias: biases on fc1 and fc2.
    """

    def __init__(self, dim: int, *, hidden_features: int, out_features: int | None = None, gated: bool = False,
                 act_layer: type[nn.Module] = nn.GELU, bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        if gated and hidden_features % 2:
            raise ValueError(f"a gated MLP needs an even hidden width, got {hidden_features}")
        self.gated = gated
        self.fc1 = nn.Linear(dim, hidden_features, bias=bias, device=device, dtype=dtype)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features // 2 if gated else hidden_features, out_features or dim, bias=bias,
                             device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, ..., C)", self.dim, type(self).__name__)
        x = self.fc1(x)
        if self.gated:
            value, gate = x.chunk(2, dim=-1)
            return self.fc2(value * self.act(gate))
        return self.fc2(self.act(x))
