"""SSA, MaIR's sequence shuffle attention: the gated merge of the K scan directions, as a path merge.

Facts (XLearning-SCU/2025-CVPR-MaIR at 2fb433e, ``basicsr/archs/mair_arch.py``, ``ShuffleAttn`` used as
``VMM.gating`` with group = d_inner; the formula as stated in shared/reference/mair.md): the K = 4 un-scanned outputs
are concatenated to (B, K D, H, W) (channel k D + d), channel-shuffled so that the K copies of every inner channel d
sit together, average-pooled over the pixels, passed through a grouped 1x1 conv (``gating.1``, D groups of K -> K)
and a sigmoid, un-shuffled; the gated outputs are summed over k. Per inner channel d this is a K -> K linear map over
the pixel means of the K directions:

    gate[k, d] = sigmoid(sum_k' W[K d + k, k'] * mean_pixels(y_k')[d] + b[K d + k]),   out = sum_k gate[k, d] * y_k

The gate is constant over the pixels, so the merge computes it from the paths (``pixel_means``) and applies it
before one ``merge_sum``; ``forward_map`` is the official formulation on the concatenated map (used in the tests).
Any multi-path mixer takes it: ``SS2D(dim, scan_order=..., path_merge=SSA(d_inner, num_paths=K))``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks.path_merge import PathMerge, pixel_means
from ssmblocks.scan_orders import ScanOrder

__all__ = ["SSA"]


class SSA(PathMerge):
    """Sequence shuffle attention: (B, K, D, L) path outputs -> (B, D, H, W), the K directions gated and summed.

    Args:
        dim: channels D of every path (the mixer's d_inner).
        num_paths: K, the scan order's number of paths (MaIR: 4).
        device, dtype: factory arguments for the parameters.

    Keys (the official ones): ``gating.1.weight`` (K D, K, 1, 1), ``gating.1.bias`` (K D); ``gating`` is the official
    pool -> grouped 1x1 conv -> sigmoid sequence.
    """

    def __init__(self, dim: int, *, num_paths: int = 4, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if dim < 1 or num_paths < 1:
            raise ValueError(f"SSA needs dim >= 1 and num_paths >= 1, got dim {dim}, num_paths {num_paths}")
        self.dim, self.num_paths = dim, num_paths
        width = dim * num_paths
        self.gating = nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                    nn.Conv2d(width, width, 1, groups=dim, device=device, dtype=dtype), nn.Sigmoid())

    def gate(self, means: Tensor) -> Tensor:
        """(B, K, D) pixel means of the K directions -> (B, K, D) gates in (0, 1)."""
        conv = self.gating[1]
        k = self.num_paths
        weight = conv.weight.view(self.dim, k, k)                              # [d, k, k'] = W[K d + k, k']
        logits = torch.einsum("dkj,bjd->bkd", weight, means) + conv.bias.view(self.dim, k).t()
        return torch.sigmoid(logits)

    def forward(self, paths: Tensor, order: ScanOrder, shape: tuple[int, int]) -> Tensor:
        if paths.dim() != 4 or paths.shape[1] != self.num_paths or paths.shape[2] != self.dim:
            raise ValueError(f"SSA merges path outputs (B, K={self.num_paths}, D={self.dim}, L), got "
                             f"{tuple(paths.shape)}")
        gate = self.gate(pixel_means(paths, order, shape))
        return order.merge_sum(paths * gate.unsqueeze(-1), shape)

    def forward_map(self, y: Tensor) -> Tensor:
        """The official formulation: (B, K D, H, W) concatenated directions (channel k D + d) -> (B, D, H, W)."""
        batch, _, height, width = y.shape
        k = self.num_paths
        shuffled = y.view(batch, k, self.dim, height, width).transpose(1, 2).reshape(batch, -1, height, width)
        gate = self.gating(shuffled).view(batch, self.dim, k, 1, 1).transpose(1, 2)    # back to (B, K, D, 1, 1)
        return (y.view(batch, k, self.dim, height, width) * gate).sum(1)
