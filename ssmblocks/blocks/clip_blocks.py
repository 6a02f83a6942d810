"""VSRM's clip blocks: S2TMB, T2SMB and the Dual Aggregation Mamba Block (DAMB) of arXiv 2506.22762.

Each block is ``x + mixer(norm1(x))`` then ``x + TGFN(norm2(x))`` with LayerNorms, on channels-last clips
(B, T, H, W, C); the mixer is S2T-Mamba (S2TMB) or T2S-Mamba (T2SMB). A DAMB is ``depth`` S2TMBs followed by
one T2SMB. The paper gives this structure but no code; the norm (LayerNorm) is this library's choice.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.s2t_mamba import S2TMamba, t2s_mamba
from ssmblocks.blocks.tgfn import TGFN

__all__ = ["DAMB", "S2TMB", "T2SMB"]


class _ClipBlock(nn.Module):
    """norm -> mixer -> residual; norm -> TGFN -> residual. (B, T, H, W, C) -> (B, T, H, W, C)."""

    def __init__(self, dim: int, mixer: nn.Module, *, ffn_expansion: float, ffn_kernel: tuple[int, int, int],
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        dd = {"device": device, "dtype": dtype}
        self.norm1 = nn.LayerNorm(dim, **dd)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(dim, **dd)
        self.ffn = TGFN(dim, expansion=ffn_expansion, kernel_size=ffn_kernel, **dd)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, T, H, W, C)", self.dim, type(self).__name__)
        x = x + self.mixer(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class S2TMB(_ClipBlock):
    """Spatial-to-Temporal Mamba block. Args: dim; share_directions (of ``S2TMamba``); ffn_expansion, ffn_kernel
    (of ``TGFN``); **mamba_options (d_state, d_conv, expand, ... of ``Mamba``)."""

    def __init__(self, dim: int, *, share_directions: bool = True, ffn_expansion: float = 2.0,
                 ffn_kernel: tuple[int, int, int] = (3, 3, 3), device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **mamba_options) -> None:
        dd = {"device": device, "dtype": dtype}
        mixer = S2TMamba(dim, share_directions=share_directions, **dd, **mamba_options)
        super().__init__(dim, mixer, ffn_expansion=ffn_expansion, ffn_kernel=ffn_kernel, **dd)


class T2SMB(_ClipBlock):
    """Temporal-to-Spatial Mamba block (forward time-major scan). Args as ``S2TMB`` without share_directions."""

    def __init__(self, dim: int, *, ffn_expansion: float = 2.0, ffn_kernel: tuple[int, int, int] = (3, 3, 3),
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, **mamba_options) -> None:
        dd = {"device": device, "dtype": dtype}
        mixer = t2s_mamba(dim, **dd, **mamba_options)
        super().__init__(dim, mixer, ffn_expansion=ffn_expansion, ffn_kernel=ffn_kernel, **dd)


class DAMB(nn.Sequential):
    """``depth`` S2TMBs then one T2SMB on (B, T, H, W, C). Options as ``S2TMB``; T2SMB takes all but
    share_directions."""

    def __init__(self, dim: int, depth: int = 2, *, share_directions: bool = True, ffn_expansion: float = 2.0,
                 ffn_kernel: tuple[int, int, int] = (3, 3, 3), device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **mamba_options) -> None:
        if depth < 1:
            raise ValueError(f"a DAMB needs at least one S2TMB, got depth={depth}")
        options = {"ffn_expansion": ffn_expansion, "ffn_kernel": ffn_kernel, "device": device, "dtype": dtype,
                   **mamba_options}
        super().__init__(*(S2TMB(dim, share_directions=share_directions, **options) for _ in range(depth)),
                         T2SMB(dim, **options))
