"""MaIR (CVPR 2025, "A Locality- and Continuity-Preserving Mamba for Image Restoration") and MaIRUNet: classic and
lightweight SR, colour denoising (MaIR); real denoising, motion deblurring and dehazing (MaIRUNet).

Facts from XLearning-SCU/2025-CVPR-MaIR at 2fb433e (no licence file: facts only; summarised in
shared/reference/mair.md): ``basicsr/archs/mair_arch.py`` (``MaIR``), ``basicsr/archs/shift_scanf_util.py`` (the
scan), ``realDenoising/basicsr/models/archs/mairunet_arch.py`` (``MaIRUNet``), the test ymls (released configs).
Parameter names follow the official ones, so the released checkpoints load without renaming.

- MaIR = the SwinIR skeleton (``SwinIRSkeleton``: DIV2K mean shift with the float32 mean, ``conv_first``,
  ``patch_embed.norm``, residual groups ``layers``, ``norm``, ``conv_after_body`` + the stem, the pixelshuffle /
  pixelshuffledirect / denoising head) whose residual groups hold MaIR blocks (``MaIRBlock``: SS2D over the nested
  S-shaped scan merged by SSA, then an MLP). Block j of every group scans with the plain NSS when j is even and the
  shifted NSS (first stripe ``scan_len // 2`` wide) when j is odd: the schedule ``mair_schedule(scan_len)``.
- MaIRUNet = the Restormer U-Net (``RestormerUNet``) of MaIR blocks with key ``mlp``, never shifted; d_state fixed
  per level (4 encoder 1; 8 encoder 2, decoders 2 and 1, refinement; 16 encoder 3, decoder 3; 32 latent); the
  MLP of encoder level 1 uses ``flp_ratio``, every other ``mlp_ratio``.
- ``scan_len`` is forward-only (no tensor stores it): detection takes it from the variant the shapes identify
  (classic SR 8, S light 4, T light 8, colour DN 4, U-Net real DN / deblur 4, U-Net dehazing 8).
- Any input size: the scan indices are built (and cached) for the actual size, as the official code regenerates
  them. Official quirk kept as the option ``official_raster_fallback`` (MaIR): on a side narrower than the shift
  (1-3 px with scan_len 8) the shifted sequences are plain raster orders (``NestedS``). The U-Net never shifts, so
  the quirk cannot arise there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import BlockSequence, MaIRBlock, ResidualGroup
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.scan_orders import ScanOrder, Schedule, mair_schedule, nested_s_scan
from ssmblocks.zoo._common import count_indices, init_linear_and_norm, variant_named, width_ratio
from ssmblocks.zoo._image import SwinIRSkeleton
from ssmblocks.zoo._unet import RestormerUNet

__all__ = ["UNET_D_STATE", "MaIR", "MaIRUNet"]

# d_state of every U-Net level, hard-coded in the official MaIRUNet
UNET_D_STATE = {"encoder_level1": 4, "encoder_level2": 8, "encoder_level3": 16, "latent": 32, "decoder_level3": 16,
                "decoder_level2": 8, "decoder_level1": 8, "refinement": 8}


def _schedule(scan_order: ScanOrder | Schedule | None, default: Schedule) -> Schedule:
    if scan_order is None:
        return default
    return scan_order if isinstance(scan_order, Schedule) else Schedule([scan_order])


# ---- the models ------------------------------------------------------------------------------------------------
@records_hparams
class MaIR(SwinIRSkeleton):
    """MaIR for SR and colour denoising. (B, in_chans, H, W) in [0, 1] -> (B, in_chans, sH, sW). Any H, W >= 1.

    ``create_model`` returns it in train mode, ``load_checkpoint`` in eval mode.

    Args:
        upscale: scale s (1 for denoising).
        in_chans: 3 (RGB, mean-shifted) or 1 (no mean shift).
        embed_dim, depths: channels C and MaIR blocks per residual group.
        d_state: SSM state size. ssm_ratio: d_inner = int(ssm_ratio * C). mlp_ratio: MLP width int(C * mlp_ratio).
        scan_len: NSS stripe width (forward-only: no weight depends on it).
        upsampler: 'pixelshuffle' (classic SR), 'pixelshuffledirect' (light SR) or '' (denoising).
        img_range: input scale after the mean shift. num_feat: channels of the pixelshuffle head.
        official_raster_fallback: the official quirk (default True): in the shifted blocks, a side narrower than
            ``scan_len // 2`` is scanned in plain raster order; False: snaked like any stripe (see ``NestedS``).
        scan_order: replaces the official schedule (``mair_schedule(scan_len)``): one order for every block or a
            ``Schedule`` (block i of every group gets ``scan_order[i]``); K = its paths.
    """

    family = "MaIR"
    default_architecture = "mair_x2"

    def __init__(self, *, upscale: int = 2, in_chans: int = 3, embed_dim: int = 180, depths: Sequence[int] = (6,) * 6,
                 d_state: int = 16, ssm_ratio: float = 2.0, mlp_ratio: float = 2.5, scan_len: int = 8,
                 upsampler: str = "pixelshuffle", img_range: float = 1.0, num_feat: int = 64,
                 official_raster_fallback: bool = True, scan_order: ScanOrder | Schedule | None = None) -> None:
        super().__init__()
        self.scan_len = scan_len
        schedule = _schedule(scan_order, mair_schedule(scan_len, raster_fallback=official_raster_fallback))
        self.build_stem(in_chans=in_chans, embed_dim=embed_dim, img_range=img_range)
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, depth, block=MaIRBlock, schedule=schedule, d_state=d_state, expand=ssm_ratio,
                          mlp_ratio=mlp_ratio)
            for depth in depths
        )
        self.build_head(upscale=upscale, upsampler=upsampler, num_feat=num_feat)
        self.apply(init_linear_and_norm)


@records_hparams
class MaIRUNet(RestormerUNet):
    """MaIRUNet (real denoising, motion deblurring, dehazing): a 4-level U-Net of MaIR blocks (``RestormerUNet``).
    (B, 3, H, W) in [0, 1] -> (B, 3, H, W).

    Widths dim, 2dim, 4dim, 8dim; the level-1 decoder and refinement run at 2dim. The official model needs H, W
    divisible by 8 (its test reflect-pads); this one reflect-pads bottom/right to a multiple of 8 and crops
    (identical output on sizes that already are), and needs at least 8x8.

    Args:
        inp_channels, out_channels: image channels.
        dim, num_blocks, num_refinement_blocks: widths and block counts (Restormer's).
        ssm_ratio: d_inner = int(ssm_ratio * width). flp_ratio: the MLP ratio of encoder level 1.
        mlp_ratio: the MLP ratio of every other level. bias: biases of the U-Net's convs.
        scan_len: NSS stripe width (forward-only); every block scans the plain NSS (the official U-Net never shifts).
        scan_order: replaces it (an order, or a ``Schedule`` over the blocks of each level).
    """

    family = "MaIRUNet"
    default_architecture = "mairunet_realdn"

    def __init__(self, *, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4, ssm_ratio: float = 2.0,
                 flp_ratio: float = 4.0, mlp_ratio: float = 1.5, bias: bool = False, scan_len: int = 4,
                 scan_order: ScanOrder | Schedule | None = None) -> None:
        super().__init__()
        self.scan_len = scan_len
        schedule = _schedule(scan_order, Schedule([nested_s_scan(scan_len)]))

        def level(name: str, width: int, count: int) -> BlockSequence:
            ratio = flp_ratio if name == "encoder_level1" else mlp_ratio
            return BlockSequence(width, count, block=MaIRBlock, schedule=schedule, d_state=UNET_D_STATE[name],
                                 expand=ssm_ratio, mlp_ratio=ratio, mlp_key="mlp")

        self.build_unet(in_chans=inp_channels, out_chans=out_channels, dim=dim, num_blocks=num_blocks,
                        num_refinement_blocks=num_refinement_blocks, level=level, bias=bias)
        self.apply(init_linear_and_norm)


# ---- detection of official checkpoints ---------------------------------------------------------------------------
_BLOCK0 = "layers.0.residual_group.blocks.0."
_GATE = "self_attention.gating.gating.1.weight"     # SSA: unique to MaIR


def _claims_mair(state: Mapping[str, Tensor]) -> bool:
    return f"{_BLOCK0}{_GATE}" in state and f"{_BLOCK0}conv_blk.fc1.weight" in state


def _claims_mairunet(state: Mapping[str, Tensor]) -> bool:
    return f"encoder_level1.0.{_GATE}" in state and "encoder_level1.0.mlp.fc1.weight" in state


def _d_inner(state: Mapping[str, Tensor], prefix: str) -> int:
    return state[f"{prefix}self_attention.dt_projs_weight"].shape[1]


@register_detector("MaIR", claims=_claims_mair)
def detect_mair(state: Mapping[str, Tensor]) -> Detection:
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = [count_indices(state, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.ln_1\.weight")
              for i in range(count_indices(state, r"layers\.(\d+)\.conv\.weight"))]
    d_inner = _d_inner(state, _BLOCK0)
    d_state = state[f"{_BLOCK0}self_attention.A_logs"].shape[1]
    ssm_ratio = width_ratio(d_inner, embed_dim)
    mlp_ratio = width_ratio(state[f"{_BLOCK0}conv_blk.fc1.weight"].shape[0], embed_dim)
    if "conv_before_upsample.0.weight" in state:
        upsampler, num_feat = "pixelshuffle", state["conv_before_upsample.0.weight"].shape[0]
        convs = count_indices(state, r"upsample\.(\d+)\.weight")
        upscale = 3 if state["upsample.0.weight"].shape[0] == 9 * num_feat else 2**convs
        scan_len, task = 8, f"classic SR x{upscale}"
    elif "upsample.0.weight" in state:
        upsampler, num_feat = "pixelshuffledirect", 64
        upscale = math.isqrt(state["upsample.0.weight"].shape[0] // in_chans)
        small = d_inner == int(1.4 * embed_dim)        # the S light release (scan_len 4); T light: scan_len 8
        scan_len, task = (4, f"light SR x{upscale} (S)") if small else (8, f"light SR x{upscale} (T)")
    else:
        upsampler, num_feat, upscale, scan_len, task = "", 64, 1, 4, "colour denoising"
    args = {"upscale": upscale, "in_chans": in_chans, "embed_dim": embed_dim, "depths": depths, "d_state": d_state,
            "ssm_ratio": ssm_ratio, "mlp_ratio": mlp_ratio, "scan_len": scan_len, "upsampler": upsampler,
            "num_feat": num_feat}
    arch = variant_named(_VARIANTS, args, ("upsampler", "upscale", "scan_len"),
                         {"pixelshuffle": "mair_x2", "pixelshuffledirect": "mair_light_s_x2", "": "mair_dn"}[upsampler])
    variant = (f"MaIR {task}; embed_dim {embed_dim}, depths {depths}, d_state {d_state}, ssm_ratio {ssm_ratio}, "
               f"mlp_ratio {mlp_ratio}; scan_len {scan_len} (not stored in weights: the release's value)")
    return Detection("MaIR", arch, args, variant)


@register_detector("MaIRUNet", claims=_claims_mairunet)
def detect_mairunet(state: Mapping[str, Tensor]) -> Detection:
    dim, inp_channels = state["patch_embed.proj.weight"].shape[:2]
    counts = [count_indices(state, rf"{name}\.(\d+)\.ln_1\.weight")
              for name in ("encoder_level1", "encoder_level2", "encoder_level3", "latent")]
    ssm_ratio = width_ratio(_d_inner(state, "encoder_level1.0."), dim)
    args = {"inp_channels": inp_channels, "out_channels": state["output.weight"].shape[0], "dim": dim,
            "num_blocks": counts, "num_refinement_blocks": count_indices(state, r"refinement\.(\d+)\.ln_1\.weight"),
            "ssm_ratio": ssm_ratio,
            "flp_ratio": width_ratio(state["encoder_level1.0.mlp.fc1.weight"].shape[0], dim),
            "mlp_ratio": width_ratio(state["encoder_level2.0.mlp.fc1.weight"].shape[0], 2 * dim),
            "bias": "output.bias" in state, "scan_len": 4 if ssm_ratio == 2.0 else 8}
    arch = variant_named(_UNET_VARIANTS, args, ("dim", "num_blocks", "ssm_ratio"), "mairunet_realdn")
    task = "dehazing" if args["scan_len"] == 8 else "real denoising / motion deblurring"
    return Detection("MaIRUNet", arch, args,
                     f"MaIRUNet {task}; dim {dim}, num_blocks {counts}, ssm_ratio {ssm_ratio}; scan_len "
                     f"{args['scan_len']} (not stored in weights: the release's value)")


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_CLASSIC = {"embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "ssm_ratio": 2.0, "mlp_ratio": 2.5, "scan_len": 8,
            "upsampler": "pixelshuffle"}
_LIGHT = {"embed_dim": 60, "depths": (6,) * 4, "mlp_ratio": 1.6, "upsampler": "pixelshuffledirect"}
_S, _T = {"d_state": 16, "ssm_ratio": 1.4, "scan_len": 4}, {"d_state": 1, "ssm_ratio": 1.1, "scan_len": 8}
_VARIANTS: dict[str, dict[str, Any]] = {
    **{f"mair_x{s}": {**_CLASSIC, "upscale": s} for s in (2, 3, 4)},
    **{f"mair_light_s_x{s}": {**_LIGHT, **_S, "upscale": s} for s in (2, 3, 4)},
    **{f"mair_light_t_x{s}": {**_LIGHT, **_T, "upscale": s} for s in (2, 3, 4)},
    "mair_dn": {"upscale": 1, "embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "ssm_ratio": 1.3,
                "mlp_ratio": 2.0, "scan_len": 4, "upsampler": ""},
    "test_mair": {"upscale": 2, "embed_dim": 16, "depths": (2, 2), "d_state": 4, "ssm_ratio": 2.0, "mlp_ratio": 2.5,
                  "scan_len": 8, "upsampler": "pixelshuffle", "num_feat": 16},
}
_RESTORE_UNET = {"dim": 48, "num_blocks": (4, 6, 6, 8), "num_refinement_blocks": 4, "ssm_ratio": 2.0,
                 "flp_ratio": 4.0, "mlp_ratio": 1.5, "scan_len": 4}
_UNET_VARIANTS: dict[str, dict[str, Any]] = {
    "mairunet_realdn": _RESTORE_UNET,
    "mairunet_deblur": _RESTORE_UNET,
    "mairunet_dehaze": {"dim": 24, "num_blocks": (2, 2, 3, 4), "num_refinement_blocks": 2, "ssm_ratio": 1.2,
                        "flp_ratio": 2.0, "mlp_ratio": 2.0, "scan_len": 8},
    "test_mairunet": {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, "ssm_ratio": 2.0,
                      "flp_ratio": 2.0, "mlp_ratio": 1.5, "scan_len": 4},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = ("MaIR: A Locality- and Continuity-Preserving Mamba for Image Restoration (CVPR 2025), arXiv:2412.20066")
_cfg = partial(PretrainedCfg, license="unknown: the official repository has no licence file", paper=_PAPER,
               origin_url="https://github.com/XLearning-SCU/2025-CVPR-MaIR")
_DRIVE_FOLDER_ID = "1YYmIVTyynLg-Kfu-mviq24WdVkJu-S3M"     # the README's checkpoint folder
_NO_NUMBERS = ("the official README (2fb433e) has no result tables; the paper's numbers are not recorded here")
_SR_PROTOCOL = ("basicsr/test.py with MambaIRModel: MambaIR tiling (n = size//200 + 1 tiles per axis, reflect-pad to "
                "a multiple of n, tiles overlapping by tile//10, centres pasted); tensor2img (clamp, x255, round); "
                "PSNR/SSIM on Y (BT.601), crop_border = scale. MaIR+: the same under the x8 self-ensemble "
                "(MaIRPlusModel; restore preset 'mair_plus')")
_DN_PROTOCOL = ("noisy = gt + N(0, sigma/255), np.random.seed(0) per image (BGR HWC float64, unclipped, then "
                "float32); MambaIR tiling as SR; PSNR/SSIM on Y, crop 0")
_UNET_PROTOCOL = ("realDenoising/basicsr/test.py (ImageCleanModel): reflect-pad bottom/right to a multiple of 8, the "
                  "whole image in one pass, crop; RGB metrics, crop 0")


def _drive(task: str, filename: str, *, test_protocol: str = _SR_PROTOCOL, protocol: str = "mambair",
           notes: str = _NO_NUMBERS) -> PretrainedCfg:
    """A release in the authors' Drive folder (a folder link only: gdown lists it and the file is picked by name; the
    file names are the test ymls' ``pretrain_network_g``)."""
    return _cfg(task=task, gdrive_folder_id=_DRIVE_FOLDER_ID, manual_filename=filename, test_protocol=test_protocol,
                protocol=protocol, notes=notes)


def _untrained(task: str) -> PretrainedCfg:
    return _cfg(task=task, notes="tiny; no weights")


register_cfgs({
    **{f"mair_x{s}.official": _drive(f"classic SR x{s}", f"MaIR_SR_x{s}.pth") for s in (2, 3, 4)},
    **{f"mair_light_s_x{s}.official": _drive(f"lightweight SR x{s} (MaIR-S, about 1.3M parameters)",
                                             f"MaIR_S_lightSR_x{s}.pth") for s in (2, 3, 4)},
    **{f"mair_light_t_x{s}.official": _drive(f"lightweight SR x{s} (MaIR-T, under 900K parameters)",
                                             f"MaIR_T_lightSR_x{s}.pth") for s in (2, 3, 4)},
    **{f"mair_dn.sigma{s}": _drive(f"colour Gaussian denoising, sigma {s}", f"MaIR_CDN_s{s}.pth",
                                   test_protocol=_DN_PROTOCOL) for s in (15, 25, 50)},
    "mairunet_realdn.official": _drive(
        "real-world denoising (SIDD)", "MaIR_RealDN.ckpt", protocol="",
        test_protocol=_UNET_PROTOCOL + "; PSNR on the float tensors (use_image false); or the SIDD script: whole "
        "256x256 validation blocks, output clamped to [0, 1]",
        notes="a .ckpt file: a torch pickle holding {'params': state_dict}. " + _NO_NUMBERS),
    "mairunet_deblur.official": _drive(
        "motion deblurring (GoPro)", "MaIR_MotionDeblur.ckpt", protocol="",
        test_protocol=_UNET_PROTOCOL + "; PSNR on uint8 images (use_image true)",
        notes="a .ckpt file: a torch pickle holding {'params': state_dict}. " + _NO_NUMBERS),
    **{f"mairunet_dehaze.{tag.lower()}": _drive(f"dehazing ({name})", f"MaIR_DH_{tag}.pth", protocol="",
                                                 test_protocol=_UNET_PROTOCOL + "; PSNR on the float tensors")
       for tag, name in (("ITS", "RESIDE ITS"), ("OTS", "RESIDE OTS"), ("R6K", "RESIDE-6K"))},
    "test_mair.untrained": _untrained("CI-size MaIR classic SR x2 (random weights)"),
    "test_mairunet.untrained": _untrained("CI-size MaIRUNet (random weights)"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> MaIR:
    return MaIR(**{**_VARIANTS[name], **kwargs})


def _create_unet(name: str, kwargs: dict[str, Any]) -> MaIRUNet:
    return MaIRUNet(**{**_UNET_VARIANTS[name], **kwargs})


@register_model
def mair_x2(**kwargs: Any) -> MaIR:
    """MaIR classic SR x2: embed 180, 6 x 6 blocks, scan_len 8, pixelshuffle head (19,444,247 parameters)."""
    return _create("mair_x2", kwargs)


@register_model
def mair_x3(**kwargs: Any) -> MaIR:
    """MaIR classic SR x3: embed 180, 6 x 6 blocks, scan_len 8, pixelshuffle head (19,628,887 parameters)."""
    return _create("mair_x3", kwargs)


@register_model
def mair_x4(**kwargs: Any) -> MaIR:
    """MaIR classic SR x4: embed 180, 6 x 6 blocks, scan_len 8, pixelshuffle head (19,591,959 parameters)."""
    return _create("mair_x4", kwargs)


@register_model
def mair_light_s_x2(**kwargs: Any) -> MaIR:
    """MaIR-S light SR x2: embed 60, 4 x 6 blocks, d_state 16, ssm_ratio 1.4, scan_len 4 (1,354,680 parameters)."""
    return _create("mair_light_s_x2", kwargs)


@register_model
def mair_light_s_x3(**kwargs: Any) -> MaIR:
    """MaIR-S light SR x3: embed 60, 4 x 6 blocks, d_state 16, ssm_ratio 1.4, scan_len 4 (1,362,795 parameters)."""
    return _create("mair_light_s_x3", kwargs)


@register_model
def mair_light_s_x4(**kwargs: Any) -> MaIR:
    """MaIR-S light SR x4: embed 60, 4 x 6 blocks, d_state 16, ssm_ratio 1.4, scan_len 4 (1,374,156 parameters)."""
    return _create("mair_light_s_x4", kwargs)


@register_model
def mair_light_t_x2(**kwargs: Any) -> MaIR:
    """MaIR-T light SR x2: embed 60, 4 x 6 blocks, d_state 1, ssm_ratio 1.1, scan_len 8 (877,752 parameters)."""
    return _create("mair_light_t_x2", kwargs)


@register_model
def mair_light_t_x3(**kwargs: Any) -> MaIR:
    """MaIR-T light SR x3: embed 60, 4 x 6 blocks, d_state 1, ssm_ratio 1.1, scan_len 8 (885,867 parameters)."""
    return _create("mair_light_t_x3", kwargs)


@register_model
def mair_light_t_x4(**kwargs: Any) -> MaIR:
    """MaIR-T light SR x4: embed 60, 4 x 6 blocks, d_state 1, ssm_ratio 1.1, scan_len 8 (897,228 parameters)."""
    return _create("mair_light_t_x4", kwargs)


@register_model
def mair_dn(**kwargs: Any) -> MaIR:
    """MaIR colour Gaussian denoising (tags sigma15/25/50): embed 180, 6 x 6 blocks, ssm_ratio 1.3, scan_len 4
    (14,089,035 parameters)."""
    return _create("mair_dn", kwargs)


@register_model
def mairunet_realdn(**kwargs: Any) -> MaIRUNet:
    """MaIRUNet real-world denoising (SIDD): dim 48, blocks [4, 6, 6, 8], 4 refinement (26,293,296 parameters)."""
    return _create_unet("mairunet_realdn", kwargs)


@register_model
def mairunet_deblur(**kwargs: Any) -> MaIRUNet:
    """MaIRUNet motion deblurring (GoPro): the real-denoising architecture (26,293,296 parameters)."""
    return _create_unet("mairunet_deblur", kwargs)


@register_model
def mairunet_dehaze(**kwargs: Any) -> MaIRUNet:
    """MaIRUNet dehazing (tags its/ots/r6k): dim 24, blocks [2, 2, 3, 4], 2 refinement, ssm_ratio 1.2, scan_len 8
    (3,404,376 parameters)."""
    return _create_unet("mairunet_dehaze", kwargs)


@register_model
def test_mair(**kwargs: Any) -> MaIR:
    """CI-size MaIR classic SR x2 (embed 16, 2 x 2 blocks, d_state 4)."""
    return _create("test_mair", kwargs)


@register_model
def test_mairunet(**kwargs: Any) -> MaIRUNet:
    """CI-size MaIRUNet (dim 8, one block per level)."""
    return _create_unet("test_mairunet", kwargs)
