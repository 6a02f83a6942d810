"""MambaIR (ECCV 2024) and MambaIRUNet: image super-resolution, denoising, JPEG artefact reduction.

Facts from csguoh/MambaIR (Apache-2.0)
``basicsr/archs/mambair_arch.py`` at 33d7b34 (light CAB variants at 06dc6cd / 3ad5892) and
``realDenoising/basicsr/models/archs/mambairunet_arch.py``. Parameter names follow the official ones, so official
checkpoints load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks._weights import gdrive_url
from ssmblocks.blocks import CAB_VARIANTS, BlockSequence, ResidualGroup
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.scan_orders import ScanOrder, Schedule
from ssmblocks.zoo._common import count_indices, init_linear_and_norm, variant_named, width_ratio
from ssmblocks.zoo._image import SwinIRSkeleton
from ssmblocks.zoo._unet import RestormerUNet

__all__ = ["MambaIR", "MambaIRUNet"]


def _order_options(scan_order: ScanOrder | Schedule | None) -> dict[str, Any]:
    """Block-group options for a model's ``scan_order``: one order for every block, or a schedule over blocks."""
    if scan_order is None:
        return {}
    return {"schedule": scan_order} if isinstance(scan_order, Schedule) else {"scan_order": scan_order}


# ---- the models ------------------------------------------------------------------------------------------------
@records_hparams
class MambaIR(SwinIRSkeleton):
    """MambaIR for SR, denoising and JPEG CAR. Input (B, in_chans, H, W) in [0, 1]; output (B, in_chans, sH, sW).

    The SwinIR skeleton (``SwinIRSkeleton``) with residual groups of VSSBlocks (SS2D + CAB). ``create_model``
    returns it in train mode, ``load_checkpoint`` in eval mode.

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
        cab_variant = cab_variant or ("light_oct2024" if upsampler == "pixelshuffledirect" else "classic")
        if cab_variant not in CAB_VARIANTS:
            raise ValueError(f"cab_variant must be one of {CAB_VARIANTS}, got {cab_variant!r}")
        self.cab_variant = cab_variant
        self.build_stem(in_chans=in_chans, embed_dim=embed_dim, img_range=img_range)
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, depth, d_state=d_state, expand=mlp_ratio, cab_variant=cab_variant,
                          **_order_options(scan_order))
            for depth in depths
        )
        self.build_head(upscale=upscale, upsampler=upsampler, num_feat=num_feat)
        self.apply(init_linear_and_norm)


@records_hparams
class MambaIRUNet(RestormerUNet):
    """MambaIRUNet (real-world denoising): a 4-level U-Net of VSSBlocks (``RestormerUNet``).
    (B, 3, H, W) -> (B, 3, H, W), in [0, 1].

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

        def level(name: str, width: int, count: int) -> BlockSequence:
            return BlockSequence(width, count, d_state=d_state, expand=mlp_ratio, **_order_options(scan_order))

        self.build_unet(in_chans=inp_channels, out_chans=out_channels, dim=dim, num_blocks=num_blocks,
                        num_refinement_blocks=num_refinement_blocks, level=level, bias=bias)
        self.apply(init_linear_and_norm)


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


def _cab_variant(cab0: tuple[int, ...], embed_dim: int) -> str:
    """The CAB generation, from the shape of the first CAB conv."""
    if cab0 == (embed_dim, 1, 3, 3):
        return "light_feb2024"
    if cab0[2:] == (1, 1):
        return "light_oct2024"
    if cab0[0] == embed_dim // 6 and cab0[0] != embed_dim // 3:
        return "light_mar2024"
    return "classic"


@register_detector("MambaIR", claims=_claims_mambair)
def detect_mambair(state: Mapping[str, Tensor]) -> Detection:
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = [count_indices(state, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.ln_1\.weight")
              for i in range(count_indices(state, r"layers\.(\d+)\.conv\.weight"))]
    d_state, mlp_ratio = _ssm_shapes(state, _BLOCK0, embed_dim)
    cab = _cab_variant(tuple(state[f"{_BLOCK0}conv_blk.cab.0.weight"].shape), embed_dim)
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
    naming = {"pixelshuffle": ("upscale",), "pixelshuffledirect": ("upscale", "cab_variant"), "": ("in_chans",)}
    arch = variant_named(_VARIANTS, args, ("upsampler", *naming[upsampler]), "mambair_sr_x2")
    task = {"pixelshuffle": f"classic SR x{upscale} (or real-SR x4: same architecture)",
            "pixelshuffledirect": f"lightweight SR x{upscale}, {cab} CAB",
            "": "colour denoising" if in_chans == 3 else "JPEG CAR"}[upsampler]
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


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_CLASSIC = {"embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "mlp_ratio": 2.0, "upsampler": "pixelshuffle",
            "cab_variant": "classic"}
_LIGHT = {"embed_dim": 60, "depths": (6,) * 4, "upsampler": "pixelshuffledirect"}
_OCT, _MAR, _FEB = ({"cab_variant": "light_oct2024", "d_state": 10, "mlp_ratio": 1.2},
                    {"cab_variant": "light_mar2024", "d_state": 16, "mlp_ratio": 1.5},
                    {"cab_variant": "light_feb2024", "d_state": 16, "mlp_ratio": 1.2})
_RESTORE = {"embed_dim": 180, "depths": (6,) * 6, "d_state": 16, "mlp_ratio": 1.2, "upsampler": "", "upscale": 1,
            "in_chans": 3, "cab_variant": "classic"}
_TINY = {"embed_dim": 32, "depths": (2, 2), "d_state": 4}
_VARIANTS: dict[str, dict[str, Any]] = {
    "mambair_sr_x2": {**_CLASSIC, "upscale": 2},
    "mambair_sr_x3": {**_CLASSIC, "upscale": 3},
    "mambair_sr_x4": {**_CLASSIC, "upscale": 4},
    "mambair_realsr_x4": {**_CLASSIC, "upscale": 4},
    "mambair_light_x2": {**_LIGHT, **_OCT, "upscale": 2},
    "mambair_light_x3": {**_LIGHT, **_OCT, "upscale": 3},
    "mambair_light_x4": {**_LIGHT, **_OCT, "upscale": 4},
    "mambair_light_mar2024_x2": {**_LIGHT, **_MAR, "upscale": 2},
    "mambair_light_mar2024_x3": {**_LIGHT, **_MAR, "upscale": 3},
    "mambair_light_mar2024_x4": {**_LIGHT, **_MAR, "upscale": 4},
    "mambair_light_feb2024_x2": {**_LIGHT, **_FEB, "upscale": 2},
    "mambair_light_feb2024_x3": {**_LIGHT, **_FEB, "upscale": 3},
    "mambair_light_feb2024_x4": {**_LIGHT, **_FEB, "upscale": 4},
    "mambair_dn_color": _RESTORE,
    "mambair_car": {**_RESTORE, "in_chans": 1},
    "test_mambair_sr": {**_TINY, "mlp_ratio": 2.0, "upscale": 2, "upsampler": "pixelshuffle"},
    "test_mambair_light": {**_TINY, "mlp_ratio": 1.2, "upscale": 4, "upsampler": "pixelshuffledirect"},
    "test_mambair_dn": {**_TINY, "mlp_ratio": 1.2, "upscale": 1, "upsampler": ""},
}
_UNET_VARIANTS: dict[str, dict[str, Any]] = {
    "mambairunet_realdn": {"dim": 48, "num_blocks": (4, 6, 6, 8), "num_refinement_blocks": 4, "mlp_ratio": 1.5},
    "test_mambairunet": {"dim": 30, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = "MambaIR: A Simple Baseline for Image Restoration with State-Space Model (ECCV 2024), arXiv:2402.15648"
_cfg = partial(PretrainedCfg, license="Apache-2.0", paper=_PAPER, origin_url="https://github.com/csguoh/MambaIR")
_SR_PROTOCOL = ("MambaIRModel.test tiling: n = h//200+1 splits per axis, reflect-pad to a multiple of n, tiles of "
                "H//n with overlap tile//10, centres pasted; PSNR/SSIM on Y (BT.601), crop_border = scale")
_DN_PROTOCOL = "RGB PSNR, border 0; noise N(0, sigma/255) with np.random.seed(0) per image; MambaIR tiling as SR"
_CAR_PROTOCOL = "grey PSNR/SSIM, border 0; MambaIR tiling as SR"
_HUB_REPO = "cguoh/MambaIR"


def _drive(task: str, drive_id: str, *, test_protocol: str = _SR_PROTOCOL, protocol: str = "mambair",
           **fields: Any) -> PretrainedCfg:
    """A release on the authors' Google Drive (through gdown when installed; else the error explains), evaluated
    with ``test_protocol`` (words) and restored with the ``protocol`` preset of ``restore()`` (the official tiling)."""
    return _cfg(task=task, gdrive_id=drive_id, test_protocol=test_protocol, protocol=protocol, **fields)


def _hub(task: str, filename: str, drive_id: str, *, test_protocol: str = _SR_PROTOCOL,
         **fields: Any) -> PretrainedCfg:
    """A release whose file is confirmed on the authors' Hub repo (folder MambaIRv1_ckpt/), Drive named as the
    fallback a person can download from."""
    return _cfg(task=task, hf_hub_id=_HUB_REPO, hf_hub_filename=filename, fallback_url=gdrive_url(drive_id),
                test_protocol=test_protocol, protocol="mambair", **fields)


def _untrained(task: str) -> PretrainedCfg:
    return _cfg(task=task, notes="tiny; no weights")


register_cfgs({
    "mambair_sr_x2.official": _drive("classic SR", "11Kiy_0hmMyDjMvW7MmbUT6tO9n5JrDeB",
                                     metrics={"Urban100 PSNR/SSIM": "34.15/0.9446"}),
    "mambair_sr_x3.official": _drive("classic SR", "1u0VcESEduHu-GBCC6vDGQt9qXSX2AKdn",
                                     metrics={"Urban100 PSNR/SSIM": "29.93/0.8841"}),
    "mambair_sr_x4.official": _hub("classic SR", "MambaIRv1_ckpt/MambaIR_classicSRx4.pth",
                                   "1YXggWIsi-auCjmPQDvW9FjB1f9fZK0hN", metrics={"Urban100 PSNR/SSIM": "27.68/0.8287"}),
    "mambair_realsr_x4.official": _drive("real-world SR", "16BBSRz1HellkTgypu4wu3CHA20CLgpSY",
                                         test_protocol="no published metric; visual results"),
    "mambair_light_x2.official": _drive("lightweight SR (Oct-2024 CAB)", "1eWovtH7YvEn2Bm9wBK5REOhbIgapsLxM",
                                        metrics={"Urban100 PSNR/SSIM": "32.92/0.9356"}),
    "mambair_light_x3.official": _drive("lightweight SR (Oct-2024 CAB)", "1JoC3fwah5Xo0Z1s8DnmXQlsctKQjs1Hx",
                                        metrics={"Urban100 PSNR/SSIM": "29.00/0.8689"}),
    "mambair_light_x4.official": _drive("lightweight SR (Oct-2024 CAB)", "1jIz579k_16569HFVF-76KgqAbJaJoDgF",
                                        metrics={"Urban100 PSNR/SSIM": "26.75/0.8051"}),
    **{f"mambair_light_{era}_x{s}.official": _drive(
        f"lightweight SR ({era} CAB, an older release)", drive_id,
        notes=f"older release; Drive ids in the order the MambaIR README listed them ({era})")
       for era, ids in (("mar2024", ("1kMCxoD-WEWaLcADJ7ZKV5B7jPpiYBkC2", "1emoHPdBca99_7yx09kuTOCXU3nMOnBY-",
                                     "1Qv_jTuP2P5tTaGQ8SgQuB7W9Cl-YPqH5")),
                        ("feb2024", ("1mI3vVcv1inEZ8XmDudk4G8HYcPMUO0cg", "1tphJw5diWpvX95ZLFCHNTP8QfKtb3uHx",
                                     "1MHJ2ZP7P6Rfb29hDAwZj9SZqIUCLffFU")))
       for s, drive_id in zip((2, 3, 4), ids, strict=True)},
    "mambair_dn_color.sigma15": _drive("colour Gaussian denoising, sigma 15", "1w5Y502iKSkqhP-OpleppPmk6PAnvWPdr",
                                       metrics={"Urban100 PSNR": 35.17}, test_protocol=_DN_PROTOCOL),
    "mambair_dn_color.sigma25": _hub("colour Gaussian denoising, sigma 25",
                                     "MambaIRv1_ckpt/ColorDN_MambaIR_level25.pth", "1qSPy6B7Jvi7PDHM1fl8Q88kn7ckwtusK",
                                     metrics={"Urban100 PSNR": 32.99}, test_protocol=_DN_PROTOCOL),
    "mambair_dn_color.sigma50": _drive("colour Gaussian denoising, sigma 50", "1O2o9xPruX8MtUL4qmuxV4Vfsef8L_jLM",
                                       metrics={"Urban100 PSNR": 30.07}, test_protocol=_DN_PROTOCOL),
    "mambair_car.q10": _drive("JPEG artefact reduction, quality 10", "1kncutEIAq9MvD8w6If6VZD7hkRkRcXWr",
                              metrics={"Classic5 PSNR/SSIM": "30.27/0.8256"}, test_protocol=_CAR_PROTOCOL),
    "mambair_car.q30": _drive("JPEG artefact reduction, quality 30", "1hIIJQR59XmizMapxLOWtihhF3R7prYu3",
                              metrics={"Classic5 PSNR/SSIM": "33.74/0.8965"}, test_protocol=_CAR_PROTOCOL),
    "mambair_car.q40": _drive("JPEG artefact reduction, quality 40", "1XbuIsLuCtwV78cVMYLuWXm-hNQDsbn6M",
                              metrics={"Classic5 PSNR/SSIM": "34.53/0.9084"}, test_protocol=_CAR_PROTOCOL),
    "mambairunet_realdn.official": _drive("real-world denoising (SIDD)", "1iMcapgaT7VPfR2UFYy21KbX3rUHFJCU8",
                                          metrics={"SIDD PSNR/SSIM": "39.89/0.960"}, protocol="",
                                          test_protocol="SIDD validation (whole 256x256 crops), RGB PSNR/SSIM"),
    "test_mambair_sr.untrained": _untrained("CI-size mambair_sr (random weights)"),
    "test_mambair_light.untrained": _untrained("CI-size mambair_light (random weights)"),
    "test_mambair_dn.untrained": _untrained("CI-size mambair_dn (random weights)"),
    "test_mambairunet.untrained": _untrained("CI-size mambairunet (random weights)"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> MambaIR:
    return MambaIR(**{**_VARIANTS[name], **kwargs})


def _create_unet(name: str, kwargs: dict[str, Any]) -> MambaIRUNet:
    return MambaIRUNet(**{**_UNET_VARIANTS[name], **kwargs})


@register_model
def mambair_sr_x2(**kwargs: Any) -> MambaIR:
    """MambaIR classic SR x2: embed 180, 6 x 6 blocks, pixelshuffle head."""
    return _create("mambair_sr_x2", kwargs)


@register_model
def mambair_sr_x3(**kwargs: Any) -> MambaIR:
    """MambaIR classic SR x3: embed 180, 6 x 6 blocks, pixelshuffle head."""
    return _create("mambair_sr_x3", kwargs)


@register_model
def mambair_sr_x4(**kwargs: Any) -> MambaIR:
    """MambaIR classic SR x4: embed 180, 6 x 6 blocks, pixelshuffle head."""
    return _create("mambair_sr_x4", kwargs)


@register_model
def mambair_realsr_x4(**kwargs: Any) -> MambaIR:
    """MambaIR real-world SR x4 (the classic x4 architecture)."""
    return _create("mambair_realsr_x4", kwargs)


@register_model
def mambair_light_x2(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x2 (Oct-2024 CAB): embed 60, 4 x 6 blocks, pixelshuffledirect."""
    return _create("mambair_light_x2", kwargs)


@register_model
def mambair_light_x3(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x3 (Oct-2024 CAB): embed 60, 4 x 6 blocks, pixelshuffledirect."""
    return _create("mambair_light_x3", kwargs)


@register_model
def mambair_light_x4(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x4 (Oct-2024 CAB): embed 60, 4 x 6 blocks, pixelshuffledirect."""
    return _create("mambair_light_x4", kwargs)


@register_model
def mambair_light_mar2024_x2(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x2, the March-2024 release (its CAB and d_state 16, mlp_ratio 1.5)."""
    return _create("mambair_light_mar2024_x2", kwargs)


@register_model
def mambair_light_mar2024_x3(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x3, the March-2024 release (its CAB and d_state 16, mlp_ratio 1.5)."""
    return _create("mambair_light_mar2024_x3", kwargs)


@register_model
def mambair_light_mar2024_x4(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x4, the March-2024 release (its CAB and d_state 16, mlp_ratio 1.5)."""
    return _create("mambair_light_mar2024_x4", kwargs)


@register_model
def mambair_light_feb2024_x2(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x2, the February-2024 release (depthwise CAB, d_state 16)."""
    return _create("mambair_light_feb2024_x2", kwargs)


@register_model
def mambair_light_feb2024_x3(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x3, the February-2024 release (depthwise CAB, d_state 16)."""
    return _create("mambair_light_feb2024_x3", kwargs)


@register_model
def mambair_light_feb2024_x4(**kwargs: Any) -> MambaIR:
    """MambaIR lightweight SR x4, the February-2024 release (depthwise CAB, d_state 16)."""
    return _create("mambair_light_feb2024_x4", kwargs)


@register_model
def mambair_dn_color(**kwargs: Any) -> MambaIR:
    """MambaIR colour Gaussian denoising (tags sigma15/25/50)."""
    return _create("mambair_dn_color", kwargs)


@register_model
def mambair_car(**kwargs: Any) -> MambaIR:
    """MambaIR grey JPEG compression-artefact reduction (tags q10/30/40)."""
    return _create("mambair_car", kwargs)


@register_model
def mambairunet_realdn(**kwargs: Any) -> MambaIRUNet:
    """MambaIRUNet real-world denoising: dim 48, blocks [4, 6, 6, 8], 4 refinement blocks, mlp_ratio 1.5."""
    return _create_unet("mambairunet_realdn", kwargs)


@register_model
def test_mambair_sr(**kwargs: Any) -> MambaIR:
    """CI-size MambaIR classic SR x2 (embed 32, 2 x 2 blocks)."""
    return _create("test_mambair_sr", kwargs)


@register_model
def test_mambair_light(**kwargs: Any) -> MambaIR:
    """CI-size MambaIR light SR x4 (Oct-2024 CAB)."""
    return _create("test_mambair_light", kwargs)


@register_model
def test_mambair_dn(**kwargs: Any) -> MambaIR:
    """CI-size MambaIR denoiser."""
    return _create("test_mambair_dn", kwargs)


@register_model
def test_mambairunet(**kwargs: Any) -> MambaIRUNet:
    """CI-size MambaIRUNet (dim 30, one block per level)."""
    return _create_unet("test_mambairunet", kwargs)
