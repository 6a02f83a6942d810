"""The cross state-space mixer (MedVSR): a Mamba-2 whose C (the "query") comes from a second, support stream.

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/modules/mamba_vision.py`` (``CrossMamba2Simple``, final op
``gate``). From the target tokens u: ``in_proj`` (no bias) -> z (d_inner) | x, B (d_inner + G N) | dt (heads); from
the support tokens s: ``in_proj_b`` (no bias) -> C (G N). With ``share_conv1d`` one causal depthwise ``conv1d``
runs over cat[x, B, C]; else ``conv1d`` over x, B and ``conv1d_b`` over C; SiLU after each. With ``pe_window`` = w
the sequence is one w x w window, row-major, and C passes a depthwise 3x3 convolution ``pe`` (no bias, no
residual) on that window. Then y = SSD(x, dt, A, B, C) + D x -> gated RMSNorm(y, z) -> out_proj.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mamba2 import causal_conv1d, init_ssd_parameters
from ssmblocks.blocks.rmsnorm import RMSNormGated
from ssmblocks.ops import ssd_scan

__all__ = ["CrossMamba2"]


class CrossMamba2(nn.Module):
    """``forward(u, support)``: u (B, L, dim), support (B, L, support_dim) -> (B, L, dim).

    Args:
        dim: target channels. support_dim: support channels (default dim).
        d_state, d_conv, expand, headdim, ngroups, chunk_size: as ``Mamba2`` (heads = expand * dim / headdim).
        share_conv1d: one conv over x, B, C (True) or separate ``conv1d`` / ``conv1d_b`` (False, MedVSR).
        pe_window: side w of the square window a sequence lays out (L = w * w), enabling the ``pe`` conv on C;
            None: no positional conv.
        A_init_range, dt_min, dt_max, dt_init_floor, bias, conv_bias: as ``Mamba2``.
    """

    def __init__(self, dim: int, *, support_dim: int | None = None, d_state: int = 16, d_conv: int = 4,
                 expand: int = 2, headdim: int = 16, ngroups: int = 1, chunk_size: int = 256,
                 share_conv1d: bool = True, pe_window: int | None = None,
                 A_init_range: tuple[float, float] = (1, 16), dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4, bias: bool = False, conv_bias: bool = True,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        d_inner = expand * dim
        if d_inner % headdim:
            raise ValueError(f"d_inner = expand * dim = {d_inner} must be a multiple of headdim = {headdim}")
        self.nheads = d_inner // headdim
        if self.nheads % ngroups:
            raise ValueError(f"ngroups = {ngroups} must divide the {self.nheads} heads")
        self.d_inner, self.d_state, self.headdim, self.ngroups = d_inner, d_state, headdim, ngroups
        self.chunk_size, self.share_conv1d, self.pe_window = chunk_size, share_conv1d, pe_window
        dd = {"device": device, "dtype": dtype}
        groups_state = ngroups * d_state
        self.in_proj = nn.Linear(dim, 2 * d_inner + groups_state + self.nheads, bias=bias, **dd)
        self.in_proj_b = nn.Linear(support_dim or dim, groups_state, bias=bias, **dd)

        def conv(channels: int) -> nn.Conv1d:
            return nn.Conv1d(channels, channels, d_conv, groups=channels, padding=d_conv - 1, bias=conv_bias,
                             **dd)

        if share_conv1d:
            self.conv1d = conv(d_inner + 2 * groups_state)
        else:
            self.conv1d = conv(d_inner + groups_state)
            self.conv1d_b = conv(groups_state)
        init_ssd_parameters(self, self.nheads, A_init_range=A_init_range, dt_min=dt_min, dt_max=dt_max,
                            dt_init_floor=dt_init_floor, **dd)
        self.norm = RMSNormGated(d_inner, eps=1e-5, norm_before_gate=False, **dd)
        self.out_proj = nn.Linear(d_inner, dim, bias=bias, **dd)
        if pe_window is not None:
            self.pe = nn.Conv2d(groups_state, groups_state, 3, padding=1, groups=groups_state, bias=False, **dd)

    def forward(self, u: Tensor, support: Tensor) -> Tensor:
        check_layout(u, "(B, L, C)", self.dim, type(self).__name__)
        check_layout(support, "(B, L, C)", self.in_proj_b.in_features, f"{type(self).__name__} (support)")
        if u.shape[:2] != support.shape[:2]:
            raise ValueError(f"u and support must share (B, L), got {tuple(u.shape)} and {tuple(support.shape)}")
        groups_state = self.ngroups * self.d_state
        z, xb, dt = self.in_proj(u).split([self.d_inner, self.d_inner + groups_state, self.nheads], dim=-1)
        C = self.in_proj_b(support)
        if self.share_conv1d:
            x, B, C = F.silu(causal_conv1d(self.conv1d, torch.cat([xb, C], dim=-1))).split(
                [self.d_inner, groups_state, groups_state], dim=-1)
        else:
            x, B = F.silu(causal_conv1d(self.conv1d, xb)).split([self.d_inner, groups_state], dim=-1)
            C = F.silu(causal_conv1d(self.conv1d_b, C))
        if self.pe_window is not None:
            w = self.pe_window
            if C.shape[1] != w * w:
                raise ValueError(f"pe_window = {w} needs sequences of {w * w} tokens, got {C.shape[1]}")
            C = self.pe(C.transpose(1, 2).unflatten(2, (w, w))).flatten(2).transpose(1, 2)
        y = ssd_scan(x.unflatten(-1, (self.nheads, self.headdim)), dt, -torch.exp(self.A_log),
                     B.unflatten(-1, (self.ngroups, self.d_state)), C.unflatten(-1, (self.ngroups, self.d_state)),
                     self.chunk_size, D=self.D, dt_bias=self.dt_bias, dt_softplus=True).flatten(-2)
        return self.out_proj(self.norm(y, z))
