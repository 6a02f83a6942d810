"""Backward warping of feature maps by optical flow, and flow composition for second-order propagation.

    out = flow_warp(x, flow)                # x (B, C, H, W), flow (B, 2, H, W) in pixels: (dx, dy)
    flow_n2 = compose_flows(flow_n1, flow_n2_prev)

``out[b, :, i, j]`` is ``x[b]`` sampled bilinearly at ``(i + flow[b, 1, i, j], j + flow[b, 0, i, j])``; outside
the map it reads zeros (``padding_mode='zeros'``) or the nearest border pixel (``'border'``). Semantics of BasicSR's
``basicsr/archs/arch_util.py::flow_warp`` (XPixelGroup/BasicSR, as vendored by CUHK-AIM-Group/MedVSR at 3421505):
pixel grid plus flow, scaled by ``2 / max(size - 1, 1)`` and sampled with ``align_corners=True``. Unlike BasicSR the
flow here is channel-first (B, 2, H, W), the layout flow networks produce. As in BasicSR, a map one pixel high
(wide) ignores the y (x) displacement: the scaling divides by ``max(size - 1, 1)`` and ``align_corners`` maps
every grid value back to row (column) 0.

``flow_warp_ref`` computes the same bilinear interpolation directly (four gathers), the test oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bilinear_gather", "compose_flows", "flow_warp", "flow_warp_ref"]

_PADDING_MODES = ("zeros", "border")


def _check(x: Tensor, flow: Tensor, padding_mode: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(flow, Tensor) or flow.dim() != 4 or not flow.is_floating_point():
        raise ValueError(f"flow must be a float tensor (B, 2, H, W), got {getattr(flow, 'shape', type(flow).__name__)}")
    batch, _, height, width = x.shape
    if tuple(flow.shape) != (batch, 2, height, width):
        raise ValueError(f"flow must have shape (B, 2, H, W) = ({batch}, 2, {height}, {width}) to warp x of shape "
                         f"{tuple(x.shape)}, got {tuple(flow.shape)}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")


def flow_warp(x: Tensor, flow: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Warps ``x`` (B, C, H, W) by ``flow`` (B, 2, H, W) (x then y displacement, pixels); bilinear."""
    _check(x, flow, padding_mode)
    height, width = x.shape[-2:]
    dtype = torch.promote_types(x.dtype, flow.dtype)
    ys = torch.arange(height, device=x.device, dtype=dtype).view(height, 1)
    xs = torch.arange(width, device=x.device, dtype=dtype).view(1, width)
    grid_x = 2.0 * (xs + flow[:, 0]) / max(width - 1, 1) - 1.0
    grid_y = 2.0 * (ys + flow[:, 1]) / max(height - 1, 1) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=3).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def compose_flows(flow_n1: Tensor, flow_n2: Tensor) -> Tensor:
    """Flow to the frame two steps back: ``flow_n1 + flow_warp(flow_n2, flow_n1)`` (B, 2, H, W).

    ``flow_n1`` maps the current frame to the previous one, ``flow_n2`` the previous one to the one before.
    """
    return flow_n1 + flow_warp(flow_n2, flow_n1)


def bilinear_gather(x: Tensor, py: Tensor, px: Tensor, scale: Tensor | None = None) -> Tensor:
    """Samples ``x`` (N, C, H, W) at pixel positions ``py``, ``px`` (N, *S); zeros outside -> (N, C, *S).

    Each of the four neighbours outside the map contributes zero (torchvision's deform_conv2d and grid_sample's
    zero padding). ``scale`` (N, *S) multiplies each sample (a modulation mask), folded into the bilinear weights.
    One gather of all four neighbours; differentiable in ``x``, ``py``, ``px`` and ``scale``.
    """
    batch, channels, height, width = x.shape
    sample_shape = py.shape[1:]
    py, px = py.reshape(batch, 1, -1), px.reshape(batch, 1, -1)
    y0, x0 = torch.floor(py), torch.floor(px)
    fy, fx = py - y0, px - x0
    # the two rows and two columns around each sample: (N, 2, n); neighbour q = 2 * row + column
    step = torch.arange(2, dtype=py.dtype, device=py.device).view(1, 2, 1)
    ys, xs = y0 + step, x0 + step
    wy, wx = torch.cat((1 - fy, fy), dim=1), torch.cat((1 - fx, fx), dim=1)
    valid_y, valid_x = (ys >= 0) & (ys <= height - 1), (xs >= 0) & (xs <= width - 1)
    weights = torch.where(valid_y[:, :, None] & valid_x[:, None, :], wy[:, :, None] * wx[:, None, :], 0.0)
    if scale is not None:
        weights = weights * scale.reshape(batch, 1, 1, -1)
    index = (ys.clamp(0, height - 1) * width)[:, :, None] + xs.clamp(0, width - 1)[:, None, :]
    index = index.long().view(batch, 1, -1)                                    # (N, 1, 4 n)
    values = x.reshape(batch, channels, height * width).gather(2, index.expand(batch, channels, index.shape[2]))
    out = (values.view(batch, channels, 4, -1) * weights.view(batch, 1, 4, -1)).sum(dim=2)
    return out.reshape(batch, channels, *sample_shape)


def flow_warp_ref(x: Tensor, flow: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Reference of ``flow_warp``: the bilinear interpolation written out (border mode clamps the positions)."""
    _check(x, flow, padding_mode)
    height, width = x.shape[-2:]
    py = torch.arange(height, dtype=flow.dtype, device=flow.device).view(height, 1) + flow[:, 1]
    px = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, width) + flow[:, 0]
    if padding_mode == "border":
        py, px = py.clamp(0, height - 1), px.clamp(0, width - 1)
    return bilinear_gather(x, py, px)
