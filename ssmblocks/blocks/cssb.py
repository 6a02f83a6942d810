"""CSSB, MedVSR's cross state-space block: the t-1 features attend, through a cross Mamba-2, to the warped t-2 ones.

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/modules/mamba_vision.py`` (``CrossMambaAlignmentBlock``): both maps
zero-padded to multiples of the window and split into windows (one sequence each, row-major, one direction);
``x = x + mixer(norm1(x), norm1_b(y)); x = x + mlp(norm2(x))`` with LayerNorms (eps 1e-5) and an MLP of width
``mlp_ratio * dim``; windows merged back and the padding cropped.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.cross_mamba import CrossMamba2
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.scan_orders import WindowPartition

__all__ = ["CSSB"]


class CSSB(nn.Module):
    """``forward(x, y)``: target x (B, dim, H, W), support y (B, support_dim, H, W) -> (B, dim, H, W).

    Args:
        dim, support_dim: channels of the target and support maps (support_dim defaults to dim).
        window_size: side of the square windows (each one sequence of window_size**2 tokens).
        mlp_ratio: MLP width / dim. positional_conv: the depthwise 3x3 ``pe`` conv on C inside each window.
        d_state, d_conv, expand, headdim, ngroups, chunk_size, share_conv1d: of the ``CrossMamba2`` mixer.
    """

    def __init__(self, dim: int, *, support_dim: int | None = None, window_size: int = 16, mlp_ratio: float = 4.0,
                 positional_conv: bool = True, d_state: int = 16, d_conv: int = 3, expand: int = 1,
                 headdim: int = 16, ngroups: int = 1, chunk_size: int = 256, share_conv1d: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        support_dim = support_dim or dim
        self.dim, self.support_dim = dim, support_dim
        self.order = WindowPartition(window_size)
        self.norm1 = nn.LayerNorm(dim, **dd)
        self.norm1_b = nn.LayerNorm(support_dim, **dd)
        self.mixer = CrossMamba2(dim, support_dim=support_dim, d_state=d_state, d_conv=d_conv, expand=expand,
                                 headdim=headdim, ngroups=ngroups, chunk_size=chunk_size, share_conv1d=share_conv1d,
                                 pe_window=window_size if positional_conv else None, **dd)
        self.norm2 = nn.LayerNorm(dim, **dd)
        self.mlp = GatedMLP(dim, hidden_features=int(dim * mlp_ratio), **dd)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        check_layout(y, "(B, C, H, W)", self.support_dim, f"{type(self).__name__} (support y)")
        if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
            raise ValueError(f"CSSB takes two maps (B, C, H, W) of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
        tokens, support = self.order.to_tokens(x), self.order.to_tokens(y)
        tokens = tokens + self.mixer(self.norm1(tokens), self.norm1_b(support))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return self.order.from_tokens(tokens, x.shape[2:])
