"""``ssmblocks.restore``: run a restoration model on an image or a video, whatever its kind and size.

    sr = ssmblocks.restore(model, "photo.png")                       # a PIL image back
    sr = ssmblocks.restore(model, frames, tile=256)                  # (B, T, C, H, W) tensor back, tiled
    sr = ssmblocks.restore(model, lr)                                # the protocol its pretrained cfg names
    sr = ssmblocks.restore(model, lr, protocol="mambair")            # the official MambaIR test tiling
    sr = ssmblocks.restore(model, lr, protocol="none")               # the whole image at once
    sr = ssmblocks.restore(model, big, memory_budget="2GB")          # tile size chosen to fit 2 GiB

Models return unclamped values (like the official code); ``restore`` clamps its output to [0, 1]. An output with NaN
or Inf values (non-finite weights, an overflow in reduced precision) is an error, not a black image.

Without ``tile``, ``memory_budget`` or ``protocol``, an image larger than ``_AUTO_BUDGET_PIXELS`` (4 megapixels) is
restored within half the memory that is free on its device (tiled only when the whole image would not fit), so a
90-megapixel photo does not exhaust memory by default.
"""

from __future__ import annotations

import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._contract import contract_of
from ssmblocks.inference._convert import prepare_input
from ssmblocks.inference.progress import Progress
from ssmblocks.inference.protocols import PROTOCOLS, run_protocol
from ssmblocks.inference.tiling import (
    BudgetTooSmallError,
    iter_tiles,
    parse_bytes,
    ramp,
    run_tiled,
    tile_for_budget,
    tile_starts,
)
from ssmblocks.profiling import LiveBytes, run_without_arithmetic

__all__ = ["ModelInfo", "model_info", "resolve_protocol", "restore"]

_PROBE_SIDES = (32, 64)
# Peak resident memory over the live-tensor estimate of ssmblocks.profiling.LiveBytes: kernel scratch space, oneDNN
# buffers and allocator slack. Measured 1.8-2.4x on CPU for MambaIR light x4 at 64-192 px (docs/benchmarks.md).
_MEMORY_OVERHEAD = 2.3
# The smallest tile side ``restore`` accepts (below it a tile is mostly padding and overlap), and the default overlap
_MIN_TILE = 8
_DEFAULT_OVERLAP = 32
# Tiles holding more than this many times the image's pixels (overlaps counted twice) get a warning
_MAX_TILING_COST = 2.0
# Above this many input pixels (batch and frames counted) a run without tile / memory_budget / protocol gets a budget
# of _AUTO_BUDGET_SHARE of the device's free memory
_AUTO_BUDGET_PIXELS = 4_000_000
_AUTO_BUDGET_SHARE = 0.5
NONFINITE = ("error", "warn")


@dataclass(frozen=True)
class ModelInfo:
    """What ``restore`` needs to know about a model: scale, channels, size rules, protocol, image or video."""

    scale: int
    in_chans: int
    multiple_of: int = 1
    min_size: int = 1
    protocol: str = ""
    video: bool = False


def model_info(model: nn.Module) -> ModelInfo:
    """What ``restore`` needs: the model's contract (``ssmblocks.contract_of``: every ssmblocks model has one; other
    modules are probed, in eval mode under the guard concurrent restores share) and the protocol its pretrained cfg
    names."""
    with _eval_mode(model):
        contract = contract_of(model)
    cfg = getattr(model, "pretrained_cfg", None)
    return ModelInfo(contract.scale, contract.in_chans, contract.multiple_of, contract.min_size,
                     cfg.protocol if cfg is not None else "", contract.is_video)


def resolve_protocol(info: ModelInfo, protocol: str | None, *, tiled: bool) -> str:
    """The protocol ``restore`` runs: ``protocol`` when given, else the model's own (``info.protocol``) unless a
    tiling (``tile`` / ``memory_budget``) was asked for, in which case 'none'."""
    if protocol is not None:
        return protocol
    if not tiled and info.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {info.protocol!r} named by the model's pretrained cfg; pass protocol= one "
                         f"of {', '.join(repr(p) for p in PROTOCOLS)}")
    return "none" if tiled else info.protocol


def _pad_to(x: Tensor, info: ModelInfo) -> Tensor:
    """Pads the bottom/right of (..., C, H, W) to the model's size rules (reflect where possible)."""
    height, width = x.shape[-2:]
    target_h = max(height, info.min_size)
    target_w = max(width, info.min_size)
    target_h += -target_h % info.multiple_of
    target_w += -target_w % info.multiple_of
    if (target_h, target_w) == (height, width):
        return x
    flat = x.reshape(-1, *x.shape[-3:])
    pad = (0, target_w - width, 0, target_h - height)
    mode = "reflect" if target_h - height < height and target_w - width < width else "replicate"
    padded = F.pad(flat, pad, mode=mode)
    return padded.reshape(*x.shape[:-2], target_h, target_w)


def _forward_fn(model: nn.Module, info: ModelInfo) -> Callable[[Tensor], Tensor]:
    """x (..., C, h, w) -> model output cropped to (..., C', s*h, s*w), padding to the size rules first."""

    def forward(x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        return model(_pad_to(x, info))[..., :height * info.scale, :width * info.scale]

    return forward


def _budget_tile(fn: Callable[[Tensor], Tensor], x: Tensor, info: ModelInfo, budget: int) -> int | None:
    """Tile side for ``budget`` bytes: the model's activation memory is measured (shapes only, no arithmetic) at
    two tile sizes, scaled by the measured overhead factor, and extrapolated linearly in the pixel count; the
    blending canvases and the input are added."""
    multiple = max(info.multiple_of, 8)
    peaks = []
    for side in _PROBE_SIDES:
        side += -side % multiple
        live = LiveBytes()
        shape = (1, *x.shape[1:-2], side, side)
        run_without_arithmetic(fn, shape, live, dtype=x.dtype, device=x.device)
        peaks.append((side * side, live.peak * _MEMORY_OVERHEAD))
    (p1, m1), (p2, m2) = peaks
    per_image_pixel = max((m2 - m1) / (p2 - p1), 1.0)   # the probes run one image: only this part grows with B
    fixed = max(m1 - per_image_pixel * p1, 0.0)
    per_pixel = per_image_pixel * x.shape[0]
    height, width = x.shape[-2:]
    out_pixels = height * width * info.scale**2
    frames = x.shape[1] if x.dim() == 5 else 1
    # float32 blending sums and weights, the normalised result, and the input
    canvas = 4 * out_pixels * (1 + 2 * x.shape[0] * frames * info.in_chans) + x.numel() * x.element_size()
    return tile_for_budget(per_pixel, fixed + canvas, budget, image_size=(height, width), multiple=multiple)


def _warn_if_tiling_costs_more(height: int, width: int, tile: int, overlap: int) -> None:
    """Warns when the tiles hold more than ``_MAX_TILING_COST`` times the image's pixels: overlapping tiles are
    computed twice, so small tiles with a wide overlap cost several times the whole image while saving little
    memory on an image that small."""
    tiles = list(iter_tiles(height, width, tile, overlap))
    cost = sum((rows.stop - rows.start) * (cols.stop - cols.start) for rows, cols in tiles) / (height * width)
    if cost > _MAX_TILING_COST:
        warnings.warn(f"tiling costs {cost:.1f}x the work of the whole image: {len(tiles)} tiles of {tile} px "
                      f"overlapping by {overlap} px hold {cost:.1f}x the pixels of the {height}x{width} input; use a "
                      f"larger tile or a smaller overlap (tile / tile_overlap, --tile / --tile-overlap), or no tiling "
                      f"when the whole image fits in memory", stacklevel=4)


def _run_temporal(fn: Callable[[Tensor], Tensor], x: Tensor, chunk: int, overlap: int) -> Tensor:
    """Runs a video model on chunks of ``chunk`` frames of (B, T, C, H, W) that overlap by ``overlap`` frames,
    blending the overlapping output frames linearly."""
    frames = x.shape[1]
    total = weights = None
    for start in tile_starts(frames, chunk, overlap):
        stop = min(start + chunk, frames)
        out = fn(x[:, start:stop]).float()
        if total is None:
            total = out.new_zeros((out.shape[0], frames, *out.shape[2:]))
            weights = out.new_zeros(frames)
        weight = ramp(stop - start, overlap if start > 0 else 0, overlap if stop < frames else 0).to(out.device)
        total[:, start:stop] += out * weight.view(1, -1, 1, 1, 1)
        weights[start:stop] += weight
    return total / weights.view(1, -1, 1, 1, 1)


def _free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CUDA: the driver's count; CPU: MemAvailable of /proc/meminfo, else the free
    pages); None when unknown."""
    try:
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[0]
        if device.type == "cpu":
            try:
                with open("/proc/meminfo") as meminfo:
                    for line in meminfo:
                        if line.startswith("MemAvailable:"):
                            return int(line.split()[1]) * 1024
            except OSError:
                pass
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None


# Models being restored: per model, the number of restores running on it and the mode it had before the first
_users: weakref.WeakKeyDictionary[nn.Module, list[Any]] = weakref.WeakKeyDictionary()
_users_lock = threading.Lock()


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode for the block. Concurrent restores of one model (threads) share it: the first puts it
    in eval mode and the last gives it back the mode it had, so none runs in train mode and the caller's mode
    survives."""
    with _users_lock:
        users = _users.setdefault(model, [0, model.training])
        if users[0] == 0:
            users[1] = model.training
            model.eval()
        users[0] += 1
    try:
        yield
    finally:
        with _users_lock:
            users[0] -= 1
            if users[0] == 0:
                model.train(users[1])
                del _users[model]


def _check_output(out: Tensor, nonfinite: str) -> Tensor:
    """``out`` clamped to [0, 1]; NaN / Inf values are an error, or with ``nonfinite='warn'`` a warning (NaN -> 0)."""
    if not torch.isfinite(out).all():
        message = ("the model's output contains NaN or Inf values (non-finite weights, or an overflow in float16 / "
                   "bfloat16): the result would be a black or blank image")
        if nonfinite == "error":
            raise ValueError(f"{message}; check the weights (and run in float32)")
        warnings.warn(f"{message}; NaN is written as 0, +-Inf as 1 / 0", stacklevel=3)
        out = torch.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
    return out.clamp_(0, 1)


def restore(
    model: nn.Module,
    x: Any,
    *,
    tile: int | None = None,
    tile_overlap: int | None = None,
    protocol: str | None = None,
    memory_budget: int | str | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    temporal_chunk: int | None = None,
    temporal_overlap: int = 2,
    unclipped: bool = False,
    nonfinite: str = "error",
) -> Any:
    """Restores ``x`` with ``model`` and returns the result in the kind ``x`` came in.

    Args:
        x: a float tensor in [0, 1] or a uint8/uint16 tensor, images (C, H, W) / (B, C, H, W) or video
            (B, T, C, H, W); a numpy image (H, W) / (H, W, C) or frames (T, H, W, C); a PIL image; or a path
            (returned as a PIL image). Integer data is scaled from its range and back. An alpha channel is
            upscaled bicubically and kept; grey images for colour models (and the reverse) are converted with a
            warning. NaN or Inf values and empty inputs are refused; float values outside [0, 1] too, unless
            ``unclipped``.
        tile: tile side in input pixels, at least the model's ``min_size`` and ``multiple_of`` and 8 (a smaller
            tile is padded up to the size rules: the same compute for less of the image); tiles overlap by
            ``tile_overlap`` input pixels, in [0, tile // 2] (default: 32, reduced to tile // 2 for small tiles and
            for the tile ``memory_budget`` picks), and are blended smoothly. ``tile_overlap`` without ``tile`` or
            ``memory_budget`` is an error (there are no tiles to overlap).
        protocol: an official test procedure ('mambair', 'mambacsr', 'dvmsr', 'medvsr'; 'none' or '' = the whole
            image). Default (None): the model's own, the one its pretrained cfg names
            (``model.pretrained_cfg.protocol``, e.g. the MambaCSR tiling for the released MambaCSR weights; the whole
            image for models without one) unless ``tile`` or ``memory_budget`` is given; pass 'none' to run the whole
            image instead. An explicit split protocol ('mambair', 'mambacsr') does not combine with ``tile`` /
            ``memory_budget``.
        memory_budget: e.g. '2GB': picks the largest tile whose estimated peak memory fits (whole image if it fits);
            a positive size. Default: none for images up to 4 megapixels; above, half the device's free memory
            unless ``tile`` or ``protocol`` is given.
        dtype, device: move the model (in place, as ``Module.to`` does) and the input there first.
        progress: tqdm bars over tiles and chunks; default: when stderr is a terminal.
        temporal_chunk, temporal_overlap: for video models, run chunks of this many frames overlapping by
            ``temporal_overlap`` frames (blended); default: the whole sequence.
        unclipped: accept float inputs outside [0, 1] (a noisy image as a denoising model is trained on: training
            does not clip its noisy inputs); the output is still clamped.
        nonfinite: what a NaN / Inf in the model's output does: 'error' (ValueError, the default) or 'warn' (a
            warning; NaN becomes 0).

    Runs under ``torch.inference_mode`` with the model in eval mode (its mode is restored afterwards; concurrent
    restores of one model from several threads all run in eval mode and leave the mode as it was). The output is
    clamped to [0, 1]. Image models restore videos frame by frame.
    """
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite must be 'error' or 'warn', got {nonfinite!r}")
    if memory_budget is not None:
        memory_budget = parse_bytes(memory_budget)
    if tile_overlap is not None and tile is None and memory_budget is None:
        raise ValueError("tile_overlap (--tile-overlap) is the overlap of tiles, and there are none: give tile "
                         "(--tile) or memory_budget (--memory-budget) with it, or leave it unset")
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(repr(p) for p in PROTOCOLS)}")
    if protocol and PROTOCOLS[protocol] is not None and (tile is not None or memory_budget is not None):
        raise ValueError(f"protocol {protocol!r} tiles the image its own way: pass either protocol or "
                         f"tile / memory_budget, not both")
    if temporal_chunk is not None and temporal_chunk < 1:
        raise ValueError(f"temporal_chunk must be a positive number of frames, got {temporal_chunk}")
    if temporal_chunk is not None and not 0 <= temporal_overlap < temporal_chunk:
        raise ValueError(f"temporal_overlap must be in [0, temporal_chunk) = [0, {temporal_chunk}) frames, "
                         f"got {temporal_overlap}")
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device(device or "cpu")
    dtype = param.dtype if param is not None else (dtype or torch.float32)
    info = model_info(model)
    if temporal_chunk is not None and not info.video:
        raise ValueError(f"temporal_chunk applies to video models; {type(model).__name__} is an image model, which "
                         f"restores a video frame by frame: leave temporal_chunk unset")
    min_tile = max(info.min_size, info.multiple_of, _MIN_TILE)
    if tile is not None and tile < min_tile:
        raise ValueError(f"tile must be at least {min_tile} input pixels for this model (its minimum size "
                         f"{info.min_size}, size multiple {info.multiple_of}, and {_MIN_TILE}), got {tile}")
    if tile_overlap is not None and (tile_overlap < 0 or (tile is not None and tile_overlap > tile // 2)):
        bound = f" = [0, {tile // 2}]" if tile is not None else ""
        raise ValueError(f"tile_overlap must be in [0, tile // 2]{bound} input pixels, got {tile_overlap}")
    automatic = protocol is None and tile is None and memory_budget is None
    protocol = resolve_protocol(info, protocol, tiled=tile is not None or memory_budget is not None)
    prepared = prepare_input(x, info.in_chans, unclipped=unclipped)
    data = prepared.tensor.to(device=device, dtype=dtype)
    if automatic and not (protocol and PROTOCOLS[protocol] is not None):
        memory_budget = _automatic_budget(data, info, data.device)
    bars = Progress("restoring", unit="tile", enabled=progress)
    try:
        with _eval_mode(model), torch.inference_mode():
            try:
                out = _restore_tensor(model, data, info, prepared.video, tile, tile_overlap, protocol, memory_budget,
                                      bars, temporal_chunk, temporal_overlap)
            except BudgetTooSmallError:
                if not automatic:
                    raise
                # the free memory holds not even a small tile: the whole image, as without the automatic budget
                out = _restore_tensor(model, data, info, prepared.video, tile, tile_overlap, protocol, None, bars,
                                      temporal_chunk, temporal_overlap)
            out = out.float()
            if out.untyped_storage().data_ptr() == data.untyped_storage().data_ptr():
                out = out.clone()  # a model that returns (a view of) its input: do not clamp the caller's tensor
            return prepared.finish(_check_output(out, nonfinite))
    finally:
        bars.close()


def _automatic_budget(x: Tensor, info: ModelInfo, device: torch.device) -> int | None:
    """The memory budget of a run that named none: half the free memory of ``device`` for an input of more than
    ``_AUTO_BUDGET_PIXELS`` pixels (batch and frames counted), else None (the whole image)."""
    if x.numel() // x.shape[-3] <= _AUTO_BUDGET_PIXELS:
        return None
    free = _free_memory(device)
    return max(int(free * _AUTO_BUDGET_SHARE), 1) if free else None


def _restore_tensor(model: nn.Module, x: Tensor, info: ModelInfo, video: bool, tile: int | None, overlap: int | None,
                    protocol: str, memory_budget: int | str | None, bars: Progress,
                    temporal_chunk: int | None, temporal_overlap: int) -> Tensor:
    fn = _forward_fn(model, info)
    if video and not info.video:  # an image model: frame by frame
        frames = [_restore_tensor(model, x[:, t], info, False, tile, overlap, protocol, memory_budget, bars, None, 0)
                  for t in range(x.shape[1])]
        return torch.stack(frames, 1)
    budget_tile = memory_budget is not None and tile is None
    if budget_tile:
        tile = _budget_tile(fn, x, info, parse_bytes(memory_budget))
    if video and temporal_chunk is not None:
        whole_clip = fn

        def fn(clip: Tensor) -> Tensor:
            return _run_temporal(whole_clip, clip, temporal_chunk, temporal_overlap)

    if protocol and PROTOCOLS[protocol] is not None:
        split = PROTOCOLS[protocol]
        return run_protocol(protocol, fn, x, info.scale, bars.counter(split.tile_count(*x.shape[-2:])))
    if tile is None:
        return fn(x)
    overlap = min(_DEFAULT_OVERLAP if overlap is None else overlap, tile // 2)  # only default / budget tiles cap
    if not budget_tile:   # a tile the caller chose (a budget's tile is what fits)
        _warn_if_tiling_costs_more(x.shape[-2], x.shape[-1], tile, overlap)
    return run_tiled(fn, x, tile=tile, overlap=overlap, scale=info.scale, progress=bars.counter)
