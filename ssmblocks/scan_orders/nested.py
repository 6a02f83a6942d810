"""The nested S-shaped scan (NSS) of MaIR: stripes of columns, snaking rows inside each stripe, stripes joined.

Facts (XLearning-SCU/2025-CVPR-MaIR at 2fb433e, ``basicsr/archs/shift_scanf_util.py``, ``mair_ids_generate`` and
``mair_shift_ids_generate``; the rule as stated in shared/reference/mair.md):

- A map of h rows and w columns is cut into column stripes of width ``stripe`` (``scan_len``); with ``shift`` t > 0
  the first stripe is [0, t) and the others follow from t. The last stripe is narrower when the width does not
  divide (the "leftover").
- Stripe j is walked top->bottom for even j, bottom->top for odd j; the u-th row visited inside a stripe (u counted
  in visiting order) left->right for even u, right->left for odd u. Stripes follow each other left to right, so the
  path is continuous.
- Official quirk: when t > 0 and w < t the sequence is the plain raster order (row by row, no snake).
- MaIR scans four sequences: the map (k=0), the map rotated 180 deg (k=1: pixel L-1-q of sequence 0's q-th id),
  the transposed map (k=2: its stripes are bands of rows), and the rotated transpose (k=3). k=1 and k=3 are NOT the
  reverses of k=0 and k=2.

The orders are computed in closed form from one arange (each pixel's position in the path, then inverted with a
scatter), so they also build on symbolic sizes under torch.compile / torch.export; eager tables are cached like every
order's. The official code instead rebuilds them with Python loops on every forward at a new size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmblocks.scan_orders.base import ScanOrder, concat
from ssmblocks.scan_orders.schedules import Schedule

__all__ = ["NestedS", "mair_schedule", "nested_s_scan"]


def _positions(rows: int, cols: int, stripe: int, shift: int, raster_fallback: bool) -> Tensor:
    """(rows * cols,) int64: the step at which the NSS path over a rows x cols map visits each row-major pixel."""
    pixel = torch.arange(rows * cols)
    r, c = pixel // cols, pixel % cols
    offset = (stripe - shift) % stripe                       # column c sits at c + offset in a grid of full stripes
    j = (c + offset) // stripe                               # stripe index (0: the narrow first one when shifted)
    start = (j * stripe - offset).clamp(min=0)               # first column of stripe j
    end = ((j + 1) * stripe - offset).clamp(max=cols)        # one past its last column
    width = end - start
    u = torch.where(j % 2 == 0, r, rows - 1 - r)             # the row's rank in the stripe's visiting order
    snake = u % 2 == 1
    if raster_fallback and shift:                            # the quirk: no snake at all when cols < shift
        snake = snake & (pixel.new_zeros(()) + cols >= shift)
    v = torch.where(snake, width - 1 - (c - start), c - start)
    return rows * start + u * width + v


class NestedS(ScanOrder):
    """One nested S-shaped path (see the module docstring) over a (B, C, H, W) map.

    Args:
        stripe: stripe width (MaIR's ``scan_len``), >= 1.
        shift: width of the narrow first stripe, 0 <= shift < stripe (MaIR's odd blocks: stripe // 2; 0: none).
        transpose: scan the transposed map (stripes become bands of rows of the original).
        rotate: scan the map rotated by 180 deg (pixel p becomes L - 1 - p).
        raster_fallback: the official quirk (default): a map narrower than ``shift`` is scanned in plain raster
            order; False: it is one stripe, snaked like any other.
    """

    num_paths = 1

    def __init__(self, stripe: int, shift: int = 0, *, transpose: bool = False, rotate: bool = False,
                 raster_fallback: bool = True) -> None:
        if isinstance(stripe, bool) or not isinstance(stripe, int) or stripe < 1:
            raise ValueError(f"stripe must be an integer >= 1, got {stripe!r}")
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < stripe:
            raise ValueError(f"shift must be an integer in [0, stripe={stripe}), got {shift!r}")
        self.stripe, self.shift, self.transpose, self.rotate = stripe, shift, bool(transpose), bool(rotate)
        self.raster_fallback = bool(raster_fallback)

    def build_paths(self, shape):
        h, w = shape
        if self.transpose:      # the NSS of the w x h transpose; its pixel q is the original (q mod h, q div h)
            q = torch.arange(h * w)
            pos = _positions(w, h, self.stripe, self.shift, self.raster_fallback)
            path = torch.empty_like(q).scatter(0, pos, q)
            path = (path % h) * w + path // h
        else:
            pos = _positions(h, w, self.stripe, self.shift, self.raster_fallback)
            path = torch.empty_like(pos).scatter(0, pos, torch.arange(h * w))
        if self.rotate:
            path = h * w - 1 - path
        return path[None]


def nested_s_scan(stripe: int, shifted: bool = False, *, raster_fallback: bool = True) -> ScanOrder:
    """MaIR's four NSS sequences, in the official order (which fixes the per-path parameters' layout):
    [map, map rotated 180 deg, transpose, rotated transpose]. ``shifted``: the odd blocks' variant, the first stripe
    ``stripe // 2`` wide (no shift when stripe is 1). ``raster_fallback``: see ``NestedS``."""
    shift = stripe // 2 if shifted else 0
    return concat(*(NestedS(stripe, shift, transpose=t, rotate=r, raster_fallback=raster_fallback)
                    for t in (False, True) for r in (False, True)))


def mair_schedule(stripe: int, *, raster_fallback: bool = True) -> Schedule:
    """MaIR's residual groups: even blocks the plain NSS, odd blocks the shifted one."""
    return Schedule([nested_s_scan(stripe, raster_fallback=raster_fallback),
                     nested_s_scan(stripe, shifted=True, raster_fallback=raster_fallback)])
