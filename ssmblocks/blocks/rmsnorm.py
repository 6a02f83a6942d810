"""Gated RMSNorm of Mamba-2: ``RMSNorm(x * silu(z))`` (or ``RMSNorm(x) * silu(z)``), optionally per channel group.

Facts from mamba_ssm ``mamba_ssm/ops/triton/layernorm_gated.py`` (``RMSNorm`` and ``rms_norm_ref``, as vendored by
CUHK-AIM-Group/MedVSR at 3421505): weight only (no bias, key ``weight``), eps 1e-5, the statistics in float32 for
lower-precision inputs, the result cast back to the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["RMSNormGated"]


class RMSNormGated(nn.Module):
    """(..., dim) -> (..., dim). ``forward(x, z=None)``; z has x's shape and gates with SiLU.

    Args:
        dim: channels (the last axis).
        eps: added to the mean square.
        norm_before_gate: False (MedVSR, Mamba-2's default in its blocks): normalise ``x * silu(z)``;
            True: normalise ``x``, then multiply by ``silu(z)``.
        group_size: normalise groups of this many consecutive channels separately (None: all channels).
    """

    def __init__(self, dim: int, *, eps: float = 1e-5, norm_before_gate: bool = False, group_size: int | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if group_size is not None and dim % group_size:
            raise ValueError(f"group_size {group_size} does not divide dim {dim}")
        self.dim, self.eps, self.norm_before_gate, self.group_size = dim, eps, norm_before_gate, group_size
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        check_layout(x, "(B, ..., C)", self.dim, type(self).__name__)
        dtype = x.dtype
        compute = torch.promote_types(dtype, torch.float32)
        x = x.to(compute)
        gate = None if z is None else F.silu(z.to(compute))
        if gate is not None and not self.norm_before_gate:
            x = x * gate
        groups = x.unflatten(-1, (-1, self.group_size)) if self.group_size else x.unsqueeze(-2)
        rstd = torch.rsqrt(groups.square().mean(dim=-1, keepdim=True) + self.eps)
        out = (groups * rstd).flatten(-2) * self.weight.to(compute)
        if gate is not None and self.norm_before_gate:
            out = out * gate
        return out.to(dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, norm_before_gate={self.norm_before_gate}, group_size={self.group_size}"
