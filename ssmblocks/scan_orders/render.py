"""Pictures of scan orders: ``render(order, shape)`` -> an RGB uint8 numpy image; ``save_png`` writes it.

One panel per path (paths stacked top to bottom; for clips the frames of a path side by side; for a ``Schedule``
its orders side by side, block 0 on the left). Each pixel is coloured by when the path visits it (dark purple
first, yellow last, viridis-like); a white line traces the first steps, with a white square on the first pixel
and an arrowhead where the trace ends. Padding tokens are not drawn (they are outside the map); for the
cross-scale order the fine pixels are drawn, coloured by their position in the interleaved sequence.
No plotting library is needed.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

import numpy as np

from ssmblocks.scan_orders.base import ScanOrder
from ssmblocks.scan_orders.schedules import Schedule

__all__ = ["render", "save_png"]

_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
_WHITE = np.array([255, 255, 255], dtype=np.uint8)


def _colour(fraction: np.ndarray) -> np.ndarray:
    """[0, 1] -> RGB along the viridis anchor colours, linearly interpolated."""
    pos = np.clip(fraction, 0, 1) * (len(_ANCHORS) - 1)
    lo = np.minimum(pos.astype(int), len(_ANCHORS) - 2)
    t = (pos - lo)[..., None]
    return ((1 - t) * _ANCHORS[lo] + t * _ANCHORS[lo + 1]).astype(np.uint8)


def _line(canvas: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> None:
    steps = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    for s in np.linspace(0, 1, steps + 1):
        y, x = round(a[0] + s * (b[0] - a[0])), round(a[1] + s * (b[1] - a[1]))
        if 0 <= y < canvas.shape[0] and 0 <= x < canvas.shape[1]:
            canvas[y, x] = _WHITE


def _panel(order_pos: np.ndarray, length: int, cell: int, trace: list[tuple[int, int]]) -> np.ndarray:
    """order_pos (h, w): visit position of every pixel; trace: the first visited pixels (row, col)."""
    panel = np.repeat(np.repeat(_colour(order_pos / max(length - 1, 1)), cell, 0), cell, 1)
    centres = [((r + 0.5) * cell - 0.5, (c + 0.5) * cell - 0.5) for r, c in trace]
    for a, b in itertools.pairwise(centres):
        _line(panel, a, b)
    if centres:
        r, c = (int(v) for v in centres[0])
        q = max(1, cell // 4)
        panel[max(0, r - q):r + q + 1, max(0, c - q):c + q + 1] = _WHITE
    if len(centres) > 1:  # arrowhead: two short strokes back from the end, +-30 degrees off the last step
        (y0, x0), (y1, x1) = centres[-2], centres[-1]
        direction = np.array([y1 - y0, x1 - x0]) / max(np.hypot(y1 - y0, x1 - x0), 1e-9)
        for angle in (np.pi / 6, -np.pi / 6):
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            back = rot @ direction * cell * 0.6
            _line(panel, (y1, x1), (y1 - back[0], x1 - back[1]))
    return panel


def render(order: ScanOrder | Schedule, shape: tuple[int, ...], cell: int = 12,
           trace_steps: int | None = None) -> np.ndarray:
    """RGB image (uint8, (height, width, 3)) of every path of ``order`` on a map of spatial ``shape``.

    ``shape``: (H, W) for image orders, (T, H, W) for clip orders (``order.ndim``). A ``Schedule`` is drawn one
    order per column, in block order. ``cell``: pixels per map pixel; ``trace_steps``: how many first steps to
    trace (default: two rows' worth).
    """
    shape = tuple(shape)
    if isinstance(order, Schedule):
        columns = [render(entry, shape, cell, trace_steps) for entry in order.orders]
        gap = np.full((columns[0].shape[0], 2 * max(2, cell // 2), 3), 255, np.uint8)
        return np.concatenate([part for column in columns for part in (column, gap)][:-1], axis=1)
    if len(shape) != order.ndim:
        layout = "(H, W)" if order.ndim == 2 else "(T, H, W)"
        raise ValueError(f"{order!r} scans {order.ndim}-D maps: render it on a shape {layout}, got {shape}")
    paths = order.paths(shape, "cpu").numpy()
    inverse = order.inverse(shape, "cpu").numpy()
    num_pixels = int(np.prod(shape))
    frames, (h, w) = (shape[0], shape[1:]) if len(shape) == 3 else (1, shape)
    steps = trace_steps if trace_steps is not None else 2 * max(h, w)
    gap = max(2, cell // 2)
    rows = []
    for k in range(paths.shape[0]):
        visited = [int(p) for p in paths[k] if p < num_pixels][:steps]
        panels = []
        for f in range(frames):
            pos = inverse[k].reshape(frames, h, w)[f]
            trace = [(divmod(p % (h * w), w)) for p in visited if p // (h * w) == f]
            panels.append(_panel(pos, paths.shape[1], cell, trace))
            panels.append(np.full((h * cell, gap, 3), 255, np.uint8))
        rows.append(np.concatenate(panels[:-1], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def save_png(image: np.ndarray, path: str | Path) -> None:
    """Writes an (H, W, 3) uint8 image as a PNG (8-bit RGB, no filtering)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"save_png expects an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                           + chunk(b"IEND", b""))
