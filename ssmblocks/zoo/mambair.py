"""MambaIR (ECCV 2024) and MambaIRUNet: image super-resolution, denoising, JPEG artefact reduction.

Facts from csguoh/MambaIR (Apache-2.0)
``basicsr/archs/mambair_arch.py`` at 33d7b34 (light CAB variants at 06dc6cd / 3ad5892) and
``realDenoising/basicsr/models/archs/mambairunet_arch.py``. Parameter names follow the official ones, so official
checkpoints load without renaming.

Layout of this file: models -> checkpoint_filter_fn and detection -> pretrained cfgs -> registered entry points.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._builder import Detection, register_detector
from ssmblocks._hparams import records_hparams
from ssmblocks._hub import gdrive_url
from ssmblocks._inputs import check_image
from ssmblocks._registry import PretrainedCfg, register_cfgs, register_model
from ssmblocks.blocks import CAB_VARIANTS, BlockSequence, ResidualGroup
from ssmblocks.necks import PixelShuffleDirect, PixelShuffleUpsample
from ssmblocks.scan_orders import ScanOrder, Schedule
from ssmblocks.zoo._common import RGB_MEAN, count_indices, init_linear_and_norm, mean_of, width_ratio

__all__ = ["MambaIR", "MambaIRUNet"]

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "")


class _Norm(nn.Module):
    """Holds a LayerNorm under ``.norm`` (the official ``patch_embed.norm`` key)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)


def _order_options(scan_order: ScanOrder | Schedule | None) -> dict[str, Any]:
    """Block-group options for a model's ``scan_order``: one order for every block, or a schedule over blocks."""
    if scan_order is None:
        return {}
    return {"schedule": scan_order} if isinstance(scan_order, Schedule) else {"scan_order": scan_order}


@records_hparams
class MambaIR(nn.Module):
    """MambaIR for SR, denoising and JPEG CAR. Input (B, in_chans, H, W) in [0, 1]; output (B, in_chans, sH, sW).

    Args:
        upscale: scale s (1 for denoising / CAR).
        in_chans: 3 (RGB) or 1 (grey; no mean shift).
        embed_dim, depths: channels and blocks per residual group.
        d_state: SSM state size. mlp_ratio: the SS2D expansion (d_inner = int(mlp_ratio * embed_dim)).
        upsampler: 'pixelshuffle' (classic SR), 'pixelshuffledirect' (light SR) or '' (denoise / CAR).
        cab_variant: one of CAB_VARIANTS; default 'classic', or 'light_oct2024' with pixelshuffledirect.
        scan_order: the SS2D scan order (default: 4-path cross-scan); its path count sets the per-path parameters.
            A ``Schedule`` gives block i of every residual group ``scan_order[i]``.
        num_feat: channels of the pixelshuffle head.
    """

    family = "MambaIR"
    default_architecture = "mambair_sr_x2"

    def __init__(self, *, upscale: int = 2, in_chans: int = 3, embed_dim: int = 180, depths: Sequence[int] = (6,) * 6,
                 d_state: int = 16, mlp_ratio: float = 2.0, img_range: float = 1.0, upsampler: str = "pixelshuffle",
                 cab_variant: str | None = None, scan_order: ScanOrder | Schedule | None = None,
                 num_feat: int = 64) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        cab_variant = cab_variant or ("light_oct2024" if upsampler == "pixelshuffledirect" else "classic")
        if cab_variant not in CAB_VARIANTS:
            raise ValueError(f"cab_variant must be one of {CAB_VARIANTS}, got {cab_variant!r}")
        self.in_chans, self.upscale, self.upsampler, self.img_range = in_chans, upscale, upsampler, img_range
        self.cab_variant = cab_variant
        self.mean_values = RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.patch_embed = _Norm(embed_dim)
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, depth, d_state=d_state, expand=mlp_ratio, cab_variant=cab_variant,
                          **_order_options(scan_order))
            for depth in depths
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, padding=1), nn.LeakyReLU())
            self.upsample = PixelShuffleUpsample(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, padding=1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = PixelShuffleDirect(upscale, embed_dim, in_chans)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, padding=1)
        self.apply(init_linear_and_norm)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): LayerNorm, residual groups, LayerNorm (over channels)."""
        x = self.patch_embed.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_chans, type(self).__name__)
        # the official mean is a float32 tensor cast to the input's dtype (a constant, not a buffer: models load
        # on the meta device and take every tensor from the checkpoint)
        mean = mean_of(x, self.mean_values)
        x = (x - mean) * self.img_range
        first = self.conv_first(x)
        res = self.conv_after_body(self.forward_features(first)) + first
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(res)))
        elif self.upsampler == "pixelshuffledirect":
            x = self.upsample(res)
        else:
            x = x + self.conv_last(res)
        return x / self.img_range + mean

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
        """Official MambaIR keys are the library's keys: nothing to map (the official ``mean`` is not saved)."""
        return state_dict




class _Resample(nn.Module):
    """Conv3x3 (no bias) then PixelUnshuffle(2) (down, n -> 2n channels) or PixelShuffle(2) (up, n -> n/2)."""

    def __init__(self, channels: int, down: bool) -> None:
        super().__init__()
        if down:
            conv = nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False)
            self.body = nn.Sequential(conv, nn.PixelUnshuffle(2))
        else:
            self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _Proj(nn.Module):
    """Holds the stem conv under ``.proj`` (the official ``patch_embed.proj`` key)."""

    def __init__(self, in_chans: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, 3, padding=1, bias=bias)


@records_hparams
class MambaIRUNet(nn.Module):
    """MambaIRUNet (real-world denoising): a 4-level U-Net of VSSBlocks. (B, 3, H, W) -> (B, 3, H, W), in [0, 1].

    Widths dim, 2dim, 4dim, 8dim; the level-1 decoder and refinement run at 2dim (the up-sampled features are
    concatenated with the level-1 encoder output without a reduce conv, as in the official model). The official
    model needs H, W divisible by 8; this one reflect-pads to a multiple of 8 and crops (identical output on
    sizes that already are), and needs at least 8x8.
    """

    family = "MambaIRUNet"
    default_architecture = "mambairunet_realdn"

    def __init__(self, *, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4, mlp_ratio: float = 1.5,
                 bias: bool = False, d_state: int = 16, scan_order: ScanOrder | Schedule | None = None) -> None:
        super().__init__()
        self.inp_channels = inp_channels

        def level(width: int, count: int) -> BlockSequence:
            return BlockSequence(width, count, d_state=d_state, expand=mlp_ratio, **_order_options(scan_order))

        self.patch_embed = _Proj(inp_channels, dim, bias)
        self.encoder_level1 = level(dim, num_blocks[0])
        self.down1_2 = _Resample(dim, down=True)
        self.encoder_level2 = level(dim * 2, num_blocks[1])
        self.down2_3 = _Resample(dim * 2, down=True)
        self.encoder_level3 = level(dim * 4, num_blocks[2])
        self.down3_4 = _Resample(dim * 4, down=True)
        self.latent = level(dim * 8, num_blocks[3])
        self.up4_3 = _Resample(dim * 8, down=False)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, 1, bias=bias)
        self.decoder_level3 = level(dim * 4, num_blocks[2])
        self.up3_2 = _Resample(dim * 4, down=False)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, 1, bias=bias)
        self.decoder_level2 = level(dim * 2, num_blocks[1])
        self.up2_1 = _Resample(dim * 2, down=False)
        self.decoder_level1 = level(dim * 2, num_blocks[0])
        self.refinement = level(dim * 2, num_refinement_blocks)
        self.output = nn.Conv2d(dim * 2, out_channels, 3, padding=1, bias=bias)
        self.apply(init_linear_and_norm)

    @staticmethod
    def _run(blocks: BlockSequence, x: Tensor) -> Tensor:
        """A level's blocks on a (B, C, H, W) map, through channels-last tokens."""
        return blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, image: Tensor) -> Tensor:
        check_image(image, self.inp_channels, type(self).__name__)
        height, width = image.shape[-2:]
        if height < 8 or width < 8:
            raise ValueError(f"MambaIRUNet needs images of at least 8x8 (three 2x downsamplings), got {height}x{width}")
        pad = (0, -width % 8, 0, -height % 8)
        x = F.pad(image, pad, mode="reflect") if any(pad) else image
        enc1 = self._run(self.encoder_level1, self.patch_embed.proj(x))
        enc2 = self._run(self.encoder_level2, self.down1_2(enc1))
        enc3 = self._run(self.encoder_level3, self.down2_3(enc2))
        latent = self._run(self.latent, self.down3_4(enc3))
        dec3 = self._run(self.decoder_level3, self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self._run(self.decoder_level2, self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self._run(self.decoder_level1, torch.cat([self.up2_1(dec2), enc1], 1))
        out = self.output(self._run(self.refinement, dec1)) + x
        return out[..., :height, :width]

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
        """Official MambaIRUNet keys are the library's keys: nothing to map."""
        return state_dict


# ---- detection of official checkpoints ---------------------------------------------------------------------------



def _ssm_shapes(state: Mapping[str, Tensor], prefix: str, dim: int) -> tuple[int, float]:
    a_logs = state[f"{prefix}self_attention.A_logs"]
    paths = state[f"{prefix}self_attention.x_proj_weight"].shape[0]
    return a_logs.shape[1], width_ratio(a_logs.shape[0] // paths, dim)


_BLOCK0 = "layers.0.residual_group.blocks.0."


def _claims_mambair(state: Mapping[str, Tensor]) -> bool:
    """MambaIR's residual blocks hold ``conv_blk`` and ``self_attention.A_logs`` (MambaCSR's: ``conv_block``)."""
    return f"{_BLOCK0}conv_blk.cab.0.weight" in state and f"{_BLOCK0}self_attention.A_logs" in state


def _claims_mambairunet(state: Mapping[str, Tensor]) -> bool:
    return "encoder_level1.0.conv_blk.cab.0.weight" in state and "encoder_level1.0.self_attention.A_logs" in state


@register_detector("MambaIR", claims=_claims_mambair)
def detect_mambair(state: Mapping[str, Tensor]) -> Detection:
    block = _BLOCK0
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = [count_indices(state, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.ln_1\.weight")
              for i in range(count_indices(state, r"layers\.(\d+)\.conv\.weight"))]
    d_state, mlp_ratio = _ssm_shapes(state, block, embed_dim)
    cab0 = tuple(state[f"{block}conv_blk.cab.0.weight"].shape)
    if cab0 == (embed_dim, 1, 3, 3):
        cab = "light_feb2024"
    elif cab0[2:] == (1, 1):
        cab = "light_oct2024"
    elif cab0[0] == embed_dim // 6 and cab0[0] != embed_dim // 3:
        cab = "light_mar2024"
    else:
        cab = "classic"
    if "conv_before_upsample.0.weight" in state:
        upsampler = "pixelshuffle"
        convs = count_indices(state, r"upsample\.(\d+)\.weight")
        num_feat = state["conv_before_upsample.0.weight"].shape[0]
        upscale = 3 if state["upsample.0.weight"].shape[0] == 9 * num_feat else 2**convs
    elif "upsample.0.weight" in state:
        upsampler = "pixelshuffledirect"
        upscale = math.isqrt(state["upsample.0.weight"].shape[0] // in_chans)
    else:
        upsampler, upscale = "", 1
    args = {"upscale": upscale, "in_chans": in_chans, "embed_dim": embed_dim, "depths": depths, "d_state": d_state,
            "mlp_ratio": mlp_ratio, "upsampler": upsampler, "cab_variant": cab}
    if upsampler == "pixelshuffle":
        arch, task = f"mambair_sr_x{upscale}", f"classic SR x{upscale} (or real-SR x4: same architecture)"
    elif upsampler == "pixelshuffledirect":
        era = {"light_oct2024": "", "light_mar2024": "_mar2024", "light_feb2024": "_feb2024"}.get(cab, "")
        arch, task = f"mambair_light{era}_x{upscale}", f"lightweight SR x{upscale}, {cab} CAB"
    else:
        arch, task = ("mambair_dn_color", "colour denoising") if in_chans == 3 else ("mambair_car", "JPEG CAR")
    variant = f"MambaIR {task}; embed_dim {embed_dim}, depths {depths}, d_state {d_state}, mlp_ratio {mlp_ratio}"
    return Detection("MambaIR", arch, args, variant)


@register_detector("MambaIRUNet", claims=_claims_mambairunet)
def detect_mambairunet(state: Mapping[str, Tensor]) -> Detection:
    dim, inp_channels = state["patch_embed.proj.weight"].shape[:2]
    counts = [count_indices(state, rf"{name}\.(\d+)\.ln_1\.weight")
              for name in ("encoder_level1", "encoder_level2", "encoder_level3", "latent")]
    d_state, mlp_ratio = _ssm_shapes(state, "encoder_level1.0.", dim)
    args = {"inp_channels": inp_channels, "out_channels": state["output.weight"].shape[0], "dim": dim,
            "num_blocks": counts, "num_refinement_blocks": count_indices(state, r"refinement\.(\d+)\.ln_1\.weight"),
            "mlp_ratio": mlp_ratio, "bias": "output.bias" in state, "d_state": d_state}
    return Detection("MambaIRUNet", "mambairunet_realdn", args,
                     f"MambaIRUNet real denoising; dim {dim}, num_blocks {counts}, mlp_ratio {mlp_ratio}")


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = "MambaIR: A Simple Baseline for Image Restoration with State-Space Model (ECCV 2024), arXiv:2402.15648"
_ORIGIN = "https://github.com/csguoh/MambaIR"
_SR_PROTOCOL = ("MambaIRModel.test tiling: n = h//200+1 splits per axis, reflect-pad to a multiple of n, tiles of "
                "H//n with overlap tile//10, centres pasted; PSNR/SSIM on Y (BT.601), crop_border = scale")


_HUB_REPO = "cguoh/MambaIR"
# Files of the authors' Hub repo whose names are confirmed (MambaIR README, v1 weights in MambaIRv1_ckpt/).
_HUB_FILES = {"mambair_sr_x4.official": "MambaIRv1_ckpt/MambaIR_classicSRx4.pth",
              "mambair_dn_color.sigma25": "MambaIRv1_ckpt/ColorDN_MambaIR_level25.pth"}


def _cfg(task: str, scale: int, drive_id: str | None = None, *, in_chans: int = 3, metrics: dict | None = None,
         protocol: str = _SR_PROTOCOL, preset: str = "mambair", **extra: Any) -> PretrainedCfg:
    """A released checkpoint on Google Drive (through gdown when installed; else the error explains). ``protocol``
    describes the evaluation in words; ``preset`` names the restore() procedure that reproduces its tiling."""
    return PretrainedCfg(
        gdrive_id=drive_id, license="Apache-2.0", paper=_PAPER, origin_url=_ORIGIN, task=task,
        test_protocol=protocol if drive_id else "", protocol=preset if drive_id else "", scale=scale,
        in_chans=in_chans, out_chans=in_chans, supports_fp16=False, supports_bf16=True, metrics=metrics or {}, **extra,
    )


def _on_hub(cfgs: dict[str, PretrainedCfg]) -> dict[str, PretrainedCfg]:
    """The cfgs whose file is confirmed on the authors' Hub repo take it as source, Drive named as the fallback."""
    return {name: dataclasses.replace(cfg, hf_hub_id=_HUB_REPO, hf_hub_filename=_HUB_FILES[name],
                                      fallback_url=gdrive_url(cfg.gdrive_id), gdrive_id=None)
            if name in _HUB_FILES else cfg for name, cfg in cfgs.items()}


_DN_PROTOCOL = "RGB PSNR, border 0; noise N(0, sigma/255) with np.random.seed(0) per image; MambaIR tiling as SR"
_CAR_PROTOCOL = "grey PSNR/SSIM, border 0; MambaIR tiling as SR"
register_cfgs(_on_hub({
    "mambair_sr_x2.official": _cfg("classic SR", 2, "11Kiy_0hmMyDjMvW7MmbUT6tO9n5JrDeB",
                                   metrics={"Urban100 PSNR/SSIM": "34.15/0.9446"}),
    "mambair_sr_x3.official": _cfg("classic SR", 3, "1u0VcESEduHu-GBCC6vDGQt9qXSX2AKdn",
                                   metrics={"Urban100 PSNR/SSIM": "29.93/0.8841"}),
    "mambair_sr_x4.official": _cfg("classic SR", 4, "1YXggWIsi-auCjmPQDvW9FjB1f9fZK0hN",
                                   metrics={"Urban100 PSNR/SSIM": "27.68/0.8287"}),
    "mambair_realsr_x4.official": _cfg("real-world SR", 4, "16BBSRz1HellkTgypu4wu3CHA20CLgpSY",
                                       protocol="no published metric; visual results"),
    "mambair_light_x2.official": _cfg("lightweight SR (Oct-2024 CAB)", 2, "1eWovtH7YvEn2Bm9wBK5REOhbIgapsLxM",
                                      metrics={"Urban100 PSNR/SSIM": "32.92/0.9356"}),
    "mambair_light_x3.official": _cfg("lightweight SR (Oct-2024 CAB)", 3, "1JoC3fwah5Xo0Z1s8DnmXQlsctKQjs1Hx",
                                      metrics={"Urban100 PSNR/SSIM": "29.00/0.8689"}),
    "mambair_light_x4.official": _cfg("lightweight SR (Oct-2024 CAB)", 4, "1jIz579k_16569HFVF-76KgqAbJaJoDgF",
                                      metrics={"Urban100 PSNR/SSIM": "26.75/0.8051"}),
    **{f"mambair_light_{era}_x{s}.official": _cfg(
        f"lightweight SR ({era} CAB, an older release)", s, drive_id,
        notes=f"older release; Drive ids in the order the MambaIR README listed them ({era})")
       for era, ids in (("mar2024", ("1kMCxoD-WEWaLcADJ7ZKV5B7jPpiYBkC2", "1emoHPdBca99_7yx09kuTOCXU3nMOnBY-",
                                     "1Qv_jTuP2P5tTaGQ8SgQuB7W9Cl-YPqH5")),
                        ("feb2024", ("1mI3vVcv1inEZ8XmDudk4G8HYcPMUO0cg", "1tphJw5diWpvX95ZLFCHNTP8QfKtb3uHx",
                                     "1MHJ2ZP7P6Rfb29hDAwZj9SZqIUCLffFU")))
       for s, drive_id in zip((2, 3, 4), ids, strict=True)},
    "mambair_dn_color.sigma15": _cfg("colour Gaussian denoising, sigma 15", 1, "1w5Y502iKSkqhP-OpleppPmk6PAnvWPdr",
                                     metrics={"Urban100 PSNR": 35.17}, protocol=_DN_PROTOCOL),
    "mambair_dn_color.sigma25": _cfg("colour Gaussian denoising, sigma 25", 1, "1qSPy6B7Jvi7PDHM1fl8Q88kn7ckwtusK",
                                     metrics={"Urban100 PSNR": 32.99}, protocol=_DN_PROTOCOL),
    "mambair_dn_color.sigma50": _cfg("colour Gaussian denoising, sigma 50", 1, "1O2o9xPruX8MtUL4qmuxV4Vfsef8L_jLM",
                                     metrics={"Urban100 PSNR": 30.07}, protocol=_DN_PROTOCOL),
    "mambair_car.q10": _cfg("JPEG artefact reduction, quality 10", 1, "1kncutEIAq9MvD8w6If6VZD7hkRkRcXWr", in_chans=1,
                            metrics={"Classic5 PSNR/SSIM": "30.27/0.8256"}, protocol=_CAR_PROTOCOL),
    "mambair_car.q30": _cfg("JPEG artefact reduction, quality 30", 1, "1hIIJQR59XmizMapxLOWtihhF3R7prYu3", in_chans=1,
                            metrics={"Classic5 PSNR/SSIM": "33.74/0.8965"}, protocol=_CAR_PROTOCOL),
    "mambair_car.q40": _cfg("JPEG artefact reduction, quality 40", 1, "1XbuIsLuCtwV78cVMYLuWXm-hNQDsbn6M", in_chans=1,
                            metrics={"Classic5 PSNR/SSIM": "34.53/0.9084"}, protocol=_CAR_PROTOCOL),
    "mambairunet_realdn.official": _cfg("real-world denoising (SIDD)", 1, "1iMcapgaT7VPfR2UFYy21KbX3rUHFJCU8",
                                        metrics={"SIDD PSNR/SSIM": "39.89/0.960"}, multiple_of=8, min_size=8,
                                        protocol="SIDD validation (whole 256x256 crops), RGB PSNR/SSIM", preset=""),
    **{f"test_{name}.untrained": _cfg(f"CI-size {name} (random weights)", scale, notes="tiny; no weights")
       for name, scale in (("mambair_sr", 2), ("mambair_light", 4), ("mambair_dn", 1))},
    "test_mambairunet.untrained": _cfg("CI-size mambairunet (random weights)", 1, notes="tiny; no weights",
                                       multiple_of=8, min_size=8),
}))


# ---- registered entry points -----------------------------------------------------------------------------------
_CLASSIC = {"embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "mlp_ratio": 2.0, "upsampler": "pixelshuffle"}
_LIGHT = {"embed_dim": 60, "depths": (6,) * 4, "upsampler": "pixelshuffledirect"}
_LIGHT_ERAS = {"": ("light_oct2024", 10, 1.2), "_mar2024": ("light_mar2024", 16, 1.5),
               "_feb2024": ("light_feb2024", 16, 1.2)}
_RESTORE = {"embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "mlp_ratio": 1.2, "upsampler": "", "upscale": 1}


def _mambair(defaults: dict[str, Any], kwargs: dict[str, Any]) -> MambaIR:
    return MambaIR(**{**defaults, **kwargs})


def _register(name: str, defaults: dict[str, Any], doc: str) -> None:
    def entrypoint(**kwargs: Any) -> MambaIR:
        return _mambair(defaults, kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = doc
    register_model(entrypoint)


for _scale in (2, 3, 4):
    _register(f"mambair_sr_x{_scale}", {**_CLASSIC, "upscale": _scale},
              f"MambaIR classic SR x{_scale}: embed 180, 6 x 6 blocks, pixelshuffle head.")
    for _era, (_cab, _d_state, _ratio) in _LIGHT_ERAS.items():
        _register(f"mambair_light{_era}_x{_scale}",
                  {**_LIGHT, "upscale": _scale, "cab_variant": _cab, "d_state": _d_state, "mlp_ratio": _ratio},
                  f"MambaIR lightweight SR x{_scale} ({_cab} CAB): embed 60, 4 x 6 blocks, pixelshuffledirect.")


@register_model
def mambair_realsr_x4(**kwargs: Any) -> MambaIR:
    """MambaIR real-world SR x4 (the classic x4 architecture)."""
    return _mambair({**_CLASSIC, "upscale": 4}, kwargs)


@register_model
def mambair_dn_color(**kwargs: Any) -> MambaIR:
    """MambaIR colour Gaussian denoising (tags sigma15/25/50)."""
    return _mambair(_RESTORE, kwargs)


@register_model
def mambair_car(**kwargs: Any) -> MambaIR:
    """MambaIR grey JPEG compression-artefact reduction (tags q10/30/40)."""
    return _mambair({**_RESTORE, "in_chans": 1}, kwargs)


@register_model
def mambairunet_realdn(**kwargs: Any) -> MambaIRUNet:
    """MambaIRUNet real-world denoising: dim 48, blocks [4, 6, 6, 8], 4 refinement blocks, mlp_ratio 1.5."""
    return MambaIRUNet(**{"dim": 48, "num_blocks": (4, 6, 6, 8), "num_refinement_blocks": 4, "mlp_ratio": 1.5,
                          **kwargs})


_TINY = {"embed_dim": 32, "depths": (2, 2), "d_state": 4}
_register("test_mambair_sr", {**_TINY, "mlp_ratio": 2.0, "upscale": 2, "upsampler": "pixelshuffle"},
          "CI-size MambaIR classic SR x2 (embed 32, 2 x 2 blocks).")
_register("test_mambair_light", {**_TINY, "mlp_ratio": 1.2, "upscale": 4, "upsampler": "pixelshuffledirect"},
          "CI-size MambaIR light SR x4 (Oct-2024 CAB).")
_register("test_mambair_dn", {**_TINY, "mlp_ratio": 1.2, "upscale": 1, "upsampler": ""}, "CI-size MambaIR denoiser.")


@register_model
def test_mambairunet(**kwargs: Any) -> MambaIRUNet:
    """CI-size MambaIRUNet (dim 30, one block per level)."""
    return MambaIRUNet(**{"dim": 30, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, **kwargs})
