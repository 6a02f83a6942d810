"""MambaCSR (compressed image super-resolution): dual-interleaved window scans and position-aligned cross-scale
fusion.

Facts from renyulin-f/MambaCSR (no licence file) at f71199e: ``basicsr/archs/mambacsr_arch.py`` (``MambaCSR``,
``BasicLayer``), ``basicsr/archs/mamba/local_scan.py`` (``reverse_nested_local_scan_bchw``) and
``options/test/test_MambaCSR_Q10_{Final,wo}.yml``. Parameter names are the official ones, so official checkpoints
load without renaming.

Structure: conv_first -> patch_embed (LayerNorm) -> RLMGs -> norm -> conv_after_body (+ conv_first output) ->
conv_before_upsample (+ LeakyReLU 0.01) -> pixel-shuffle upsample -> conv_last; input (x - mean) * img_range, output
/ img_range + mean. The "Final" model also runs an x0.5 branch: x_down = bilinear x0.5 (align_corners False) of the
conv_first features -> patch_embed2 (LayerNorm); after RLMG i (i < len(depths2)) the branch runs its own RLMG
``layers2[i]`` and ``layers3[i]`` (CrossScaleFusion) fuses the two scales into the main features.

Scan schedule of block i of a group (entry i % 4): [w_s, c_w_s, w64, c_w64] with s = scan_size, each with its
reverse; without dual interleaving every block scans the four [w_s, w_s reversed, c_w_s, c_w_s reversed]. Official
rule kept: in the Final model a group with fewer than 6 blocks scans [w32, c_w32, w32, c_w32].

Official quirks, named options of the model, on by default because the released weights and numbers include them:
- ``official_coarse_windows``: the x0.5 groups use the full-resolution windows (8 and 64, whatever scan_size), so
  w64 zero-pads the half-size map (on 64x64 training patches 3/4 of that sequence is padding tokens, which decay
  the state). False halves every window of the x0.5 branch (scan_size/2 and 32; 16 under the small-group rule),
  aligning its windows with the full-resolution ones.
- ``official_cross_scale_reverse``: the official reverse of the column-major cross-scale paths views the grid of
  16x16 windows as (H/16, W/16) although the scan wrote it as (W/16, H/16); when H != W those paths come back
  spatially scrambled before gating and summing (identity on square maps). False maps them back correctly.

Any input size: the Final model replicate-pads the image right/bottom to multiples of 16 (the cross-scale order's
window) and crops the output back; window scans zero-pad their own maps. The official test protocol's padding
(tiles mirror-padded to multiples of 64) belongs to ``restore``, not to the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import RLMB, ResidualGroup
from ssmblocks.blocks._keys import keyed
from ssmblocks.necks import CrossScaleFusion
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.scan_orders import Schedule, concat, dual_interleaved, mambacsr_order
from ssmblocks.scan_orders import cross_scale_scan as cross_scale_paths
from ssmblocks.zoo._common import count_indices, init_linear_and_norm, variant_named, width_ratio
from ssmblocks.zoo._image import SwinIRSkeleton

__all__ = ["MambaCSR"]

CROSS_WINDOW = 16


# ---- family layers ---------------------------------------------------------------------------------------------
def group_schedule(depth: int, scan_size: int, *, cross_scale: bool, dual_interleaved_scan: bool,
                   global_window: int = 64) -> Schedule:
    """The scan orders of one RLMG's blocks, as the official ``BasicLayer`` chooses them."""
    if cross_scale and depth < 6:
        return dual_interleaved(global_window // 2, global_window // 2)
    if cross_scale or dual_interleaved_scan:
        return dual_interleaved(scan_size, global_window)
    names = (f"w{scan_size}", f"w{scan_size}_flip", f"c_w{scan_size}", f"c_w{scan_size}_flip")
    return Schedule([concat(*(mambacsr_order(name) for name in names))])


def official_column_reverse(maps: Tensor, window: int) -> Tensor:
    """Where the official ``reverse_nested_local_scan_bchw(column_first=True)`` puts column-path outputs.

    maps: (..., H, W) correctly merged outputs of a column-major cross-scale path. The official reverse reads the
    (W/w, H/w) window grid the scan wrote as (H/w, W/w); output pixel p = ((a*w + b)*Hg + e)*w + f (a < Wg, b < w,
    e < Hg, f < w) then holds the value of pixel ((k mod Hg)*w + b, (k div Hg)*w + f) with k = e*Wg + a. The map is
    the identity when H == W.
    """
    height, width = maps.shape[-2:]
    hg, wg = height // window, width // window
    a = torch.arange(wg, device=maps.device).view(wg, 1, 1, 1)
    b = torch.arange(window, device=maps.device).view(1, window, 1, 1)
    e = torch.arange(hg, device=maps.device).view(1, 1, hg, 1)
    f = torch.arange(window, device=maps.device).view(1, 1, 1, window)
    k = e * wg + a
    source = ((k % hg) * window + b) * width + torch.div(k, hg, rounding_mode="floor") * window + f
    return maps.flatten(-2)[..., source.flatten()].unflatten(-1, (height, width))


class OfficialCrossScaleOrder:
    """``cross_scale_scan(window)`` scanned exactly, but merged back as the official code does: its column-major
    paths (entries 2 and 3) go through ``official_column_reverse``. Scan orders' public API: scan / merge /
    merge_sum; (fine, coarse) maps in, (B, 4, C, 5HW/4) paths out."""

    ndim = 2

    def __init__(self, window: int = CROSS_WINDOW) -> None:
        self.window = window
        self.order = cross_scale_paths(window)
        self.num_paths = self.order.num_paths

    def scan(self, *maps: Tensor) -> Tensor:
        return self.order.scan(*maps)

    def inverse(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """Where each fine pixel sits in each path (what a path merge weighs; the quirk only moves merged pixels)."""
        return self.order.inverse(shape, device)

    def merge(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        maps = self.order.merge(y, shape)                                       # (B, 4, C, H, W)
        return torch.cat([maps[:, :2], official_column_reverse(maps[:, 2:], self.window)], dim=1)

    def merge_sum(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.merge(y, shape).sum(1)

    def __repr__(self) -> str:
        return f"OfficialCrossScaleOrder(window={self.window})"


# ---- the model -------------------------------------------------------------------------------------------------
@records_hparams
class MambaCSR(SwinIRSkeleton):
    """MambaCSR. Input (B, in_chans, H, W) float in [0, 1]; output (B, in_chans, upscale*H, upscale*W), not clamped.

    The SwinIR skeleton (``SwinIRSkeleton``, 'pixelshuffle' head) with residual groups of RLMBs (the paper's RLMGs)
    and, in the Final model, the x0.5 branch and cross-scale fusions inside ``forward_features``.

    Args:
        upscale: scale (2^n or 3; the releases are x4).
        in_chans: 3 (RGB, mean shift) or 1.
        embed_dim: channels C. depths: RLMBs per main group.
        depths2: RLMBs per x0.5-branch group (one group and one fusion per entry; Final only).
        d_state: SSM state size of the RLMBs. expand: their SS2D expansion (d_inner = int(expand * C)).
        mlp_ratio: RLMB Mlp hidden width = int(mlp_ratio * C).
        scan_size: the local window s of the dual-interleaved schedule.
        dual_interleaved_scan: two paths per block on the schedule [w_s, c_w_s, w64, c_w64]; False: the four
            w_s / c_w_s paths in every block (ignored by the Final model, which always interleaves).
        cross_scale_scan: the Final model (x0.5 branch and cross-scale fusion); False: the "wo" model.
        fusion_d_state, fusion_mlp_ratio: the cross-scale fusion's state size (the official 16 whatever d_state)
            and Mlp ratio (4).
        img_range: input scale after the mean shift. num_feat: channels of the upsampling head.
        official_coarse_windows, official_cross_scale_reverse: the official quirks (see the module docstring).
    """

    family = "MambaCSR"
    default_architecture = "mambacsr"

    def __init__(self, *, upscale: int = 4, in_chans: int = 3, embed_dim: int = 180, depths: Sequence[int] = (6,) * 6,
                 depths2: Sequence[int] = (6,), d_state: int = 16, expand: float = 2.0, mlp_ratio: float = 2.0,
                 scan_size: int = 8, dual_interleaved_scan: bool = True, cross_scale_scan: bool = True,
                 fusion_d_state: int = 16, fusion_mlp_ratio: float = 4.0, img_range: float = 1.0, num_feat: int = 64,
                 official_coarse_windows: bool = True, official_cross_scale_reverse: bool = True) -> None:
        super().__init__()
        self.cross_scale_scan = cross_scale_scan
        block = {"block": RLMB, "d_state": d_state, "expand": expand, "mlp_ratio": mlp_ratio}
        main = {"cross_scale": cross_scale_scan, "dual_interleaved_scan": dual_interleaved_scan}
        self.build_stem(in_chans=in_chans, embed_dim=embed_dim, img_range=img_range)
        # declared for both models (the Final one pads to the cross-scale window itself): restore() and exports give
        # the model sizes it runs without padding
        self.min_size = self.multiple_of = CROSS_WINDOW
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, depth, schedule=group_schedule(depth, scan_size, **main), **block)
            for depth in depths)
        if cross_scale_scan:
            self.patch_embed2 = keyed("norm", nn.LayerNorm(embed_dim))
            halve = 1 if official_coarse_windows else 2
            coarse_local = 8 if official_coarse_windows else scan_size // 2     # official: built without scan_size
            self.layers2 = nn.ModuleList(
                ResidualGroup(embed_dim, depth, **block,
                              schedule=group_schedule(depth, coarse_local, **main, global_window=64 // halve))
                for depth in depths2)
            order = OfficialCrossScaleOrder() if official_cross_scale_reverse else cross_scale_paths(CROSS_WINDOW)
            self.layers3 = nn.ModuleList(
                CrossScaleFusion(embed_dim, d_state=fusion_d_state, expand=expand, mlp_ratio=fusion_mlp_ratio,
                                 scan_order=order)
                for _ in depths2)
        self.build_head(upscale=upscale, upsampler="pixelshuffle", num_feat=num_feat)
        self.apply(init_linear_and_norm)

    def forward_features(self, x: Tensor) -> Tensor:
        """Shallow features (B, C, H, W) -> deep features (B, C, H, W); H, W multiples of 16 for the Final model."""
        fine = self.embed(x)
        if self.cross_scale_scan:
            coarse = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
            coarse = self.patch_embed2["norm"](coarse.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)   # (B, C, H/2, W/2)
        for i, layer in enumerate(self.layers):
            fine = layer(fine)
            if self.cross_scale_scan and i < len(self.layers2):
                coarse = self.layers2[i](coarse)
                fused = self.layers3[i](fine.permute(0, 2, 3, 1), coarse.permute(0, 2, 3, 1))   # tokens (B, H, W, C)
                fine = fused.permute(0, 3, 1, 2)
        return self.body_norm(fine)

    def pad_input(self, x: Tensor) -> Tensor:
        """The Final model replicate-pads right/bottom to multiples of the cross-scale window (16)."""
        if not self.cross_scale_scan:
            return x
        height, width = x.shape[-2:]
        return F.pad(x, (0, -width % CROSS_WINDOW, 0, -height % CROSS_WINDOW), mode="replicate")


# ---- detection of official checkpoints ---------------------------------------------------------------------------
_BLOCK0 = "layers.0.residual_group.blocks.0."


def _depths(state: Mapping[str, Tensor], prefix: str) -> list[int]:
    return [count_indices(state, rf"{prefix}\.{i}\.residual_group\.blocks\.(\d+)\.ln_1\.weight")
            for i in range(count_indices(state, rf"{prefix}\.(\d+)\.conv\.weight"))]


def _claims_mambacsr(state: Mapping[str, Tensor]) -> bool:
    """RLMBs hold ``conv_block`` (MambaIR's blocks: ``conv_blk``) and a per-path gate ``multi_scan.attn``."""
    return (f"{_BLOCK0}conv_block.cab.0.weight" in state
            and f"{_BLOCK0}self_attention.multi_scan.attn.norm.weight" in state)


@register_detector("MambaCSR", claims=_claims_mambacsr)
def detect_mambacsr(state: Mapping[str, Tensor]) -> Detection:
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    a_logs = state[f"{_BLOCK0}self_attention.A_logs"]
    paths = state[f"{_BLOCK0}self_attention.x_proj_weight"].shape[0]
    cross = "layers3.0.in_proj_down.weight" in state
    num_feat = state["conv_before_upsample.0.weight"].shape[0]
    convs = count_indices(state, r"upsample\.(\d+)\.weight")
    args: dict[str, Any] = {
        "upscale": 3 if state["upsample.0.weight"].shape[0] == 9 * num_feat else 2**convs,
        "in_chans": in_chans, "embed_dim": embed_dim, "depths": _depths(state, "layers"),
        "d_state": a_logs.shape[1], "expand": width_ratio(a_logs.shape[0] // paths, embed_dim),
        "mlp_ratio": width_ratio(state[f"{_BLOCK0}mlp.fc1.weight"].shape[0], embed_dim),
        "dual_interleaved_scan": cross or paths == 2, "cross_scale_scan": cross, "num_feat": num_feat,
    }
    if cross:
        args |= {"depths2": _depths(state, "layers2"), "fusion_d_state": state["layers3.0.A_logs"].shape[1],
                 "fusion_mlp_ratio": width_ratio(state["layers3.0.mlp.fc1.weight"].shape[0], embed_dim)}
    name = "Final (cross-scale)" if cross else "wo (dual-interleaved only)"
    variant = (f"MambaCSR {name} x{args['upscale']}; embed_dim {embed_dim}, depths {args['depths']}, "
               f"d_state {args['d_state']}")
    return Detection("MambaCSR", variant_named(_VARIANTS, args, ("cross_scale_scan",), "mambacsr"), args, variant)


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_TINY = {"embed_dim": 24, "depths": (2, 2), "d_state": 4, "num_feat": 16}
_VARIANTS: dict[str, dict[str, Any]] = {
    "mambacsr": {"cross_scale_scan": True},                 # the "Final" model: the constructor's defaults
    "mambacsr_wo": {"cross_scale_scan": False},
    "test_mambacsr": {**_TINY, "depths2": (2,), "fusion_d_state": 4},
    "test_mambacsr_wo": {**_TINY, "cross_scale_scan": False},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = ("MambaCSR: Dual-Interleaved Scanning for Compressed Image Super-Resolution With SSMs, "
          "arXiv:2408.11758")
_cfg = partial(PretrainedCfg, license="unknown: the official repository has no licence file", paper=_PAPER,
               origin_url="https://github.com/renyulin-f/MambaCSR")
_DRIVE_FOLDER_ID = "1595CDawG7MIiNgMAAPcAtDpM_PiPKmGS"     # the README's "Pretrained Models" link
_PROTOCOL = ("LR = bicubic x4 downsampling then JPEG quality 10; MambaCSRModel.test tiling: h//192+1 x w//192+1 tiles "
             "overlapping by 1/4 of the tile, each tile mirror-padded to the next multiple of 64 (always adds "
             "padding), stitched; PSNR/SSIM on Y (BT.601), crop_border 4")


def _drive(task: str, filename: str, **fields: Any) -> PretrainedCfg:
    """A release in the authors' Drive folder (a folder link only: gdown lists it and the file is picked by name)."""
    return _cfg(task=task, gdrive_folder_id=_DRIVE_FOLDER_ID, manual_filename=filename, test_protocol=_PROTOCOL,
                protocol="mambacsr", **fields)


register_cfgs({
    "mambacsr.qf10_x4": _drive(
        "compressed image SR x4 (JPEG quality 10), Final model with cross-scale fusion", "Cross-scale-QF10-x4.pth",
        metrics={"Set5 PSNR/SSIM": "25.20/0.7209", "Set14 PSNR/SSIM": "24.07/0.6072",
                 "Manga109 PSNR/SSIM": "23.57/0.7419", "Urban100 PSNR/SSIM": "22.26/0.6081",
                 "DIV2K PSNR/SSIM": "25.74/0.6911"},
        notes="paper Table 1; the official test loads params_ema with strict=False, ssmblocks loads it strictly"),
    "mambacsr_wo.qf10_x4": _drive(
        "compressed image SR x4 (JPEG quality 10), dual-interleaved scans without cross-scale fusion",
        "Dual-Interleaved-QF10-x4.pth", notes="ablation release; its numbers are not recorded here"),
    "test_mambacsr.untrained": _cfg(task="CI-size MambaCSR Final (random weights)", notes="tiny; no weights"),
    "test_mambacsr_wo.untrained": _cfg(task="CI-size MambaCSR wo (random weights)", notes="tiny; no weights"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> MambaCSR:
    return MambaCSR(**{**_VARIANTS[name], **kwargs})


@register_model
def mambacsr(**kwargs: Any) -> MambaCSR:
    """MambaCSR "Final" x4: embed 180, 6 x 6 RLMBs, one x0.5 group of 6 and one cross-scale fusion (22,051,842
    parameters)."""
    return _create("mambacsr", kwargs)


@register_model
def mambacsr_wo(**kwargs: Any) -> MambaCSR:
    """MambaCSR "wo" x4: the dual-interleaved model without the cross-scale branch (18,372,603 parameters)."""
    return _create("mambacsr_wo", kwargs)


@register_model
def test_mambacsr(**kwargs: Any) -> MambaCSR:
    """CI-size MambaCSR Final (embed 24, 2 groups of 2, one x0.5 group of 2, d_state 4)."""
    return _create("test_mambacsr", kwargs)


@register_model
def test_mambacsr_wo(**kwargs: Any) -> MambaCSR:
    """CI-size MambaCSR wo (embed 24, 2 groups of 2, d_state 4)."""
    return _create("test_mambacsr_wo", kwargs)
