"""Mamba: the 1-D selective-scan mixer of mamba_ssm, run along the paths of any scan order.

Facts from state-spaces/mamba v1.1.1 (commit fb7b5310) ``mamba_ssm/modules/mamba_simple.py`` (``Mamba``, the
non-fused branch of ``forward``), the mixer DVMSR builds its blocks from. Parameter names are mamba_ssm's, so its
checkpoints load without renaming:
in_proj C -> 2 d_inner (no bias), split into x and z; x -> causal depthwise conv1d over the sequence (kernel
d_conv, left zero-padding d_conv - 1, bias) -> SiLU; x_proj d_inner -> R + 2N (no bias), split into dt (R), B (N),
C (N); dt_proj.weight (d_inner, R) applied to dt, dt_proj.bias used as the scan's delta_bias with softplus;
selective scan with A = -exp(A_log) (d_inner, N), D (d_inner), gated inside the scan by SiLU(z); out_proj
d_inner -> C (no bias). d_inner = int(expand * C), R = ceil(C / 16) by default.

A feature map becomes 1-D sequences through a scan order (``order.scan``): DVMSR flattens each map row-major into
one forward path (``RowMajor()``). With several paths, the paths share the mixer's parameters (they run as extra
batch entries, each with its own causal conv and state) and their outputs are summed back onto the map
(``order.merge_sum``) before out_proj.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._init import dt_bias_init
from ssmblocks.blocks._layout import check_layout
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders import RowMajor, ScanOrder

__all__ = ["Mamba"]


class Mamba(nn.Module):
    """Selective-scan mixer over a scan order. Input and output channels-last (B, *spatial, C), where the spatial
    rank is the order's (H, W for images; T, H, W for clips).

    Args:
        dim: channels C (mamba_ssm's ``d_model``).
        d_state: SSM state size N.
        d_conv: kernel of the causal depthwise conv over each path.
        expand: d_inner = int(expand * dim).
        dt_rank: rank R of the dt projection; None = ceil(dim / 16).
        dt_min, dt_max, dt_init_floor: the initial step sizes dt are log-uniform in [dt_min, dt_max], at least
            dt_init_floor; dt_proj.bias holds their inverse softplus.
        dt_init: 'random' (dt_proj.weight uniform in +-dt_scale * R^-0.5) or 'constant' (all dt_scale * R^-0.5).
        dt_scale: scale of the dt_proj.weight init.
        conv_bias: bias of the depthwise conv. bias: biases of in_proj and out_proj.
        scan_order: how a map becomes paths (default: one row-major path, as DVMSR).
    """

    def __init__(self, dim: int, *, d_state: int = 16, d_conv: int = 4, expand: float = 2.0,
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init: str = "random",
                 dt_scale: float = 1.0, dt_init_floor: float = 1e-4, conv_bias: bool = True, bias: bool = False,
                 scan_order: ScanOrder | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        dd = {"device": device, "dtype": dtype}
        self.scan_order = scan_order if scan_order is not None else RowMajor()
        self.d_inner = int(expand * dim)
        self.d_state, self.d_conv = d_state, d_conv
        self.dt_rank = math.ceil(dim / 16) if dt_rank is None else int(dt_rank)
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=bias, **dd)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, padding=d_conv - 1, groups=self.d_inner,
                                bias=conv_bias, **dd)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **dd)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **dd)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state, **dd))
        self.D = nn.Parameter(torch.empty(self.d_inner, **dd))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, dim, bias=bias, **dd)
        self._dt_init = (dt_min, dt_max, dt_init, dt_scale, dt_init_floor)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """mamba_ssm's init of the SSM parameters: dt_proj as described in the class docstring, A_log = log(1..N)
        for every channel, D = 1. The linear and conv layers keep PyTorch's default init, as in mamba_ssm."""
        dt_min, dt_max, dt_init, dt_scale, dt_floor = self._dt_init
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        self.dt_proj.bias.copy_(dt_bias_init(self.dt_proj.bias.shape, dt_min=dt_min, dt_max=dt_max,
                                             dt_init_floor=dt_floor, device=self.dt_proj.bias.device))
        log_a = torch.log(torch.arange(1, self.d_state + 1, dtype=torch.float32, device=self.A_log.device))
        self.A_log.copy_(log_a.expand_as(self.A_log))
        self.D.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        """(B, *spatial, C) -> (B, *spatial, C). The projections run channel-first, as matmuls on (B, C, L)."""
        check_layout(x, "(B, ..., C)", self.dim, type(self).__name__)
        batch, *spatial, channels = x.shape
        xz = self.in_proj.weight @ x.reshape(batch, -1, channels).transpose(1, 2)   # (B, 2 d_inner, N)
        if self.in_proj.bias is not None:
            xz = xz + self.in_proj.bias[:, None]
        paths = self.scan_order.scan(xz.view(batch, -1, *spatial))           # (B, K, 2 d_inner, L)
        k, length = paths.shape[1], paths.shape[-1]
        u, z = paths.flatten(0, 1).chunk(2, dim=1)                            # (B K, d_inner, L) each
        u = F.silu(self.conv1d(u)[..., :length])                              # causal: padded both sides, cropped
        dt, B, C = torch.split(self.x_proj.weight @ u, [self.dt_rank, self.d_state, self.d_state], dim=1)
        y = selective_scan_fn(u, self.dt_proj.weight @ dt, -torch.exp(self.A_log), B, C, self.D, z=z,
                              delta_bias=self.dt_proj.bias, delta_softplus=True)
        y = self.scan_order.merge_sum(y.view(batch, k, self.d_inner, length), tuple(spatial))
        return self.out_proj(y.movedim(1, -1))
