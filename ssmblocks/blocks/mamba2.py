"""The Mamba-2 mixer on ``ssd_scan``: sequences (B, L, dim) -> (B, L, dim).

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/modules/mamba_vision.py`` (``Mamba2SimpleCat``, a variant of
mamba_ssm's ``Mamba2Simple``). Parameter names as there: ``in_proj`` (no bias) packing [z | x, B, C | dt],
``conv1d`` (causal depthwise over x, B, C), ``dt_bias``, ``A_log``, ``D`` (one per head), ``norm``, ``out_proj``.
Path: dt = softplus(dt + dt_bias); x, B, C = silu(causal_conv1d(xBC)); y = SSD(x, dt, A = -exp(A_log), B, C) + D x;
then ``output``:

* ``'gate'`` (Mamba-2): x and z have d_inner = expand * dim channels, y -> gated RMSNorm(y, z) -> out_proj.
* ``'cat'`` (MedVSR's ISSR block): x and z have d_inner / 2 channels, heads = d_inner / (2 headdim),
  y -> LayerNorm(cat[y, z]) (z not activated) -> out_proj.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._init import dt_bias_init
from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.rmsnorm import RMSNormGated
from ssmblocks.ops import ssd_scan

__all__ = ["MAMBA2_OUTPUTS", "Mamba2", "causal_conv1d", "init_ssd_parameters"]

MAMBA2_OUTPUTS = ("gate", "cat")


def init_ssd_parameters(module: nn.Module, nheads: int, *, A_init_range: tuple[float, float], dt_min: float,
                        dt_max: float, dt_init_floor: float, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None) -> None:
    """Adds Mamba-2's per-head ``dt_bias`` (inverse softplus of a log-uniform dt), ``A_log`` and ``D`` to ``module``."""
    if not 0 < A_init_range[0] <= A_init_range[1]:
        raise ValueError(f"A_init_range must be 0 < low <= high, got {A_init_range}")
    dt_bias = dt_bias_init((nheads,), dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor, device=device)
    module.dt_bias = nn.Parameter(dt_bias.to(dtype))
    module.A_log = nn.Parameter(torch.empty(nheads, device=device).uniform_(*A_init_range).log().to(dtype))
    module.D = nn.Parameter(torch.ones(nheads, device=device, dtype=dtype))


def causal_conv1d(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """Causal depthwise convolution of tokens (B, L, C) -> (B, L, C) (``conv`` pads k - 1 on both sides)."""
    return conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


class Mamba2(nn.Module):
    """Mamba-2 mixer. (B, L, dim) -> (B, L, dim); one causal pass over L.

    Args:
        dim: model channels.
        d_state: SSM state size N. d_conv: causal conv width. expand: d_inner = expand * dim.
        headdim: channels per head. ngroups: groups of B and C shared by heads.
        chunk_size: SSD chunk length. output: one of MAMBA2_OUTPUTS (module docstring).
        A_init_range, dt_min, dt_max, dt_init_floor: initialisation of A and dt.
        bias: biases of in_proj / out_proj. conv_bias: bias of conv1d.
    """

    def __init__(self, dim: int, *, d_state: int = 64, d_conv: int = 4, expand: int = 2, headdim: int = 64,
                 ngroups: int = 1, chunk_size: int = 256, output: str = "gate",
                 A_init_range: tuple[float, float] = (1, 16), dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, bias: bool = False, conv_bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        if output not in MAMBA2_OUTPUTS:
            raise ValueError(f"output must be one of {MAMBA2_OUTPUTS}, got {output!r}")
        d_inner = expand * dim
        inner = d_inner if output == "gate" else d_inner // 2
        if inner == 0 or inner % headdim:
            raise ValueError(f"the scanned width {inner} (expand * dim{'' if output == 'gate' else ' / 2'}) must be "
                             f"a positive multiple of headdim = {headdim}")
        self.nheads = inner // headdim
        if self.nheads % ngroups:
            raise ValueError(f"ngroups = {ngroups} must divide the {self.nheads} heads")
        self.d_state, self.headdim, self.ngroups, self.inner = d_state, headdim, ngroups, inner
        self.chunk_size, self.output = chunk_size, output
        dd = {"device": device, "dtype": dtype}
        conv_dim = inner + 2 * ngroups * d_state
        self.in_proj = nn.Linear(dim, inner + conv_dim + self.nheads, bias=bias, **dd)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=conv_bias,
                                **dd)
        init_ssd_parameters(self, self.nheads, A_init_range=A_init_range, dt_min=dt_min, dt_max=dt_max,
                            dt_init_floor=dt_init_floor, **dd)
        if output == "gate":
            self.norm = RMSNormGated(inner, eps=1e-5, norm_before_gate=False, **dd)
        else:
            self.norm = nn.LayerNorm(d_inner, eps=1e-5, **dd)
        self.out_proj = nn.Linear(d_inner, dim, bias=bias, **dd)

    def forward(self, u: Tensor) -> Tensor:
        check_layout(u, "(B, L, C)", self.dim, type(self).__name__)
        groups_state = self.ngroups * self.d_state
        z, xbc, dt = self.in_proj(u).split([self.inner, self.inner + 2 * groups_state, self.nheads], dim=-1)
        x, B, C = F.silu(causal_conv1d(self.conv1d, xbc)).split([self.inner, groups_state, groups_state], dim=-1)
        y = ssd_scan(x.unflatten(-1, (self.nheads, self.headdim)), dt, -torch.exp(self.A_log),
                     B.unflatten(-1, (self.ngroups, self.d_state)), C.unflatten(-1, (self.ngroups, self.d_state)),
                     self.chunk_size, D=self.D, dt_bias=self.dt_bias, dt_softplus=True).flatten(-2)
        y = self.norm(y, z) if self.output == "gate" else self.norm(torch.cat([y, z], dim=-1))
        return self.out_proj(y)
