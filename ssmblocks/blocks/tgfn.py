"""TGFN: VSRM's Temporal-Gated Feed-forward Network over a clip (Eq. 6 of arXiv 2506.22762).

    X^ = W_p1 X;  [X1, X2] = chunk(X^);  out = W_p2( W_d1 LN(X1) * GELU(W_d2 LN(X2)) )

W_p1 / W_p2 are per-token linear projections, W_d1 / W_d2 3-D depthwise convolutions over (T, H, W), so every
token sees its spatial and temporal neighbours. The paper publishes no code (github PhuTran1005/VSRM holds only
a README); the hidden width (``expansion``), the kernel and the LayerNorm epsilon are this library's choices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout

__all__ = ["TGFN"]


class TGFN(nn.Module):
    """(B, T, H, W, C) channels-last -> (B, T, H, W, C).

    Args:
        dim: channels C.
        expansion: hidden width = int(expansion * dim) of each half (W_p1 maps C -> 2 hidden).
        kernel_size: (kt, kh, kw) of the two depthwise 3-D convolutions (odd; zero padding keeps the size).
        bias: biases of the projections and the depthwise convolutions.
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, *, expansion: float = 2.0, kernel_size: tuple[int, int, int] = (3, 3, 3),
                 bias: bool = True, eps: float = 1e-5, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"TGFN kernel_size must be odd, got {kernel_size}")
        dd = {"device": device, "dtype": dtype}
        self.hidden = int(expansion * dim)
        self.project_in = nn.Linear(dim, 2 * self.hidden, bias=bias, **dd)
        self.norm1 = nn.LayerNorm(self.hidden, eps=eps, **dd)
        self.norm2 = nn.LayerNorm(self.hidden, eps=eps, **dd)
        padding = tuple(k // 2 for k in kernel_size)
        self.dwconv1, self.dwconv2 = (nn.Conv3d(self.hidden, self.hidden, kernel_size, padding=padding,
                                                groups=self.hidden, bias=bias, **dd) for _ in range(2))
        self.project_out = nn.Linear(self.hidden, dim, bias=bias, **dd)

    @staticmethod
    def _depthwise(conv: nn.Conv3d, x: Tensor) -> Tensor:
        """(B, T, H, W, C) through a Conv3d on (B, C, T, H, W), back to channels-last."""
        return conv(x.movedim(-1, 1)).movedim(1, -1)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, T, H, W, C)", self.dim, type(self).__name__)
        x1, x2 = self.project_in(x).chunk(2, dim=-1)
        gated = self._depthwise(self.dwconv1, self.norm1(x1)) * F.gelu(self._depthwise(self.dwconv2, self.norm2(x2)))
        return self.project_out(gated)
