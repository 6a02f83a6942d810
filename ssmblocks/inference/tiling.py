"""Tiled inference with overlap and smooth blending, and a tile size chosen from a memory budget.

A state-space model sees the whole image (its receptive field is global), so tiles cut without overlap give
visible seams: the output near a cut differs from the whole-image output. Here neighbouring tiles overlap by
``overlap`` input pixels and, inside the overlap, their outputs are blended with weights that ramp linearly from
the tile edge; the weighted sum is divided by the summed weights, so every output pixel is a convex combination
of the tiles that cover it and no seam is left.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

__all__ = ["BudgetTooSmallError", "iter_tiles", "parse_bytes", "ramp", "run_tiled", "tile_for_budget", "tile_starts"]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` shared pixels; the last
    tile ends at the border (it may overlap its neighbour more)."""
    if tile >= size:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile_overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def ramp(length: int, ramp_lo: int, ramp_hi: int) -> Tensor:
    """(length,) weights rising linearly over ``ramp_lo`` samples, flat at 1, falling over ``ramp_hi``; > 0."""
    position = torch.arange(length, dtype=torch.float32) + 0.5
    weight = torch.ones(length)
    if ramp_lo:
        weight = torch.minimum(weight, position / ramp_lo)
    if ramp_hi:
        weight = torch.minimum(weight, position.flip(0) / ramp_hi)
    return weight


def iter_tiles(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[slice, slice]]:
    """(rows, cols) slices of the tiles, row by row."""
    for top in tile_starts(height, tile, overlap):
        for left in tile_starts(width, tile, overlap):
            yield slice(top, min(top + tile, height)), slice(left, min(left + tile, width))


def run_tiled(fn: Callable[[Tensor], Tensor], x: Tensor, *, tile: int, overlap: int, scale: int,
              progress: Callable[[int], Callable[[], None]] | None = None) -> Tensor:
    """Applies ``fn`` to overlapping tiles of ``x`` (..., C, H, W) and blends the outputs (..., C', sH, sW).

    ``fn`` maps (..., C, h, w) to (..., C', s*h, s*w). ``progress(total)`` returns a callback called once per tile.
    The blended output is accumulated in float32 and returned in ``fn``'s output dtype.
    """
    height, width = x.shape[-2:]
    tiles = list(iter_tiles(height, width, tile, overlap))
    step = progress(len(tiles)) if progress else None
    total = weights = None
    out_dtype = x.dtype
    for rows, cols in tiles:
        out = fn(x[..., rows, cols])
        out_dtype = out.dtype
        if total is None:
            total = out.new_zeros((*out.shape[:-2], height * scale, width * scale), dtype=torch.float32)
            weights = out.new_zeros((height * scale, width * scale), dtype=torch.float32)
        ramp_rows = ramp(out.shape[-2], overlap * scale if rows.start > 0 else 0,
                          overlap * scale if rows.stop < height else 0)
        ramp_cols = ramp(out.shape[-1], overlap * scale if cols.start > 0 else 0,
                          overlap * scale if cols.stop < width else 0)
        weight = torch.outer(ramp_rows, ramp_cols).to(out.device)
        out_rows = slice(rows.start * scale, rows.stop * scale)
        out_cols = slice(cols.start * scale, cols.stop * scale)
        total[..., out_rows, out_cols] += out.float() * weight
        weights[out_rows, out_cols] += weight
        if step:
            step()
    return (total / weights).to(out_dtype)


_MAX_BUDGET = 2**63
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


def parse_bytes(budget: int | float | str) -> int:
    """Bytes of a budget given as a number or a string such as '2GB', '512 MiB' (powers of 1024); a budget that is
    not a positive, finite size that fits in memory addresses (at most 2**63 bytes) is a ValueError."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float, str)):
        raise ValueError(f"a memory budget is a number of bytes or a size such as '2GB', got {budget!r}")
    if isinstance(budget, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", budget)
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(f"cannot read the memory budget {budget!r}; write e.g. '2GB', '512MB' or a number of "
                             f"bytes")
        value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        value = budget
    if not ((isinstance(value, int) or math.isfinite(value)) and 1 <= value <= _MAX_BUDGET):
        raise ValueError(f"the memory budget must be a positive size of at most 8 EiB (e.g. '2GB'), got {budget!r}")
    return int(value)


class BudgetTooSmallError(ValueError):
    """Not even the smallest tile fits the memory budget."""


def tile_for_budget(per_pixel: float, fixed: float, budget: int, *, image_size: tuple[int, int],
                    multiple: int = 8, minimum: int = 16) -> int | None:
    """The largest square tile (a multiple of ``multiple``) whose estimated peak, ``fixed + per_pixel * tile**2``
    bytes, fits ``budget``; None when the whole image fits. Raises if not even ``minimum`` fits."""
    height, width = image_size
    if fixed + per_pixel * height * width <= budget:
        return None
    side = math.isqrt(max(int((budget - fixed) / per_pixel), 0)) if budget > fixed else 0
    side -= side % multiple
    if side < minimum:
        raise BudgetTooSmallError(f"a memory budget of {budget / 2**20:.0f} MiB is too small for this model and image: "
                                  f"even a {minimum}x{minimum} tile needs about "
                                  f"{(fixed + per_pixel * minimum**2) / 2**20:.0f} MiB")
    return side
