"""MHSSM: the multi-head multi-scan selective-scan mixer of EAMamba (the official ``ExtendedMamba``).

Facts from daidaijr/EAMamba at ec13c77, ``models/module/mamba.py`` (``ExtendedMamba``) and ``models/module/scan.py``
(released settings: scan_type 'diagonal', scan_count 8, scan_merge_method 'concate', conv_2d True, expand 1):
in_proj C -> 2 d_inner (no bias), split into x and z; x -> depthwise 3x3 Conv2d (bias, key ``conv``) -> SiLU; the
d_inner channels are split into K = 8 heads of c = d_inner / 8 channels, head k read in its own order; per head
``x_proj_weight[k]`` (R + 2N, c) -> dt (R), B (N), C (N) and ``dt_projs_weight[k]`` (c, R) on dt; ONE selective
scan over the K * c stacked channels with A = -exp(A_logs) (d_inner, N), B/C grouped per head, D = Ds,
delta_bias = dt_projs_bias, softplus; every head mapped back to row-major order and the heads concatenated (not
summed); out_norm ``nn.LayerNorm`` (eps 1e-5) -> * SiLU(z) -> out_proj (no bias). dt_rank R = ceil(C / 16) of the
block width (not of the head width). Parameters are head-major (index k * c + d). Compared with SS2D (K paths of
all d_inner channels, summed), every head scans only d_inner / K channels: K directions for the cost of one scan.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._init import reset_path_scan_parameters
from ssmblocks.blocks._layout import check_layout
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders import MultiHead, eamamba_scan

__all__ = ["MHSSM"]


class MHSSM(nn.Module):
    """Multi-head multi-scan mixer. Input and output channels-last tokens (B, H, W, C).

    Args:
        dim: channels C.
        d_state: SSM state size N.
        expand: d_inner = int(expand * dim) (EAMamba: 1).
        d_conv: depthwise 2-D conv kernel size (odd; "same" padding).
        dt_rank: rank R of the dt projection; "auto" = ceil(dim / 16).
        scan_order: a ``MultiHead`` order (default ``eamamba_scan()``, the eight official heads); d_inner must be a
            multiple of its number of heads K.
        conv_bias: bias of the depthwise conv. bias: biases of in_proj and out_proj.
        dt_min, dt_max, dt_init_floor: the range of the initial dt (Mamba's dt init).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 1.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: MultiHead | None = None, conv_bias: bool = True,
                 bias: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scan_order = scan_order if scan_order is not None else eamamba_scan()
        if not isinstance(self.scan_order, MultiHead):
            raise ValueError(f"MHSSM reads each channel group in its own order: scan_order must be a MultiHead "
                             f"order (e.g. MultiHead(RowMajor(), ColMajor())), got {self.scan_order!r}")
        if d_conv < 1 or d_conv % 2 == 0:
            raise ValueError(f"d_conv must be a positive odd kernel size, got {d_conv}")
        self.dim, self.d_inner, self.d_state = dim, int(expand * dim), d_state
        heads = self.scan_order.num_heads
        self.head_dim = self.scan_order.head_dim(self.d_inner)
        self.dt_rank = math.ceil(dim / 16) if dt_rank == "auto" else int(dt_rank)
        self.dt_init = (dt_min, dt_max, dt_init_floor)
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=bias, **dd)
        self.conv = nn.Conv2d(self.d_inner, self.d_inner, d_conv, padding=(d_conv - 1) // 2, groups=self.d_inner,
                              bias=conv_bias, **dd)
        self.x_proj_weight = nn.Parameter(torch.empty(heads, self.dt_rank + 2 * d_state, self.head_dim, **dd))
        self.dt_projs_weight = nn.Parameter(torch.empty(heads, self.head_dim, self.dt_rank, **dd))
        self.dt_projs_bias = nn.Parameter(torch.empty(heads, self.head_dim, **dd))
        self.A_logs = nn.Parameter(torch.empty(self.d_inner, d_state, **dd))
        self.Ds = nn.Parameter(torch.empty(self.d_inner, **dd))
        self.A_logs._no_weight_decay = True
        self.Ds._no_weight_decay = True
        self.out_norm = nn.LayerNorm(self.d_inner, **dd)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=bias, **dd)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The official init: per-head projections U(+-fan_in^-0.5) (nn.Linear's bound), dt weights U(+-R^-0.5),
        dt bias = softplus^-1(exp(U[log dt_min, log dt_max])) with dt >= dt_init_floor, A_logs = log(1..N),
        Ds = 1; in_proj, out_proj and the conv keep PyTorch's defaults."""
        dt_min, dt_max, dt_floor = self.dt_init
        self.x_proj_weight.uniform_(-self.head_dim**-0.5, self.head_dim**-0.5)
        reset_path_scan_parameters(self.dt_projs_weight, self.dt_projs_bias, self.A_logs, self.Ds,
                                   dt_rank=self.dt_rank, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_floor)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        height, width = x.shape[1:3]
        w_x, w_z = self.in_proj.weight.chunk(2)
        b_x, b_z = (None, None) if self.in_proj.bias is None else self.in_proj.bias.chunk(2)
        u = F.silu(self.conv(F.linear(x, w_x, b_x).permute(0, 3, 1, 2)))        # (B, d_inner, H, W)
        z = F.linear(x, w_z, b_z)
        heads = self.scan_order.scan(u)                                           # (B, K, c, L)
        batch, k, c, length = heads.shape
        x_dbl = torch.matmul(self.x_proj_weight, heads)                           # (B, K, R + 2N, L)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                             # (B, K, c, L)
        y = selective_scan_fn(
            heads.reshape(batch, k * c, length), dts.reshape(batch, k * c, length), -torch.exp(self.A_logs),
            Bs, Cs, self.Ds, delta_bias=self.dt_projs_bias.flatten(), delta_softplus=True,
        ).view(batch, k, c, length)
        y = self.scan_order.merge_concat(y, (height, width)).permute(0, 2, 3, 1)  # (B, H, W, d_inner)
        return self.out_proj(self.out_norm(y) * F.silu(z))
