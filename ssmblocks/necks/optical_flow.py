"""SpyNet optical flow (Ranjan & Black, CVPR 2017) with BasicSR's parameter names, so its weights load as they are.

Facts from ``basicsr/archs/spynet_arch.py`` (XPixelGroup/BasicSR, as vendored by CUHK-AIM-Group/MedVSR at 3421505):
six levels, each five 7x7 convolutions 8 -> 32 -> 64 -> 32 -> 16 -> 2 with ReLU between (keys
``basic_module.{level}.basic_module.{0,2,4,6,8}``); inputs normalised with the ImageNet mean/std held as persistent
buffers ``mean``/``std`` (1, 3, 1, 1); frames resized bilinearly to multiples of 32, a five-times 2x average-pool
pyramid, coarse-to-fine refinement: ``flow = level(cat[ref, warp(supp, up(flow)) (border padding), up(flow)]) +
up(flow)`` with ``up`` = 2x bilinear (align_corners True) times 2, replicate-padded by one row/column where the
level is odd-sized; the flow is resized back and scaled by size / resized size.

Pretrained Sintel weights: ``spynet_sintel()`` builds a SpyNet with them, from the source ``SPYNET_SINTEL`` (BasicSR's
``spynet_sintel_final-3d2a1287.pth``, which MedVSR's repository ships): downloaded once, checked against the sha256
prefix its name carries, cached; offline from the cache.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._checkpoint import load_state_dict_strict, read_state_dict
from ssmblocks._registry import PretrainedCfg
from ssmblocks._weights import resolve_weights
from ssmblocks.ops.flow_warp import flow_warp

__all__ = ["MIN_FRAME_SIZE", "SPYNET_SINTEL", "SpyNet", "neighbour_flows", "spynet_sintel"]

#: BasicSR's Sintel-trained SpyNet, as MedVSR's repository holds it (added in commit 8c1398d). Only the first 8
#: hex digits of its sha256 are published, in the file name (BasicSR's ``name-<sha256[:8]>.pth`` convention).
SPYNET_SINTEL = PretrainedCfg(
    architecture="spynet", tag="sintel_final",
    url="https://github.com/CUHK-AIM-Group/MedVSR/raw/342150504e21be18ff09e9867e4f8db3467b40d7/"
        "experiments/pretrained_models/flownet/spynet_sintel_final-3d2a1287.pth",
    sha256="3d2a1287", origin_url="https://github.com/XPixelGroup/BasicSR", task="optical flow (Sintel final)",
    notes="BasicSR format {'params': state_dict} with this module's keys")
LEVELS = 6
#: The smallest frame side the official video models give SpyNet (BasicVSR++ / MedVSR refuse smaller frames).
MIN_FRAME_SIZE = 64


def _known_true(condition) -> bool:
    """torch's ``statically_known_true`` (True only when ``condition`` holds without adding a guard), imported when
    a size is symbolic: ``torch.fx.experimental.symbolic_shapes`` loads sympy, about a second of ``import
    ssmblocks`` when imported at module level (issue 19, section 4). Plain bools (eager sizes) answer directly."""
    if isinstance(condition, bool):
        return condition
    from torch.fx.experimental.symbolic_shapes import statically_known_true as known_true

    return known_true(condition)


def _replicate_pad(x: Tensor, right, bottom) -> Tensor:
    """Replicate-pads (..., H, W) by ``right`` columns and ``bottom`` rows. The copy is skipped only when both pads
    are known to be zero without a guard (plain ints in eager mode); a symbolic size never decides a Python branch,
    so torch.export keeps H and W dynamic."""
    if _known_true(right == 0) and _known_true(bottom == 0):
        return x
    padded = F.pad(x.flatten(0, -3), (0, right, 0, bottom), mode="replicate")              # (N, H', W')
    return padded.unflatten(0, x.shape[:-2])


def _crop(x: Tensor, height, width) -> Tensor:
    """``x[..., :height, :width]``; a no-op when the size is known to match. Written as index_select: a slice of a
    padded size max(size, 64) would make torch.export guard on ``size <= max(size, 64)``, which it cannot prove."""
    if _known_true(x.shape[-2] == height) and _known_true(x.shape[-1] == width):
        return x
    rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


class _Level(nn.Module):
    """One pyramid level under ``.basic_module`` (the official key): (B, 8, h, w) -> flow residual (B, 2, h, w)."""

    def __init__(self, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        widths = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Conv2d(c_in, c_out, 7, padding=3, device=device, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.basic_module = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Flow from ``ref`` to ``supp``: ``forward(ref, supp)`` with frames (B, 3, H, W) in [0, 1] -> (B, 2, H, W).

    ``flow[:, 0]`` / ``flow[:, 1]`` are the x / y displacements in pixels such that ``flow_warp(supp, flow)``
    aligns ``supp`` to ``ref``. Any H, W >= 1 run; the official models only use frames of at least 64x64.
    """

    def __init__(self, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.basic_module = nn.ModuleList(_Level(device=device, dtype=dtype) for _ in range(LEVELS))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406], device=device, dtype=dtype).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225], device=device, dtype=dtype).view(1, 3, 1, 1))

    def _pyramid(self, x: Tensor) -> list[Tensor]:
        """Normalised frames, coarsest first: LEVELS maps, each half the size of the next."""
        levels = [(x - self.mean) / self.std]
        for _ in range(LEVELS - 1):
            levels.insert(0, F.avg_pool2d(levels[0], kernel_size=2, stride=2))
        return levels

    def _process(self, ref: Tensor, supp: Tensor) -> Tensor:
        refs, supps = self._pyramid(ref), self._pyramid(supp)
        # the coarsest level starts from zero flow: BasicSR upsamples zeros of half its size, which are zeros too
        flow = refs[0].new_zeros(ref.shape[0], 2, *refs[0].shape[-2:])
        for level, (r, s) in enumerate(zip(refs, supps, strict=True)):
            up = flow
            if level:
                up = F.interpolate(flow, size=(2 * flow.shape[2], 2 * flow.shape[3]), mode="bilinear",
                                   align_corners=True) * 2.0
                up = _replicate_pad(up, r.shape[3] - up.shape[3], r.shape[2] - up.shape[2])  # odd-sized levels
            flow = self.basic_module[level](torch.cat([r, flow_warp(s, up, padding_mode="border"), up], 1)) + up
        return flow

    def forward(self, ref: Tensor, supp: Tensor) -> Tensor:
        if ref.shape != supp.shape or ref.dim() != 4 or ref.shape[1] != 3:
            raise ValueError(f"SpyNet takes two frames (B, 3, H, W) of one shape, got {tuple(ref.shape)} and "
                             f"{tuple(supp.shape)}")
        height, width = ref.shape[-2:]
        size = (height + (-height) % 32, width + (-width) % 32)      # up to multiples of 32, integer arithmetic only
        ref = F.interpolate(ref, size=size, mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=size, mode="bilinear", align_corners=False)
        flow = F.interpolate(self._process(ref, supp), size=(height, width), mode="bilinear", align_corners=False)
        flow[:, 0] *= width / size[1]           # in place on the fresh resized flow: x, then y, in input pixels
        flow[:, 1] *= height / size[0]
        return flow


def neighbour_flows(spynet: SpyNet, lqs: Tensor, min_size: int = MIN_FRAME_SIZE) -> tuple[Tensor, Tensor]:
    """(B, T, 3, H, W) -> flows_backward (frame k -> k+1) and flows_forward (k+1 -> k), each (B, T-1, 2, H, W).

    One SpyNet call on all 2 (T - 1) pairs. Frames smaller than ``min_size`` are replicate-padded (right/bottom) to
    it for SpyNet, the flows cropped back."""
    batch, frames, _, height, width = lqs.shape
    # pads written as max(size, min_size) - size, which lets torch.export bound the padded size from below
    lqs = _replicate_pad(lqs, torch.sym_max(width, min_size) - width, torch.sym_max(height, min_size) - height)
    earlier, later = lqs[:, :-1].flatten(0, 1), lqs[:, 1:].flatten(0, 1)
    flows = _crop(spynet(torch.cat([earlier, later]), torch.cat([later, earlier])), height, width)
    backward, forward = flows.unflatten(0, (2, batch, frames - 1))
    return backward, forward


def spynet_sintel(*, cache_dir: str | Path | None = None, source: PretrainedCfg = SPYNET_SINTEL,
                  device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SpyNet:
    """A SpyNet holding BasicSR's Sintel weights (``source``), downloaded once into the checkpoint cache (or
    ``cache_dir``), verified against the declared sha256 prefix, loaded strictly; eval mode. Offline
    (``HF_HUB_OFFLINE=1``) only the cache is read; a missing file raises ``PretrainedUnavailableError``."""
    path = resolve_weights(source, cache_dir)
    model = SpyNet(device=device, dtype=dtype)
    load_state_dict_strict(model, read_state_dict(path), f"{source.name} weights ({path})")
    return model.eval()
