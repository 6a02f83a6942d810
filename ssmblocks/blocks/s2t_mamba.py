"""VSRM's clip mixers: S2T-Mamba (Eq. 4, frame-major, forward + backward) and T2S-Mamba (Eq. 5, time-major, forward).

From the VSRM paper (arXiv 2506.22762; github PhuTran1005/VSRM publishes no code):

    x = Linear(X), z = SiLU(Linear(X)); x1 = ForwardSSM(Conv1d(x)); x2 = BackwardSSM(Conv1d(x));
    out = Linear(x1 * z + x2 * z)

on the clip flattened frame by frame (S2T). The library's ``Mamba`` mixer over the ``s2t_scan()`` order computes
exactly this: one ``in_proj`` gives x and the gate z, each path is gated by SiLU(z) at its own tokens, the two
paths are summed on the clip and ``out_proj`` runs once. Eq. 4 writes one ``Conv1d`` for both directions but names
two SSMs, so whether the directions share the conv and SSM parameters is open: ``share_directions=True`` (the
default) shares them — Eq. 4's single Conv1d, half the SSM parameters, and the 17.1 M parameter count is reached
with the released depths either way; ``False`` gives the backward path its own ``conv1d_b``, ``x_proj_b``,
``dt_proj_b``, ``A_b_log``, ``D_b`` (Vision Mamba's bidirectional names), each initialised as mamba_ssm does.
T2S-Mamba is the plain ``Mamba`` over ``t2s_scan()`` (see ``t2s_mamba``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.mamba import Mamba
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders import ScanOrder, s2t_scan, t2s_scan

__all__ = ["S2TMamba", "t2s_mamba"]

class S2TMamba(Mamba):
    """S2T-Mamba on channels-last clips (B, T, H, W, C) -> (B, T, H, W, C).

    Args:
        dim: channels C.
        share_directions: the forward and backward scans share conv1d and the SSM parameters (True) or not.
        scan_order: a two-path order on (T, H, W) whose path 0 is the forward and path 1 the backward scan
            (default ``s2t_scan()``).
        **mamba_options: d_state, d_conv, expand, dt_rank, dt_min, dt_max, dt_init, dt_scale, dt_init_floor,
            conv_bias, bias of ``Mamba``.
    """

    def __init__(self, dim: int, *, share_directions: bool = True, scan_order: ScanOrder | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, **mamba_options) -> None:
        order = scan_order if scan_order is not None else s2t_scan()
        if order.num_paths != 2:
            raise ValueError(f"S2TMamba needs a forward and a backward path, got an order of {order.num_paths}")
        super().__init__(dim, scan_order=order, device=device, dtype=dtype, **mamba_options)
        self.share_directions = share_directions
        if not share_directions:
            twin = Mamba(dim, device=device, dtype=dtype, **mamba_options)   # its fresh, mamba_ssm-initialised SSM
            self.conv1d_b, self.x_proj_b, self.dt_proj_b = twin.conv1d, twin.x_proj, twin.dt_proj
            self.A_b_log, self.D_b = twin.A_log, twin.D

    def _path_ssm(self, u: Tensor, z: Tensor, backward: bool) -> Tensor:
        """One path: u, z (B, d_inner, L) -> gated SSM output (B, d_inner, L) with that direction's parameters."""
        conv1d, x_proj, dt_proj, A_log, D = ((self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b)
                                             if backward else (self.conv1d, self.x_proj, self.dt_proj, self.A_log,
                                                               self.D))
        length = u.shape[-1]
        u = F.silu(conv1d(u)[..., :length])
        dt, B, C = torch.split(x_proj.weight @ u, [self.dt_rank, self.d_state, self.d_state], dim=1)
        return selective_scan_fn(u, dt_proj.weight @ dt, -torch.exp(A_log), B, C, D, z=z,
                                 delta_bias=dt_proj.bias, delta_softplus=True)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, T, H, W, C)", self.dim, type(self).__name__)
        if self.share_directions:
            return super().forward(x)
        spatial = tuple(x.shape[1:-1])
        xz = self.in_proj(x).movedim(-1, 1)                                   # (B, 2 d_inner, T, H, W)
        paths = self.scan_order.scan(xz)                                       # (B, 2, 2 d_inner, L)
        forward_path, backward_path = (p.chunk(2, dim=1) for p in paths.unbind(1))
        y = torch.stack([self._path_ssm(*forward_path, False), self._path_ssm(*backward_path, True)], dim=1)
        return self.out_proj(self.scan_order.merge_sum(y, spatial).movedim(1, -1))


def t2s_mamba(dim: int, *, scan_order: ScanOrder | None = None, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None, **mamba_options) -> Mamba:
    """T2S-Mamba (Eq. 5): ``Mamba`` over the time-major forward order ``t2s_scan()``; (B, T, H, W, C) in and out."""
    return Mamba(dim, scan_order=scan_order if scan_order is not None else t2s_scan(), device=device, dtype=dtype,
                 **mamba_options)
