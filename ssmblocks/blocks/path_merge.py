"""Path merges: the one hook between scan and merge of every multi-path mixer (SS2D and its subclasses).

A multi-path mixer scans a map into K paths, runs the selective scan on each, and has to turn the K path outputs
back into one map. By default it sums them (``scan_order.merge_sum``). A *path merge* replaces that step: any
``nn.Module`` whose forward is

    merge(paths: Tensor, order: ScanOrder, shape: tuple[int, int]) -> Tensor
        paths: (B, K, D, L) path outputs, channel-major, in the order's path order
        returns: (B, D, H, W), the merged map

Pass one as ``SS2D(..., path_merge=...)``; its parameters sit under ``SS2D.path_merge_key`` ('path_merge', or an
official key name in subclasses: LocalSS2D 'multi_scan', MaIR's mixer 'gating'). Gates constant over the pixels
(BiAttn, SSA) are best applied to the paths before one ``merge_sum``: ``pixel_means`` gives the per-path means over
the output pixels from the paths themselves (padding tokens and the tokens of other inputs weigh 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks.biattn import BiAttn
from ssmblocks.scan_orders import ScanOrder

__all__ = ["BiAttnMerge", "PathMerge", "pixel_means", "pixel_weights"]


def pixel_weights(order: ScanOrder, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """(1, K, 1, L) weights: 1 / (H W) where path k visits a pixel of the output map, 0 on every other token
    (padding, other inputs). ``like``: the path outputs (B, K, D, L) (their L, device and dtype)."""
    inverse = order.inverse(shape, like.device)                                 # (K, H W): step of each pixel
    ones = like.new_ones((1, inverse.shape[0], 1, inverse.shape[1]))
    hits = like.new_zeros((1, inverse.shape[0], 1, like.shape[-1])).scatter(-1, inverse[None, :, None], ones)
    return hits / inverse.shape[1]        # ones / count: a float fill 1.0 / count would specialise the size on export


def pixel_means(paths: Tensor, order: ScanOrder, shape: tuple[int, ...]) -> Tensor:
    """(B, K, D, L) path outputs -> (B, K, D): each path's mean over the pixels of the merged map."""
    return torch.matmul(paths, pixel_weights(order, shape, paths).transpose(-1, -2)).squeeze(-1)


class PathMerge(nn.Module):
    """Base class of path merges (see the module docstring); on its own the plain sum over paths."""

    def forward(self, paths: Tensor, order: ScanOrder, shape: tuple[int, int]) -> Tensor:
        """(B, K, D, L) -> (B, D, H, W)."""
        return order.merge_sum(paths, shape)


class BiAttnMerge(PathMerge):
    """MambaCSR's merge: one shared BiAttn gate per path (from the path's LayerNorm-ed pixel mean), then the sum.

    Facts (renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py``, ``LW_SS2D`` / ``multi_selective_scan`` at
    f71199e): every path is mapped back to (H, W) on its own, gated by one shared ``BiAttn`` (key ``attn``, its token
    mean over the H x W output pixels) and only then summed. The gate is constant over the pixels, so it is computed
    from the channel-first paths (``BiAttn.pooled_channel_first``, the weights of ``pixel_weights``) and applied
    before one ``merge_sum``.

    Args:
        dim: channels D of the paths (the mixer's d_inner).
        act_ratio: the BiAttn hidden width is int(D * act_ratio).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, *, act_ratio: float = 0.125, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.attn = BiAttn(dim, act_ratio=act_ratio, device=device, dtype=dtype)

    def forward(self, paths: Tensor, order: ScanOrder, shape: tuple[int, int]) -> Tensor:
        gate = self.attn.gate(self.attn.pooled_channel_first(paths, pixel_weights(order, shape, paths)))  # (B, K, D)
        return order.merge_sum(paths * gate.unsqueeze(-1), shape)
