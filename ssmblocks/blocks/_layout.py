"""The check every public block runs on its input: the layout it expects, named in the error.

Layouts (docs/architecture.md): feature maps ``(B, C, H, W)``, channels-last tokens ``(B, H, W, C)``, clips
``(B, T, H, W, C)``, sequences ``(B, L, C)``, and ``(B, ..., C)`` for layers that work on any channels-last grid.
A block declares one and its channel count; a tensor with another rank or with ``C`` on the wrong axis is refused
with a message naming the expected layout, instead of surfacing as a LayerNorm shape error deep inside (where
``C == W`` a channels-first map has the right shape for a channels-last block: no shape check can see that).
"""

from __future__ import annotations

from torch import Tensor

# layout name -> (rank, axis holding the channels)
LAYOUTS: dict[str, tuple[int, int]] = {
    "(B, C, H, W)": (4, 1),
    "(B, H, W, C)": (4, 3),
    "(B, T, H, W, C)": (5, 4),
    "(B, T, C, H, W)": (5, 2),
    "(B, L, C)": (3, 2),
    "(B, ..., C)": (-1, -1),   # any rank >= 2, channels last (1-D mixers, MLPs and norms on any token grid)
}


def check_layout(x: Tensor, layout: str, channels: int, block: str) -> None:
    """Raises ValueError unless ``x`` has ``layout`` (a key of LAYOUTS) with ``channels`` on its channel axis.

    Shape checks only (no data), so it costs nothing under torch.compile and torch.export: the rank and the
    channel count are static there.
    """
    rank, axis = LAYOUTS[layout]
    if (x.dim() != rank if rank > 0 else x.dim() < 2) or x.shape[axis] != channels:
        hint = ""
        if layout == "(B, H, W, C)" and x.dim() == 4 and x.shape[1] == channels:
            hint = " (this looks like a channels-first map: x.permute(0, 2, 3, 1))"
        elif layout == "(B, C, H, W)" and x.dim() == 4 and x.shape[3] == channels:
            hint = " (this looks like channels-last tokens: x.permute(0, 3, 1, 2))"
        raise ValueError(f"{block} expects {layout} input with C = {channels}, got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}{hint}")
