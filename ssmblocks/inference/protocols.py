"""The official test procedures behind the published numbers, as named presets of ``restore(protocol=...)``.

- ``"mambair"``: ``MambaIRModel.test`` (csguoh/MambaIR ``basicsr/models/mambair_model.py`` at 33d7b34): n = h//200+1
  splits per axis; the image is reflect-padded at the bottom/right to a multiple of n; each split is extended by
  shave = split//10 pixels into its inner neighbours, run alone, and its own part pasted (no blending); the padding
  is cropped away.
- ``"mambairv2"``: ``MambaIRv2Model.test`` (csguoh/MambaIR ``basicsr/models/mambairv2_model.py`` at 33d7b34, the
  same ``test()`` in ``mambairv2light_model.py``): the same arithmetic as ``"mambair"``; each tile then pads itself
  to multiples of the window inside the model.
- ``"mambacsr"``: ``MambaCSRModel.test`` (renyulin-f/MambaCSR ``basicsr/models/mambacsr_model.py`` at f71199e): as
  above with h//192+1 splits and shave = split//4, and each tile is extended to the next multiple of 64 strictly
  above its size (a 128-pixel tile becomes 192) by appending its own mirror image (bottom, then right); the output
  is cropped back before pasting.
- ``"mair_plus"``: MaIR+ (XLearning-SCU/2025-CVPR-MaIR ``MaIRPlusModel`` at 2fb433e, as shared/reference/mair.md
  states it): the x8 geometric self-ensemble — the input, its vertical flip, horizontal flip, both, and the H/W
  transposes of those four — each run through the ``"mambair"`` tiling, every output mapped back and the eight
  averaged.
- ``"eamamba_sr"``: the EAMamba light-SR test (daidaijr/EAMamba ``datasets`` ``calc_padding(h, w, base=8)`` +
  ``test.py`` at ec13c77): the input reflect-padded bottom/right to a multiple of 8, one forward, the output cropped
  to (s h, s w).
- ``"eamamba_realsr"``: the EAMamba RealSR test (``test.py`` ``forward_patch`` with ``eval_crop_size`` 2048): the
  input reflect-padded bottom/right to a multiple of 8; four overlapping corner tiles, rows [0, h//2 + 16 - (h//2) %
  8) and [h - h//2 - 16 + (h - h//2) % 8, h), columns likewise, each its own forward (recursing into each tile
  while h * w >= 2048^2); each tile gives its own quadrant (rows [0, h//2) / [h//2, h), columns likewise), pasted
  without blending; cropped back. (The EAMamba U-Net pads to 8 itself, so its whole-image tests need no preset.)
- ``"dvmsr"``, ``"medvsr"``, ``"none"`` and ``""`` (a cfg without a protocol): the whole image (or the whole
  sequence) at once.

Each preset reproduces the official arithmetic exactly, given the same model; the official code runs batch 1,
here every image of a batch is cut the same way and the tiles are run batched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PROTOCOLS", "PaddedProtocol", "SelfEnsemble", "SplitProtocol", "run_protocol"]


@dataclass(frozen=True)
class SplitProtocol:
    """An official split-and-paste procedure: ``h // base + 1`` splits per axis, overlap ``split // shave_div``,
    and optionally each tile mirror-extended to the next multiple of ``mirror_multiple``."""

    base: int
    shave_div: int
    mirror_multiple: int | None = None

    def __call__(self, fn: Callable[[Tensor], Tensor], x: Tensor, scale: int,
                 step: Callable[[], None] | None = None) -> Tensor:
        """x (..., C, h, w) -> (..., C', s*h, s*w) by the official tiling."""
        height, width = x.shape[-2:]
        splits_h, splits_w = height // self.base + 1, width // self.base + 1
        pad_h, pad_w = -height % splits_h, -width % splits_w
        padded = _pad(x, pad_h, pad_w)
        size_h, size_w = padded.shape[-2] // splits_h, padded.shape[-1] // splits_w
        shave_h, shave_w = size_h // self.shave_div, size_w // self.shave_div
        out = None
        for i in range(splits_h):
            rows, keep_rows = _span(i, splits_h, size_h, shave_h)
            for j in range(splits_w):
                cols, keep_cols = _span(j, splits_w, size_w, shave_w)
                tile_out = self._run_tile(fn, padded[..., rows, cols], scale)
                if out is None:
                    out = tile_out.new_zeros((*tile_out.shape[:-2], padded.shape[-2] * scale,
                                              padded.shape[-1] * scale))
                out[..., i * size_h * scale:(i + 1) * size_h * scale, j * size_w * scale:(j + 1) * size_w * scale] = \
                    tile_out[..., keep_rows * scale:(keep_rows + size_h) * scale,
                             keep_cols * scale:(keep_cols + size_w) * scale]
                if step:
                    step()
        return out[..., :height * scale, :width * scale]

    def tile_count(self, height: int, width: int) -> int:
        return (height // self.base + 1) * (width // self.base + 1)

    def _run_tile(self, fn: Callable[[Tensor], Tensor], tile: Tensor, scale: int) -> Tensor:
        if self.mirror_multiple is None:
            return fn(tile)
        height, width = tile.shape[-2:]
        target_h = (height // self.mirror_multiple + 1) * self.mirror_multiple
        target_w = (width // self.mirror_multiple + 1) * self.mirror_multiple
        extended = _mirror_extend(_mirror_extend(tile, -2, target_h), -1, target_w)
        return fn(extended)[..., :height * scale, :width * scale]


def _pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    """Reflect-pads the bottom and right of (..., C, H, W) (F.pad wants 3-D or 4-D input)."""
    if not (pad_h or pad_w):
        return x
    padded = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pad_w, 0, pad_h), mode="reflect")
    return padded.reshape(*x.shape[:-2], *padded.shape[-2:])


def _span(index: int, count: int, size: int, shave: int) -> tuple[slice, int]:
    """The input slice of split ``index`` (extended by ``shave`` into inner neighbours) and where its own part
    starts inside the tile."""
    start = index * size - (shave if index > 0 else 0)
    stop = (index + 1) * size + (shave if index < count - 1 else 0)
    return slice(start, stop), (shave if index > 0 else 0)


def _mirror_extend(x: Tensor, dim: int, target: int) -> Tensor:
    """x followed by its mirror image along ``dim`` (repeated as needed), cut to ``target`` samples."""
    pieces, length, flipped = [x], x.shape[dim], False
    while length < target:
        flipped = not flipped
        pieces.append(x.flip(dim) if flipped else x)
        length += x.shape[dim]
    return torch.cat(pieces, dim).narrow(dim, 0, target)


@dataclass(frozen=True)
class PaddedProtocol:
    """Reflect-pad the bottom/right to a multiple of ``multiple``, run (``corner_tiles``: EAMamba's four-corner
    ``forward_patch``, else one forward), crop back to (s h, s w)."""

    multiple: int = 8
    corner_tiles: bool = False
    shave: int = 16
    crop_size: int = 2048

    def __call__(self, fn: Callable[[Tensor], Tensor], x: Tensor, scale: int,
                 step: Callable[[], None] | None = None) -> Tensor:
        height, width = x.shape[-2:]
        padded = _pad(x, -height % self.multiple, -width % self.multiple)
        out = self._corners(fn, padded, scale, step) if self.corner_tiles else fn(padded)
        if step and not self.corner_tiles:
            step()
        return out[..., :height * scale, :width * scale]

    def tile_count(self, height: int, width: int) -> int:
        if not self.corner_tiles:
            return 1
        height, width = height + -height % self.multiple, width + -width % self.multiple
        if height * width < self.crop_size**2:
            return 4
        return sum(self.tile_count(len(range(*rows.indices(height))), len(range(*cols.indices(width))))
                   for rows in self._halves(height) for cols in self._halves(width))

    def _halves(self, n: int) -> tuple[slice, slice]:
        """The two overlapping input spans of one axis (the official arithmetic of ``forward_patch``; on small maps
        the spans clip, and a negative start counts from the end, as Python slicing does there)."""
        half = n // 2
        return (slice(0, half + self.shave - half % 8), slice(n - half - self.shave + (n - half) % 8, n))

    def _corners(self, fn: Callable[[Tensor], Tensor], x: Tensor, scale: int,
                 step: Callable[[], None] | None) -> Tensor:
        height, width = x.shape[-2:]
        outs = []
        for rows in self._halves(height):
            for cols in self._halves(width):
                tile = x[..., rows, cols]
                if height * width < self.crop_size**2:
                    outs.append(fn(tile))
                    if step:
                        step()
                else:
                    outs.append(self._corners(fn, tile, scale, step))
        h, w = height * scale, width * scale
        out = outs[0].new_empty((*outs[0].shape[:-2], h, w))
        top, bottom, left, right = slice(0, h // 2), slice(h // 2, h), slice(0, w // 2), slice(w // 2, w)
        out[..., top, left] = outs[0][..., : h // 2, : w // 2]
        out[..., top, right] = outs[1][..., : h // 2, -(w - w // 2):]
        out[..., bottom, left] = outs[2][..., -(h - h // 2):, : w // 2]
        out[..., bottom, right] = outs[3][..., -(h - h // 2):, -(w - w // 2):]
        return out


@dataclass(frozen=True)
class SelfEnsemble:
    """The x8 geometric self-ensemble around a split protocol: for every (transpose, horizontal flip, vertical flip)
    the transformed input goes through ``inner``, the output is transformed back; the mean of the eight."""

    inner: SplitProtocol

    def __call__(self, fn: Callable[[Tensor], Tensor], x: Tensor, scale: int,
                 step: Callable[[], None] | None = None) -> Tensor:
        total = None
        for transpose in (False, True):
            for hflip in (False, True):
                for vflip in (False, True):
                    y = self.inner(fn, _geometric(x, vflip, hflip, transpose), scale, step)
                    y = _geometric(y, vflip, hflip, transpose, inverse=True)
                    total = y if total is None else total + y
        return total / 8

    def tile_count(self, height: int, width: int) -> int:
        return 4 * (self.inner.tile_count(height, width) + self.inner.tile_count(width, height))


def _geometric(x: Tensor, vflip: bool, hflip: bool, transpose: bool, inverse: bool = False) -> Tensor:
    """Flips H (``vflip``) and W (``hflip``), then swaps H and W; ``inverse`` undoes it (swap first)."""
    if inverse and transpose:
        x = x.transpose(-2, -1)
    dims = [d for d, on in ((-2, vflip), (-1, hflip)) if on]
    x = x.flip(dims) if dims else x
    if not inverse and transpose:
        x = x.transpose(-2, -1)
    return x


PROTOCOLS: dict[str, SplitProtocol | SelfEnsemble | PaddedProtocol | None] = {
    "mambair": SplitProtocol(base=200, shave_div=10),
    "mair_plus": SelfEnsemble(SplitProtocol(base=200, shave_div=10)),
    "mambairv2": SplitProtocol(base=200, shave_div=10),
    "mambacsr": SplitProtocol(base=192, shave_div=4, mirror_multiple=64),
    "eamamba_sr": PaddedProtocol(8),
    "eamamba_realsr": PaddedProtocol(8, corner_tiles=True),
    "dvmsr": None,
    "medvsr": None,
    "none": None,
    "": None,
}


def run_protocol(name: str, fn: Callable[[Tensor], Tensor], x: Tensor, scale: int,
                 step: Callable[[], None] | None = None) -> Tensor:
    """Runs ``fn`` on ``x`` (..., C, H, W) by the named official protocol (None / whole-image ones: one call)."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(repr(p) for p in PROTOCOLS)}")
    split = PROTOCOLS[name]
    return fn(x) if split is None else split(fn, x, scale, step)
