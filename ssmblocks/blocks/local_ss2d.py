"""LocalSS2D: MambaCSR's local-window SS2D (``LW_SS2D``), an SS2D whose paths are gated one by one before summing.

Facts from renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` (``LW_SS2D``, ``multi_selective_scan``,
``MultiScanVSSM``) at f71199e: the parameters and the path computation are SS2D's (in_proj C -> 2 d_inner without
bias, depthwise conv + SiLU, per-path x_proj / dt_projs / A_logs / Ds, selective scan with softplus); after the scan
every path is mapped back to (H, W) on its own (padding dropped), gated by ONE shared ``BiAttn`` (key
``multi_scan.attn``, its token mean over the H x W output pixels), and only then summed; out_norm LayerNorm(d_inner)
-> * SiLU(z) -> out_proj. MambaCSR gives each block a two-path order (a window order and its reverse, see
``ssmblocks.scan_orders.dual_interleaved``).

SS2D merges and sums its paths in one step, so this mixer reuses SS2D's parameters and initialisation and has its
own forward; the few lines of the selective-scan call are the ones the official structure forces. The gate is
constant over the tokens, so it is computed from the channel-first paths (``BiAttn.pooled_channel_first``) and
applied before one ``merge_sum``; the result equals gating every merged map.
"""

from __future__ import annotations

import math

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
                         conv_bias=conv_bias, bias=bias, device=device, dtype=dtype)
        self.multi_scan = _PathGate(self.d_inner, attn_ratio, device, dtype)

    def scan_paths(self, paths: Tensor) -> Tensor:
        """The selective scan of every path: (B, K, d_inner, L) -> (B, K, d_inner, L)."""
        batch, k, _, length = paths.shape
        x_dbl = torch.matmul(self.x_proj_weight, paths)                             # (B, K, R + 2N, L)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                               # (B, K, d_inner, L)
        return selective_scan_fn(
            paths.reshape(batch, k * self.d_inner, length), dts.reshape(batch, k * self.d_inner, length),
            -torch.exp(self.A_logs), Bs.contiguous(), Cs.contiguous(), self.Ds,
            delta_bias=self.dt_projs_bias.flatten(), delta_softplus=True,
        ).view(batch, k, self.d_inner, length)

    def gated_output(self, y: Tensor, shape: tuple[int, int], z: Tensor, token_weights: Tensor) -> Tensor:
        """Path outputs (B, K, d_inner, L) and the gate branch z (B, H, W, d_inner) -> (B, H, W, C): BiAttn gate of
        every path, paths summed back onto (H, W), out_norm, * SiLU(z), out_proj.

        ``token_weights`` (1, K, 1, L) are 1 / (H W) on the tokens that are output pixels and 0 on padding (or other
        inputs'), so the gate's token mean is the official mean over the merged map; the gate is constant over the
        tokens, so gating the paths before ``merge_sum`` equals gating each merged map.
        """
        attn = self.multi_scan.attn
        gate = attn.gate(attn.pooled_channel_first(y, token_weights))              # (B, K, d_inner)
        summed = self.scan_order.merge_sum(y * gate.unsqueeze(-1), shape)           # (B, d_inner, H, W)
        return self.out_proj(self.out_norm(summed.permute(0, 2, 3, 1)) * F.silu(z))

    def token_weights(self, *maps: Tensor) -> Tensor:
        """(1, K, 1, L): 1 / (H W) where a path visits a pixel of the first map, 0 elsewhere."""
        spatial = maps[0].shape[2:]        # ones / count: a float fill 1.0 / count would specialise the size on export
        first = maps[0].new_ones((1, 1, *spatial)) / math.prod(spatial)
        return self.scan_order.scan(first, *(m.new_zeros((1, 1, *m.shape[2:])) for m in maps[1:]))

    def project(self, x: Tensor, proj: nn.Linear) -> tuple[Tensor, Tensor]:
        """(B, H, W, C) -> the x and z halves of ``proj(x)``, each contiguous (B, H, W, d_inner)."""
        w_x, w_z = proj.weight.chunk(2)
        b_x, b_z = (None, None) if proj.bias is None else proj.bias.chunk(2)
        return F.linear(x, w_x, b_x), F.linear(x, w_z, b_z)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        u, z = self.project(x, self.in_proj)
        u = F.silu(self.conv2d(u.permute(0, 3, 1, 2)))                               # (B, d_inner, H, W)
        y = self.scan_paths(self.scan_order.scan(u))
        return self.gated_output(y, tuple(x.shape[1:3]), z, self.token_weights(u))
