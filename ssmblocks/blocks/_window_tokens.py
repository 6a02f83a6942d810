"""Feature maps <-> per-window token sequences, through the ``WindowPartition`` scan order (zero padding)."""

from __future__ import annotations

from torch import Tensor

from ssmblocks.scan_orders import WindowPartition


def to_window_tokens(order: WindowPartition, x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B * windows, size**2, C): windows row-major, each window row-major, zero-padded."""
    return order.scan(x)[:, 0].transpose(1, 2)


def from_window_tokens(order: WindowPartition, tokens: Tensor, shape) -> Tensor:
    """(B * windows, size**2, C) -> (B, C, H, W) for a map of spatial ``shape`` (padding cropped)."""
    return order.merge_sum(tokens.transpose(1, 2).unsqueeze(1), shape)
