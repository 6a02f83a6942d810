"""DCA: VSRM's Deformable Cross-Mamba Alignment (Sec. 3.3 of arXiv 2506.22762; no official code exists).

For every target pixel (x, y) with flow (dx, dy) to the reference frame (SpyNet in VSRM):

1. the window w of the reference around (x', y') = (x + dx, y + dy) feeds an offset network S (convolutions and
   activations only). Here S runs on the flow-warped reference map, so its receptive field (``offset_layers``
   3x3 convolutions: a (2 * offset_layers + 1)^2 window, 7x7 by default) is exactly the window around (x', y');
2. a reference region of Hr x Wr points on a unit grid around the anchor (Eq. 8: ``floor(x') - floor(Wr / 2) + j``,
   ``floor(y') - floor(Hr / 2) + i``; ``snap_to_grid=False`` anchors at (x', y') itself) is moved by the
   predicted offsets eps_r and sampled bilinearly (zeros outside the frame): Hr Wr reference tokens r^;
3. cross-mamba (Eq. 11) over the reference tokens, H_t = A_R H_(t-1) + B_R R_t, X^ = C_Q H_t: the step sizes (A)
   and B come from R = r^ + PE_R, C from the query Q = X(x, y) + PE_Q. The mixer is the library's ``CrossMamba2``
   with the reference as its target stream and the query, repeated over the tokens, as its support stream (its C);
   the aligned feature is its output at the last token, after the whole region has entered the state. Each pixel
   is one short sequence, so the SSD chunk is the whole region (Hr Wr tokens).

Positional encodings are sinusoidal in 2-D (half the channels for y, half for x, sin/cos pairs at frequencies
10000^(-2k / (C / 2))) of positions relative to the anchor: PE_R of each token's sampled position (grid + offset),
PE_Q of the query's own position (x' - anchor). The last offset convolution starts at zero: training starts from
the plain grid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssmblocks.blocks.cross_mamba import CrossMamba2
from ssmblocks.ops import flow_warp
from ssmblocks.ops.flow_warp import bilinear_gather

__all__ = ["DeformableCrossMambaAlignment", "sinusoidal_encoding_2d"]


def sinusoidal_encoding_2d(py: Tensor, px: Tensor, channels: int) -> Tensor:
    """Positions py, px (*S) -> (*S, channels): [sin(py w), cos(py w), sin(px w), cos(px w)] blocks, w_k =
    10000^(-k / (channels / 4)) for k < channels / 4. ``channels`` must be a multiple of 4."""
    quarter = channels // 4
    freqs = torch.pow(py.new_tensor(10000.0), -torch.arange(quarter, device=py.device, dtype=py.dtype) / quarter)
    ay, ax = py[..., None] * freqs, px[..., None] * freqs
    return torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], dim=-1)


class DeformableCrossMambaAlignment(nn.Module):
    """``forward(query, reference, flow)``: query, reference (B, C, H, W), flow (B, 2, H, W) (x then y, pixels,
    from the query frame into the reference frame) -> the reference aligned to the query, (B, C, H, W).

    Args:
        dim: channels C (a multiple of 4, for the positional encodings).
        region_size: (Hr, Wr) reference points per pixel.
        offset_layers: 3x3 convolutions of the offset network (LeakyReLU(0.1) between them); window side
            2 * offset_layers + 1.
        offset_channels: width of its hidden layers (default dim).
        snap_to_grid: anchor the region at the floor of the flow target (Eq. 8) or at the target itself.
        positional_encoding: add PE_R and PE_Q (the paper does); False for ablations.
        d_state, d_conv, expand, headdim: of the ``CrossMamba2`` mixer.
    """

    def __init__(self, dim: int, *, region_size: tuple[int, int] = (3, 3), offset_layers: int = 3,
                 offset_channels: int | None = None, snap_to_grid: bool = True, positional_encoding: bool = True,
                 d_state: int = 16, d_conv: int = 4, expand: int = 2, headdim: int = 16,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f"DCA needs dim divisible by 4 (2-D sin/cos encodings), got {dim}")
        if offset_layers < 1:
            raise ValueError(f"DCA needs at least one offset layer, got {offset_layers}")
        dd = {"device": device, "dtype": dtype}
        self.region_size = tuple(region_size)
        self.offset_channels = dim if offset_channels is None else offset_channels
        self.snap_to_grid, self.positional_encoding = snap_to_grid, positional_encoding
        tokens = self.region_size[0] * self.region_size[1]
        layers: list[nn.Module] = []
        width = dim
        for _ in range(offset_layers - 1):
            layers += [nn.Conv2d(width, self.offset_channels, 3, padding=1, **dd), nn.LeakyReLU(0.1)]
            width = self.offset_channels
        layers.append(nn.Conv2d(width, 2 * tokens, 3, padding=1, **dd))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.offset_net = nn.Sequential(*layers)
        self.cross_mamba = CrossMamba2(dim, d_state=d_state, d_conv=d_conv, expand=expand, headdim=headdim,
                                       share_conv1d=False, chunk_size=tokens, **dd)

    def _region(self, flow: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Absolute sampling positions py, px (B, K, H, W), their positions relative to the anchor ry, rx, and the
        query's relative position qy, qx (B, 1, H, W)."""
        height, width = flow.shape[-2:]
        rows, cols = self.region_size
        ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(height, 1)
        xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, width)
        target_y, target_x = (ys + flow[:, 1])[:, None], (xs + flow[:, 0])[:, None]          # (B, 1, H, W)
        anchor_y, anchor_x = ((target_y.floor(), target_x.floor()) if self.snap_to_grid else (target_y, target_x))
        grid_y = torch.arange(rows, device=flow.device, dtype=flow.dtype) - rows // 2
        grid_x = torch.arange(cols, device=flow.device, dtype=flow.dtype) - cols // 2
        grid_y = grid_y.view(rows, 1).expand(rows, cols).reshape(1, -1, 1, 1)
        grid_x = grid_x.view(1, cols).expand(rows, cols).reshape(1, -1, 1, 1)
        rel_x, rel_y = grid_x + offsets[:, 0::2], grid_y + offsets[:, 1::2]                  # (B, K, H, W)
        return (anchor_y + rel_y, anchor_x + rel_x, rel_y, rel_x, target_y - anchor_y, target_x - anchor_x)

    def forward(self, query: Tensor, reference: Tensor, flow: Tensor) -> Tensor:
        if query.shape != reference.shape:
            raise ValueError(f"query and reference must have one shape, got {tuple(query.shape)} and "
                             f"{tuple(reference.shape)}")
        batch, channels, height, width = query.shape
        offsets = self.offset_net(flow_warp(reference, flow))                                # (B, 2K, H, W)
        py, px, rel_y, rel_x, q_y, q_x = self._region(flow, offsets)
        tokens = bilinear_gather(reference, py, px)                                           # (B, C, K, H, W)
        ref = tokens.permute(0, 3, 4, 2, 1).reshape(batch * height * width, -1, channels)   # (B H W, K, C)
        qry = query.permute(0, 2, 3, 1).reshape(batch * height * width, 1, channels)
        if self.positional_encoding:
            ref = ref + sinusoidal_encoding_2d(rel_y, rel_x, channels).permute(0, 2, 3, 1, 4).reshape(ref.shape)
            qry = qry + sinusoidal_encoding_2d(q_y, q_x, channels).permute(0, 2, 3, 1, 4).reshape(qry.shape)
        aligned = self.cross_mamba(ref, qry.expand(ref.shape))[:, -1]                        # (B H W, C)
        return aligned.view(batch, height, width, channels).permute(0, 3, 1, 2)
