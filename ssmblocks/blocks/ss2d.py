"""SS2D: the multi-path 2-D selective-scan mixer of VMamba / MambaIR, taking any scan order.

Facts from csguoh/MambaIR ``basicsr/archs/mambair_arch.py`` (``SS2D``) at 33d7b34: in_proj C -> 2 d_inner (no bias),
split into x and z; x -> depthwise 3x3 conv (bias) -> SiLU; scan into K paths; per-path projections
``x_proj_weight`` (K, R + 2N, d_inner) -> dt (R), B (N), C (N); ``dt_projs_weight`` (K, d_inner, R) applied to dt
(no bias); selective scan with A = -exp(A_logs) (K d_inner, N), B/C grouped per path, D = Ds,
delta_bias = dt_projs_bias, softplus; paths merged (summed) back to (H, W); out_norm LayerNorm(d_inner) -> * SiLU(z)
-> out_proj (no bias).

The merge is the mixer's one extension point between scan and merge (``path_merge``, see
``ssmblocks.blocks.path_merge``): a module taking the K path outputs and returning the merged map, the plain sum by
default; MambaCSR's BiAttn gate (``LocalSS2D``) and MaIR's SSA are such modules. Parameters are path-major
(index k * d_inner + d), so the scan order's path order fixes the checkpoint layout.

Layout: the block works on channels-last tokens (B, H, W, C) from end to end. The depthwise conv runs on the
channels-last map as a channels-last-strided (B, C, H, W) view; the scan orders and the scan kernel read channel-major
paths, so there is exactly one transpose into the scan and one out of it. Under ``torch.no_grad`` /
``torch.inference_mode`` the elementwise glue runs in place on the block's own intermediates.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._init import reset_path_scan_parameters
from ssmblocks.blocks._layout import check_layout
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders import ScanOrder, cross_scan

__all__ = ["SS2D"]


class SS2D(nn.Module):
    """Multi-path selective-scan mixer. Input and output channels-last tokens (B, H, W, C).

    Args:
        dim: channels C.
        d_state: SSM state size N.
        expand: d_inner = int(expand * dim) (MambaIR passes its ``mlp_ratio`` here).
        d_conv: depthwise conv kernel size (odd; "same" padding).
        dt_rank: rank R of the dt projection; "auto" = ceil(dim / 16).
        scan_order: any 2-D scan order; K = its number of paths (default: the 4-path cross-scan). Window
            partitions (orders whose scan moves windows to the batch axis) work too.
        conv_bias: bias of the depthwise conv. bias: biases of in_proj and out_proj.
        dt_min, dt_max, dt_init_floor: the range of the initial dt (Mamba's dt init).
        path_merge: how the K path outputs become one map (``merge_paths``; ``merge_module`` returns it): a module
            ``path_merge(paths (B, K, d_inner, L), scan_order, (H, W)) -> (B, d_inner, H, W)``; None: their sum.
            Its parameters sit under the attribute named by the class attribute ``path_merge_key``.
        device, dtype: factory arguments for the parameters.
    """

    path_merge_key = "path_merge"   # where the merge module's keys go; subclasses with official key names change it

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: ScanOrder | None = None, conv_bias: bool = True,
                 bias: bool = False, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4,
                 path_merge: nn.Module | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scan_order = scan_order if scan_order is not None else cross_scan(4)
        if self.scan_order.ndim != 2:
            raise ValueError(f"SS2D needs a 2-D scan order, got {self.scan_order!r}")
        if d_conv < 1 or d_conv % 2 == 0:
            raise ValueError(f"d_conv must be a positive odd kernel size, got {d_conv}")
        k = self.scan_order.num_paths
        self.d_inner = int(expand * dim)
        self.d_state = d_state
        self.dt_rank = math.ceil(dim / 16) if dt_rank == "auto" else int(dt_rank)
        self.dt_init = (dt_min, dt_max, dt_init_floor)
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=bias, **dd)
        self.conv2d = nn.Conv2d(self.d_inner, self.d_inner, d_conv, padding=(d_conv - 1) // 2, groups=self.d_inner,
                                bias=conv_bias, **dd)
        self.x_proj_weight = nn.Parameter(torch.empty(k, self.dt_rank + 2 * d_state, self.d_inner, **dd))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, self.d_inner, self.dt_rank, **dd))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, self.d_inner, **dd))
        self.A_logs = nn.Parameter(torch.empty(k * self.d_inner, d_state, **dd))
        self.Ds = nn.Parameter(torch.empty(k * self.d_inner, **dd))
        self.A_logs._no_weight_decay = True
        self.Ds._no_weight_decay = True
        self.out_norm = nn.LayerNorm(self.d_inner, **dd)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=bias, **dd)
        self.dim = dim
        if path_merge is not None:
            if not isinstance(path_merge, nn.Module):
                raise TypeError(f"path_merge must be an nn.Module (paths, scan_order, shape) -> map, got "
                                f"{type(path_merge).__name__}")
            self.add_module(self.path_merge_key, path_merge)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Mamba's init: dt weights U(+-R^-0.5); dt bias = softplus^-1(exp(U[log dt_min, log dt_max])) with
        dt >= dt_init_floor; A_logs = log(1..N); Ds = 1; linear layers trunc_normal(0.02)."""
        dt_min, dt_max, dt_floor = self.dt_init
        self.x_proj_weight.uniform_(-self.d_inner**-0.5, self.d_inner**-0.5)
        reset_path_scan_parameters(self.dt_projs_weight, self.dt_projs_bias, self.A_logs, self.Ds,
                                   dt_rank=self.dt_rank, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_floor)
        for linear in (self.in_proj, self.out_proj):
            nn.init.trunc_normal_(linear.weight, std=0.02)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    @property
    def merge_module(self) -> nn.Module | None:
        """The path merge module, wherever ``path_merge_key`` puts it (None: the plain sum over paths)."""
        return self._modules.get(self.path_merge_key)

    def merge_paths(self, paths: Tensor, shape: tuple[int, int]) -> Tensor:
        """THE hook between scan and merge: (B, K, d_inner, L) path outputs -> (B, d_inner, H, W)."""
        merge = self.merge_module
        return self.scan_order.merge_sum(paths, shape) if merge is None else merge(paths, self.scan_order, shape)

    def scan_paths(self, paths: Tensor) -> Tensor:
        """The selective scan of every path: (B, K, d_inner, L) -> (B, K, d_inner, L)."""
        batch, k, _, length = paths.shape
        x_dbl = torch.matmul(self.x_proj_weight, paths)                           # (B, K, R + 2N, L)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                             # (B, K, d_inner, L)
        return selective_scan_fn(
            paths.reshape(batch, k * self.d_inner, length), dts.reshape(batch, k * self.d_inner, length),
            -torch.exp(self.A_logs), Bs, Cs, self.Ds, delta_bias=self.dt_projs_bias.flatten(), delta_softplus=True,
        ).view(batch, k, self.d_inner, length)

    def project(self, x: Tensor, proj: nn.Linear) -> tuple[Tensor, Tensor]:
        """(B, H, W, C) -> the x and z halves of ``proj(x)``, each contiguous (B, H, W, d_inner): two products, so
        that no strided copy precedes the conv."""
        w_x, w_z = proj.weight.chunk(2)
        b_x, b_z = (None, None) if proj.bias is None else proj.bias.chunk(2)
        return F.linear(x, w_x, b_x), F.linear(x, w_z, b_z)

    def output(self, merged: Tensor, z: Tensor) -> Tensor:
        """The merged map (B, d_inner, H, W) and the gate branch z (B, H, W, d_inner) -> out_proj(out_norm(y) *
        SiLU(z)), (B, H, W, C)."""
        inplace = not torch.is_grad_enabled()
        y = self.out_norm(merged.permute(0, 2, 3, 1))                             # (B, H, W, d_inner)
        gate = F.silu(z, inplace=inplace)
        return self.out_proj(y.mul_(gate) if inplace else y * gate)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        inplace = not torch.is_grad_enabled()
        u, z = self.project(x, self.in_proj)                                      # (B, H, W, d_inner) each
        u = F.silu(self.conv2d(u.permute(0, 3, 1, 2)), inplace=inplace)           # channels-last (B, d, H, W)
        y = self.scan_paths(self.scan_order.scan(u))                              # (B', K, d_inner, L)
        return self.output(self.merge_paths(y, tuple(x.shape[1:3])), z)
