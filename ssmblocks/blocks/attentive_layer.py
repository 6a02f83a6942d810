"""MambaIRv2's AttentiveLayer (window attention + ASSM, each with a feed-forward) and its residual group, ASSB.

Facts (csguoh/MambaIR ``basicsr/archs/mambairv2_arch.py`` / ``mambairv2light_arch.py`` at 33d7b34,
``AttentiveLayer``, ``BasicBlock``, ``ASSB``), for tokens x (B, H, W, C), LayerNorms eps 1e-5:

    x_win = WindowMHSA(wqkv(norm1(x))) + x;  x_win = x_win + ffn1(norm2(x_win));  x1 = x * scale1 + x_win
    x_aca = ASSM(norm3(x1), embeddingA) + x1;  x2 = x_aca + ffn2(norm4(x_aca));     out = x1 * scale2 + x2

The block input is counted twice (quirk 5 of shared/reference/mambairv2.md): out carries (1 + scale) x. scale1 and
scale2 start at 1e-4. The FFNs are ``ConvFFN`` (classic) or ``SpatialGateFFN`` (light; the only difference between
the two official files). Layer j of a group is shifted by ws // 2 when j is odd. ASSB: the layers, then a 3x3 conv
(key ``conv``), plus the group input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks._keys import keyed
from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.assm import ASSM, check_routing
from ssmblocks.blocks.conv_ffn import ConvFFN, SpatialGateFFN
from ssmblocks.blocks.window_attention import WindowAttention, shifted_window_mask

__all__ = ["ASSB", "FFN_VARIANTS", "AttentiveLayer"]

FFN_VARIANTS = ("conv", "gate")


class AttentiveLayer(nn.Module):
    """Window MHSA and ASSM, each followed by a feed-forward (see the module docstring).
    (B, H, W, dim) -> (B, H, W, dim), H and W multiples of ``window_size``.

    Args:
        dim: channels C.
        num_heads, window_size, shift_size: the window attention (shift 0 or ws // 2 in MambaIRv2).
        d_state, inner_rank, num_tokens, mlp_ratio, routing, tie_order, prompt_alignment: the ASSM (see ``ASSM``);
            hidden = int(dim * mlp_ratio) is also the FFN width.
        ffn: "conv" (``ConvFFN`` with ``convffn_kernel_size``, classic) or "gate" (``SpatialGateFFN``, light).
        qkv_bias: bias of ``wqkv``.
        device, dtype: factory arguments.

    ``forward(x, rpi=None, mask=None)``: the relative position index and the shift mask, computed when not given
    (a model computes them once per forward and passes them to every layer).
    """

    def __init__(self, dim: int, *, num_heads: int, window_size: int = 16, shift_size: int = 0, d_state: int = 16,
                 inner_rank: int = 32, num_tokens: int = 64, mlp_ratio: float = 2.0, ffn: str = "conv",
                 convffn_kernel_size: int = 5, qkv_bias: bool = True, routing: str = "argmax",
                 tie_order: str = "stable", prompt_alignment: str = "official",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if ffn not in FFN_VARIANTS:
            raise ValueError(f"ffn must be one of {FFN_VARIANTS}, got {ffn!r}")
        dd = {"device": device, "dtype": dtype}
        hidden = int(dim * mlp_ratio)
        self.dim, self.window_size, self.shift_size = dim, window_size, shift_size
        self.scale1 = nn.Parameter(torch.full((dim,), 1e-4, **dd))
        self.scale2 = nn.Parameter(torch.full((dim,), 1e-4, **dd))
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(dim, **dd) for _ in range(4))
        self.wqkv = nn.Linear(dim, 3 * dim, bias=qkv_bias, **dd)
        self.win_mhsa = WindowAttention(dim, num_heads=num_heads, window_size=window_size, shift_size=shift_size,
                                        **dd)
        self.assm = ASSM(dim, d_state=d_state, mlp_ratio=mlp_ratio, num_tokens=num_tokens, inner_rank=inner_rank,
                         routing=routing, tie_order=tie_order, prompt_alignment=prompt_alignment, **dd)
        if ffn == "conv":
            self.convffn1, self.convffn2 = (ConvFFN(dim, hidden_features=hidden, kernel_size=convffn_kernel_size,
                                                    **dd) for _ in range(2))
        else:
            self.convffn1, self.convffn2 = (SpatialGateFFN(dim, hidden_features=hidden, **dd) for _ in range(2))
        self.embeddingA = nn.Embedding(inner_rank, d_state, **dd)
        nn.init.uniform_(self.embeddingA.weight, -1 / inner_rank, 1 / inner_rank)

    def forward(self, x: Tensor, rpi: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        x_win = self.win_mhsa(self.wqkv(self.norm1(x)), rpi, mask) + x
        x_win = x_win + self.convffn1(self.norm2(x_win))
        x = x * self.scale1 + x_win
        x_aca = self.assm(self.norm3(x), self.embeddingA) + x
        return x * self.scale2 + (x_aca + self.convffn2(self.norm4(x_aca)))


class ASSB(nn.Module):
    """The attentive state-space group: ``depth`` AttentiveLayers (odd ones shifted by ws // 2), a 3x3 conv, plus
    the input. Feature maps (B, dim, H, W) -> (B, dim, H, W), H and W multiples of ``window_size``.

    Args:
        dim: channels C. depth: layers.
        num_heads, window_size and every other keyword: passed to each ``AttentiveLayer``.
        device, dtype: factory arguments.

    ``forward(x, rpi=None, mask=None)`` as ``AttentiveLayer`` (the mask is computed once here when not given).
    """

    def __init__(self, dim: int, depth: int, *, num_heads: int, window_size: int = 16,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None, **layer_options) -> None:
        super().__init__()
        self.dim, self.window_size = dim, window_size
        layers = nn.ModuleList(
            AttentiveLayer(dim, num_heads=num_heads, window_size=window_size,
                           shift_size=0 if j % 2 == 0 else window_size // 2, device=device, dtype=dtype,
                           **layer_options)
            for j in range(depth))
        self.residual_group = keyed("layers", layers)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, device=device, dtype=dtype)

    @property
    def layers(self) -> nn.ModuleList:
        return self.residual_group["layers"]

    def set_routing(self, routing: str) -> None:
        """Sets the routing mode ("argmax" / "gumbel") of every layer's ASSM."""
        check_routing(routing)
        for layer in self.layers:
            layer.assm.routing = routing

    def forward(self, x: Tensor, rpi: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        height, width = x.shape[-2:]
        ws = self.window_size
        if mask is None and len(self.layers) > 1:
            mask = shifted_window_mask(height, width, ws, ws // 2, device=x.device, dtype=x.dtype)
        y = x.permute(0, 2, 3, 1)
        for layer in self.layers:
            y = layer(y, rpi, mask)
        return self.conv(y.permute(0, 3, 1, 2)) + x
