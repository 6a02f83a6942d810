"""LocalSS2D: MambaCSR's local-window SS2D (``LW_SS2D``), an SS2D whose paths are gated one by one before summing.

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``LW_SS2D``, ``multi_selective_scan``,
``MultiScanVSSM``) at f71199e: the parameters and the path computation are SS2D's (in_proj C -> 2 d_inner without
bias, depthwise conv + SiLU, per-path x_proj / dt_projs / A_logs / Ds, selective scan with softplus); after the scan
every path is mapped back to (H, W) on its own (padding dropped), gated by ONE shared ``BiAttn`` (key
``multi_scan.attn``), and only then summed; out_norm LayerNorm(d_inner) -> * SiLU(z) -> out_proj. MambaCSR gives
each block a two-path order (a window order and its reverse, see ``ssmblocks.scan_orders.dual_interleaved``).

SS2D merges and sums its paths in one step, so this mixer reuses SS2D's parameters and initialisation and has its
own forward; the few lines of the selective-scan call are the ones the official structure forces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks.biattn import BiAttn
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders import ScanOrder

__all__ = ["LocalSS2D"]


class _PathGate(nn.Module):
    """Holds the shared per-path BiAttn under ``attn`` (the official ``multi_scan.attn`` keys)."""

    def __init__(self, d_inner: int, act_ratio: float, device, dtype) -> None:
        super().__init__()
        self.attn = BiAttn(d_inner, act_ratio=act_ratio, device=device, dtype=dtype)


class LocalSS2D(SS2D):
    """SS2D with a BiAttn gate on every path before the paths are summed. Input and output (B, H, W, C).

    Args:
        dim: channels C.
        d_state, expand, d_conv, dt_rank, conv_bias, bias: as SS2D (d_inner = int(expand * dim)).
        scan_order: any 2-D scan order; K = its number of paths (MambaCSR: ``bidirectional(Windowed(8))`` and the
            other entries of ``dual_interleaved()``).
        attn_ratio: the BiAttn hidden width is int(d_inner * attn_ratio).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, d_state: int = 16, expand: float = 2.0, d_conv: int = 3,
                 dt_rank: int | str = "auto", scan_order: ScanOrder | None = None, conv_bias: bool = True,
                 bias: bool = False, attn_ratio: float = 0.125, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(dim, d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank, scan_order=scan_order,
                         conv_bias=conv_bias, bias=bias)
        self.to(device=device, dtype=dtype)        # SS2D on main takes no factory arguments yet
        self.multi_scan = _PathGate(self.d_inner, attn_ratio, device, dtype)

    def scan_paths(self, paths: Tensor) -> Tensor:
        """The selective scan of every path: (B, K, d_inner, L) -> (B, K, d_inner, L)."""
        batch, k, _, length = paths.shape
        x_dbl = torch.einsum("bkdl,kcd->bkcl", paths, self.x_proj_weight)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        return selective_scan_fn(
            paths.reshape(batch, k * self.d_inner, length), dts.reshape(batch, k * self.d_inner, length),
            -torch.exp(self.A_logs), Bs.contiguous(), Cs.contiguous(), self.Ds,
            delta_bias=self.dt_projs_bias.flatten(), delta_softplus=True,
        ).view(batch, k, self.d_inner, length)

    def gated_output(self, y: Tensor, shape: tuple[int, int], z: Tensor) -> Tensor:
        """Path outputs (B, K, d_inner, L) and the gate branch z (B, H, W, d_inner) -> (B, H, W, C): every path
        back to (H, W), BiAttn on each, sum, out_norm, * SiLU(z), out_proj."""
        maps = self.scan_order.merge(y, shape)                                      # (B, K, d_inner, H, W)
        tokens = maps.flatten(3).transpose(2, 3)                                    # (B, K, HW, d_inner)
        summed = self.multi_scan.attn(tokens).sum(1).unflatten(1, shape)           # (B, H, W, d_inner)
        return self.out_proj(self.out_norm(summed) * F.silu(z))

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        u, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self.conv2d(u.permute(0, 3, 1, 2)))                               # (B, d_inner, H, W)
        return self.gated_output(self.scan_paths(self.scan_order.scan(u)), tuple(x.shape[1:3]), z)
