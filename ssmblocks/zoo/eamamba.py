"""EAMamba (ICCV 2025): the all-in-one restoration U-Net ``EAMamba`` and the light SR model ``EAMambaSR``, built on
the multi-head multi-scan mixer (``ssmblocks.blocks.MHSSM``: eight channel groups, each read in its own order, one
selective scan).

Facts from daidaijr/EAMamba at ec13c77 (no licence file: facts only, no code), ``models/eamamba.py``,
``models/module/{mamba,scan}.py``, ``models/models.py``, ``configs/*.yaml``, ``test.py``. Parameter names follow the
official ones, so official checkpoints load without renaming.

- ``EAMamba``: the Restormer-style 4-level U-Net (``RestormerUNet``) of ``EAMambaBlock`` levels; raw [0, 1] RGB,
  output = ``output`` conv + input. The official model needs H, W multiples of 8 and does not pad; its test
  datasets reflect-pad the input bottom/right to a multiple of 8 and crop the prediction back: this model does that
  itself (identical output on sizes that already are multiples of 8).
- ``EAMambaSR``: SwinIR-style light SR (``SwinIRSkeleton``): conv_first (no bias), 4 residual groups
  (``layers.{i}.blocks.{j}`` + ``layers.{i}.conv`` with bias), the channel LayerNorm ``norm``, conv_after_body
  (no bias) + the first features, the pixel-shuffle head; no mean shift, any H, W.

Official quirk kept as the named option ``upscale`` of the U-Net (quirk 1 of the reference): the official
constructor's default ``upscale=2`` (none of the released yamls sets it) adds ``upsample.0`` = Conv2d(3, 12, 3) +
PixelShuffle(2) that its forward cannot run (it feeds it the 128-channel decoder output; upstream issue #4); only
``upscale=1`` works. Here ``upscale=1`` (the default) is that working model; ``upscale >= 2`` builds the same model
plus the dead ``upsample.0`` conv, unused, so that a file carrying those two tensors loads strictly (the forward is
the working one either way).

Checkpoints: the official files describe themselves, ``{'model': {'name', 'args', 'sd', 'sd_e'}, ...}``
(``train.py``); ``load_checkpoint`` builds the model from ``args`` (the yaml's ``model.args``) and loads ``sd_e``,
the EMA weights ``test.py`` runs, or ``sd`` with ``weights="sd"`` (what ``task_evaluation/gen_sidd_mat.py`` runs).
A bare state dict is detected from its keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ssmblocks._formats import DescribedCheckpoint, register_checkpoint_format
from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import BlockSequence, EAMambaBlock, ResidualGroup
from ssmblocks.blocks._keys import keyed
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.scan_orders import MultiHead
from ssmblocks.zoo._common import count_indices, variant_named
from ssmblocks.zoo._image import SwinIRSkeleton
from ssmblocks.zoo._unet import RestormerUNet

__all__ = ["EAMamba", "EAMambaSR"]


def _block_options(d_state: int, d_conv: int, expand: float, ffn_expansion_factor: float, bias: bool,
                   scan_order: MultiHead | None) -> dict[str, Any]:
    return {"block": EAMambaBlock, "d_state": d_state, "d_conv": d_conv, "expand": expand,
            "ffn_expansion_factor": ffn_expansion_factor, "bias": bias, "scan_order": scan_order}


# ---- the models ------------------------------------------------------------------------------------------------
@records_hparams
class EAMamba(RestormerUNet):
    """EAMamba restoration U-Net: (B, 3, H, W) in [0, 1] -> (B, 3, H, W). Any H, W >= 8 (reflect-padded
    bottom/right to multiples of 8 inside, cropped back).

    Args:
        inp_channels, out_channels: image channels (the released models: 3).
        dim: level-1 width (levels dim, 2 dim, 4 dim, 8 dim; decoder level 1 and refinement 2 dim).
        num_blocks, num_refinement_blocks: EAMamba blocks per level (encoder 1-3, latent; decoders mirror them).
        ffn_expansion_factor: the SimpleGate FFN's hidden width factor.
        bias: biases of the convs of the U-Net and the FFNs (False in every release).
        d_state, d_conv, expand: the MHSSM mixer's options (released: 16, 3, 1).
        upscale: 1, or the official default 2 whose dead ``upsample.0`` conv is kept unused (module docstring).
        scan_order: the mixers' ``MultiHead`` order (default: the official eight heads, ``eamamba_scan()``).
    """

    family = "EAMamba"
    default_architecture = "eamamba_denoise"

    def __init__(self, *, inp_channels: int = 3, out_channels: int = 3, dim: int = 64,
                 num_blocks: Sequence[int] = (4, 6, 6, 7), num_refinement_blocks: int = 2,
                 ffn_expansion_factor: float = 2.0, bias: bool = False, d_state: int = 16, d_conv: int = 3,
                 expand: float = 1.0, upscale: int = 1, scan_order: MultiHead | None = None) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        options = _block_options(d_state, d_conv, expand, ffn_expansion_factor, bias, scan_order)

        def level(name: str, width: int, count: int) -> BlockSequence:
            return BlockSequence(width, count, **options)

        self.build_unet(in_chans=inp_channels, out_chans=out_channels, dim=dim, num_blocks=num_blocks,
                        num_refinement_blocks=num_refinement_blocks, level=level, bias=bias)
        self.upscale = upscale
        if upscale > 1:     # the official dead branch (quirk 1): held for strict loading, never run
            self.upsample = nn.Sequential(nn.Conv2d(out_channels, out_channels * upscale**2, 3, padding=1),
                                          nn.PixelShuffle(upscale))


@records_hparams
class EAMambaSR(SwinIRSkeleton):
    """EAMamba light SR: (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW). Any H, W >= 1.

    Args:
        upscale: scale s (2^n or 3).
        inp_channels, out_channels: image channels.
        dim: width of every block.
        num_blocks: EAMamba blocks per residual group.
        ffn_expansion_factor: the SimpleGate FFN's hidden width factor (released: 1).
        bias: biases of conv_first, conv_after_body, conv_last and the FFNs (False in every release).
        d_state, d_conv, expand: the MHSSM mixer's options (released: 10, 3, 1).
        scan_order: the mixers' ``MultiHead`` order (default: the official eight heads).
    """

    family = "EAMambaSR"
    default_architecture = "eamamba_light_x4"

    def __init__(self, *, upscale: int = 2, inp_channels: int = 3, out_channels: int = 3, dim: int = 64,
                 num_blocks: Sequence[int] = (4, 4, 4, 4), ffn_expansion_factor: float = 2.0, bias: bool = False,
                 d_state: int = 16, d_conv: int = 3, expand: float = 1.0,
                 scan_order: MultiHead | None = None) -> None:
        super().__init__()
        self.build_stem(in_chans=inp_channels, embed_dim=dim, mean=(0.0,) * inp_channels, patch_norm=False,
                        bias=bias)
        options = _block_options(d_state, d_conv, expand, ffn_expansion_factor, bias, scan_order)
        self.layers = nn.ModuleList(ResidualGroup(dim, depth, blocks_key="blocks", **options) for depth in num_blocks)
        self.build_head(upscale=upscale, upsampler="pixelshuffle", out_chans=out_channels, num_feat=dim,
                        norm=keyed("body", nn.LayerNorm(dim)), bias=bias)

    def body_norm(self, x: Tensor) -> Tensor:
        """The official channel LayerNorm ``norm.body`` over the channels of a (B, C, H, W) map."""
        return self.norm["body"](x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# ---- detection of official checkpoints (bare state dicts) --------------------------------------------------------
def _mixer_args(state: Mapping[str, Tensor], prefix: str) -> dict[str, Any]:
    heads, _, head_dim = state[f"{prefix}mamba.x_proj_weight"].shape
    d_inner, d_state = state[f"{prefix}mamba.A_logs"].shape
    width = state[f"{prefix}mamba.out_proj.weight"].shape[0]
    hidden = state[f"{prefix}ffn.project_in.weight"].shape[0]
    if heads != 8 or heads * head_dim != d_inner:
        raise ValueError(f"{prefix}mamba holds {heads} heads of {head_dim} channels for {d_inner}: only the official "
                         f"eight heads are detected")
    return {"d_state": d_state, "d_conv": state[f"{prefix}mamba.conv.weight"].shape[-1], "expand": d_inner / width,
            "ffn_expansion_factor": hidden / width, "bias": f"{prefix}ffn.project_in.bias" in state}


def _claims_eamamba(state: Mapping[str, Tensor]) -> bool:
    """EAMamba U-Net blocks hold ``mamba.x_proj_weight`` and a SimpleGate ``ffn.project_in`` (MambaIRUNet's:
    ``self_attention``)."""
    return "encoder_level1.0.mamba.x_proj_weight" in state and "encoder_level1.0.ffn.project_in.weight" in state


def _claims_eamambasr(state: Mapping[str, Tensor]) -> bool:
    return "layers.0.blocks.0.mamba.x_proj_weight" in state and "conv_first.weight" in state


@register_detector("EAMamba", claims=_claims_eamamba)
def detect_eamamba(state: Mapping[str, Tensor]) -> Detection:
    dim, inp_channels = state["patch_embed.proj.weight"].shape[:2]
    counts = [count_indices(state, rf"{name}\.(\d+)\.norm1\.body\.weight")
              for name in ("encoder_level1", "encoder_level2", "encoder_level3", "latent")]
    out_channels = state["output.weight"].shape[0]
    upscale = math.isqrt(state["upsample.0.weight"].shape[0] // out_channels) if "upsample.0.weight" in state else 1
    args = {"inp_channels": inp_channels, "out_channels": out_channels, "dim": dim, "num_blocks": counts,
            "num_refinement_blocks": count_indices(state, r"refinement\.(\d+)\.norm1\.body\.weight"),
            **_mixer_args(state, "encoder_level1.0."), "upscale": upscale}
    args["bias"] = "output.bias" in state
    arch = variant_named(_VARIANTS, args, ("dim", "num_blocks", "num_refinement_blocks", "d_state"),
                         "eamamba_denoise")
    dead = ", with the official dead upsample.0 conv (kept unused)" if upscale > 1 else ""
    return Detection("EAMamba", arch, args, f"EAMamba U-Net; dim {dim}, num_blocks {counts}{dead}")


@register_detector("EAMambaSR", claims=_claims_eamambasr)
def detect_eamambasr(state: Mapping[str, Tensor]) -> Detection:
    dim, inp_channels = state["conv_first.weight"].shape[:2]
    counts = [count_indices(state, rf"layers\.{i}\.blocks\.(\d+)\.norm1\.body\.weight")
              for i in range(count_indices(state, r"layers\.(\d+)\.conv\.weight"))]
    convs = count_indices(state, r"upsample\.(\d+)\.weight")
    upscale = 3 if state["upsample.0.weight"].shape[0] == 9 * dim else 2**convs
    args = {"upscale": upscale, "inp_channels": inp_channels, "out_channels": state["conv_last.weight"].shape[0],
            "dim": dim, "num_blocks": counts, **_mixer_args(state, "layers.0.blocks.0.")}
    args["bias"] = "conv_first.bias" in state
    arch = variant_named(_VARIANTS, args, ("upscale", "dim", "num_blocks", "d_state"), f"eamamba_light_x{upscale}")
    return Detection("EAMambaSR", arch, args, f"EAMamba light SR x{upscale}; dim {dim}, num_blocks {counts}")


# ---- the official self-describing checkpoint ---------------------------------------------------------------------
_OFFICIAL_NAMES = {"eamamba": "EAMamba", "eamambasr": "EAMambaSR"}
# the released setting of every option the ports do not implement (the yaml value, or the official default)
_FIXED = {"channel_mixer_type": ("simple", "Simple"), "dual_pixel_task": (False, False)}
_FIXED_MAMBA = {"scan_type": ("diagonal", None), "scan_count": (8, None), "scan_merge_method": ("concate", None),
                "disable_z_branch": (False, False), "conv_2d": (True, False)}


def _official_args(name: str, args: Mapping[str, Any], state: Mapping[str, Tensor]) -> dict[str, Any]:
    """The constructor arguments of the official ``args`` (yaml ``model.args``; the official defaults where absent,
    unknown keys ignored as the official ``**kwargs`` does). Unported options raise."""
    for key, (value, default) in _FIXED.items():
        got = args.get(key, default)
        if (got.lower() if isinstance(got, str) else got) != value:
            raise ValueError(f"{key}={got!r} is not supported (the released models use {value!r})")
    mamba = args.get("mamba_cfg") or {}
    for key, (value, default) in _FIXED_MAMBA.items():
        got = mamba.get(key, default)
        if (got.lower() if isinstance(got, str) else got) != value:
            raise ValueError(f"mamba_cfg {key}={got!r} is not supported (the released models use {value!r})")
    if args.get("layernorm_type", "WithBias") != "WithBias":
        raise ValueError(f"layernorm_type={args['layernorm_type']!r} is not supported (released: 'WithBias')")
    common = {"inp_channels": int(args.get("inp_channels", 3)), "out_channels": int(args.get("out_channels", 3)),
              "dim": int(args.get("dim", 64)), "ffn_expansion_factor": float(args.get("ffn_expansion_factor", 2.0)),
              "bias": bool(args.get("bias", False)), "d_state": int(mamba.get("d_state", 16)),
              "d_conv": int(mamba.get("d_conv", 4)), "expand": float(mamba.get("expand", 2))}
    if name == "eamambasr":
        return {"upscale": int(args.get("upscale", 2)), **common,
                "num_blocks": [int(n) for n in args.get("num_blocks", (4, 4, 4, 4))]}
    # the U-Net: upscale 1 (the working model) unless the weights carry the dead upsample.0 conv (quirk 1)
    upscale = (math.isqrt(state["upsample.0.weight"].shape[0] // common["out_channels"])
               if "upsample.0.weight" in state else 1)
    return {**common, "num_blocks": [int(n) for n in args.get("num_blocks", (4, 6, 6, 7))],
            "num_refinement_blocks": int(args.get("num_refinement_blocks", 2)), "upscale": upscale}


def _model_spec(raw: object) -> Mapping[str, Any] | None:
    """The ``{'name', 'args', 'sd', 'sd_e'}`` entry of an official file (or that entry itself, as tools that unwrap
    a top-level 'model' key, such as spandrel, pass it on); None for anything else."""
    if not isinstance(raw, Mapping):
        return None
    spec = raw.get("model") if isinstance(raw.get("model"), Mapping) else raw
    is_spec = spec.get("name") in _OFFICIAL_NAMES and "args" in spec and "sd" in spec
    return spec if is_spec else None


def _is_official_file(raw: object) -> bool:
    return _model_spec(raw) is not None


@register_checkpoint_format("EAMamba", matches=_is_official_file, weights=("sd_e", "sd"))
def describe_eamamba_file(raw: Mapping[str, Any], weights: str) -> DescribedCheckpoint:
    """``{'model': {'name', 'args', 'sd', 'sd_e'}}``: 'sd_e' the EMA weights (test.py), 'sd' the trained ones."""
    spec = _model_spec(raw)
    if not isinstance(spec.get(weights), Mapping):
        raise ValueError(f"the file has no {weights!r} weights (its model entry holds {sorted(spec)})")
    if not isinstance(spec["args"], Mapping):
        raise ValueError(f"model.args must be the constructor's arguments, got {type(spec['args']).__name__}")
    state = spec[weights]
    args = _official_args(spec["name"], spec["args"], state)
    if spec["name"] == "eamambasr":
        arch = variant_named(_VARIANTS, args, ("upscale", "dim", "num_blocks", "d_state"),
                             f"eamamba_light_x{args['upscale']}")
    else:
        arch = variant_named(_VARIANTS, args, ("dim", "num_blocks", "num_refinement_blocks", "d_state"),
                             "eamamba_denoise")
    variant = (f"official {spec['name']} checkpoint ({weights} weights, iteration {raw.get('current_iter', '?')}); "
               f"dim {args['dim']}, num_blocks {args['num_blocks']}")
    return DescribedCheckpoint(arch, args, state, variant, family=_OFFICIAL_NAMES[spec["name"]])


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_MIXER = {"d_conv": 3, "expand": 1.0, "bias": False}
_UNET = {"dim": 64, "num_blocks": (4, 6, 6, 7), "num_refinement_blocks": 2, "ffn_expansion_factor": 2.0,
         "d_state": 16, **_MIXER}
_LIGHT = {"dim": 64, "num_blocks": (4, 4, 4, 4), "ffn_expansion_factor": 1.0, "d_state": 10, **_MIXER}
_TASKS = ("denoise", "sidd", "gopro", "dpdd", "dehaze_its", "dehaze_ots", "derain", "realsr_x2", "realsr_x3",
          "realsr_x4")
_VARIANTS: dict[str, dict[str, Any]] = {
    **{f"eamamba_{task}": _UNET for task in _TASKS},
    "eamamba_light_x2": {**_LIGHT, "upscale": 2},
    "eamamba_light_x3": {**_LIGHT, "upscale": 3},
    "eamamba_light_x4": {**_LIGHT, "upscale": 4},
    "test_eamamba": {"dim": 16, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, "d_state": 4},
    "test_eamamba_light": {"dim": 16, "num_blocks": (1, 1), "ffn_expansion_factor": 1.0, "d_state": 4,
                           "upscale": 2},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = ("EAMamba: Efficient All-Around Vision State Space Model for Image Restoration (ICCV 2025), "
          "arXiv:2506.22246")
_DRIVE_FOLDER_ID = "1XGFUa6dvDn7D46Gpa5Q5NSBzOgjckw_v"     # the README's "Checkpoints" link
_cfg = partial(PretrainedCfg, license="unknown: the official repository has no licence file", paper=_PAPER,
               origin_url="https://github.com/daidaijr/EAMamba")
_PIPELINE = ("test.py: batch 1, the EMA weights (sd_e), eval mode, whole image, no self-ensemble; the input "
             "reflect-padded bottom/right to a multiple of 8 (the model does this itself), the prediction cropped "
             "back and clipped to [0, 1]; PSNR = 20 log10(1 / sqrt(MSE)) on the float prediction, crop_border 0")
_SSIM = "SSIM: 11x11 Gaussian (sigma 1.5) on 255-scaled images, 'valid', then a further 5-pixel crop of the map"
_FILE_NOTE = ("the authors' Drive folder holds the release; its file names could not be seen from here: the name "
              "given is a guess, check the folder (or load a downloaded file with ssmblocks.load_checkpoint)")


def _drive(task: str, filename: str, test_protocol: str, metrics: dict[str, Any], protocol: str = "",
           notes: str = "", weights_key: str | None = None) -> PretrainedCfg:
    """A release in the authors' Drive folder (a folder link only: gdown lists it and the file is picked by name)."""
    return _cfg(task=task, gdrive_folder_id=_DRIVE_FOLDER_ID, manual_filename=filename, test_protocol=test_protocol,
                protocol=protocol, metrics=metrics, notes=" ".join(filter(None, (notes, _FILE_NOTE))),
                weights_key=weights_key)


def _untrained(task: str) -> PretrainedCfg:
    return _cfg(task=task, notes="no released weights")


register_cfgs({
    "eamamba_denoise.official": _drive(
        "Gaussian colour denoising, blind sigma in [0, 50]", "denoise-eamamba.pth",
        f"{_PIPELINE}. Noise: torch.manual_seed(2454) before every image, randn(padded shape) * sigma / 255 added "
        f"after padding, no clipping; RGB PSNR",
        {"Urban100 sigma 15/25/50 PSNR": "35.10/32.93/30.01", "CBSD68 sigma 15/25/50 PSNR": "34.43/31.81/28.62",
         "Kodak24 sigma 15/25/50 PSNR": "35.36/32.95/29.91", "McMaster sigma 15/25/50 PSNR": "35.59/33.34/30.31"}),
    "eamamba_sidd.official": _drive(
        "real image denoising (SIDD)", "sidd-eamamba.pth",
        f"{_PIPELINE}; RGB PSNR / SSIM ({_SSIM}). The repository also writes the SIDD .mat with the trained "
        f"weights 'sd' (task_evaluation/gen_sidd_mat.py) for the MATLAB evaluation; which path gave the number is "
        f"not stated (the 'sd' tag loads those weights)",
        {"SIDD PSNR/SSIM": "39.87/0.960"}),
    "eamamba_sidd.sd": _drive(
        "real image denoising (SIDD), the trained (non-EMA) weights 'sd' of the same file", "sidd-eamamba.pth",
        "task_evaluation/gen_sidd_mat.py: the trained weights 'sd' on the SIDD benchmark blocks, saved as .mat for "
        "the MATLAB evaluation", {}, notes="the same file as eamamba_sidd.official, its 'sd' weights",
        weights_key="sd"),
    "eamamba_gopro.official": _drive(
        "motion deblurring (GoPro; also tested on HIDE)", "gopro-eamamba.pth", f"{_PIPELINE}; RGB PSNR / SSIM",
        {"GoPro PSNR/SSIM": "33.58/0.966", "HIDE PSNR/SSIM": "31.42/0.944"}),
    "eamamba_dpdd.official": _drive(
        "single-image defocus deblurring (DPDD)", "dpdd-eamamba.pth", f"{_PIPELINE}; RGB PSNR / SSIM",
        {"DPDD indoor PSNR/SSIM": "28.90/0.887", "DPDD outdoor PSNR/SSIM": "23.23/0.785",
         "DPDD combined PSNR/SSIM": "25.99/0.821"}),
    "eamamba_dehaze_its.official": _drive(
        "dehazing (trained on RESIDE ITS, tested on SOTS indoor)", "dehazeITS-eamamba.pth",
        f"{_PIPELINE}; RGB PSNR / SSIM", {"SOTS indoor PSNR/SSIM": "43.19/0.995"}),
    "eamamba_dehaze_ots.official": _drive(
        "dehazing (trained on RESIDE OTS, tested on SOTS outdoor)", "dehazeOTS-eamamba.pth",
        f"{_PIPELINE}; RGB PSNR / SSIM", {"SOTS outdoor PSNR/SSIM": "36.34/0.988"}),
    "eamamba_derain.official": _drive(
        "deraining (Rain13K)", "derain-eamamba.pth", f"{_PIPELINE}; PSNR / SSIM on Y (BT.601)",
        {"note": "the README's deraining table is not recorded here"}),
    **{f"eamamba_realsr_x{s}.official": _drive(
        f"real-world SR x{s} (RealSR; HR-sized LR input, same-size restoration)", f"realsrx{s}-eamamba.pth",
        f"{_PIPELINE}, except the forward: test.py forward_patch, four overlapping corner tiles (preset "
        f"'eamamba_realsr'); PSNR / SSIM on Y (BT.601)", {"RealSR PSNR/SSIM": metric},
        protocol="eamamba_realsr")
       for s, metric in ((2, "34.18/0.927"), (3, "31.11/0.872"), (4, "29.60/0.835"))},
    **{f"eamamba_light_x{s}.official": _drive(
        f"lightweight bicubic SR x{s} (DIV2K)", f"srx{s}-eamambasr-light.pth",
        "test.py: the LR input reflect-padded bottom/right to a multiple of 8 (preset 'eamamba_sr'), the output "
        f"cropped to (sH, sW) and clipped; PSNR / SSIM on Y (BT.601), crop_border {s} (= scale)",
        {"note": "the README gives no light-SR numbers (the paper has them; not checked here)"},
        protocol="eamamba_sr")
       for s in (2, 3, 4)},
    "test_eamamba.untrained": _untrained("CI-size EAMamba U-Net (random weights)"),
    "test_eamamba_light.untrained": _untrained("CI-size EAMamba light SR x2 (random weights)"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _unet(name: str, kwargs: dict[str, Any]) -> EAMamba:
    return EAMamba(**{**_VARIANTS[name], **kwargs})


def _light(name: str, kwargs: dict[str, Any]) -> EAMambaSR:
    return EAMambaSR(**{**_VARIANTS[name], **kwargs})


@register_model
def eamamba_denoise(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for Gaussian colour denoising (25,320,512 parameters, as every released U-Net)."""
    return _unet("eamamba_denoise", kwargs)


@register_model
def eamamba_sidd(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for real denoising (SIDD); tags official (EMA weights) and sd (trained weights)."""
    return _unet("eamamba_sidd", kwargs)


@register_model
def eamamba_gopro(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for motion deblurring (GoPro / HIDE)."""
    return _unet("eamamba_gopro", kwargs)


@register_model
def eamamba_dpdd(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for single-image defocus deblurring (DPDD)."""
    return _unet("eamamba_dpdd", kwargs)


@register_model
def eamamba_dehaze_its(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for dehazing, trained on RESIDE ITS (SOTS indoor)."""
    return _unet("eamamba_dehaze_its", kwargs)


@register_model
def eamamba_dehaze_ots(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for dehazing, trained on RESIDE OTS (SOTS outdoor)."""
    return _unet("eamamba_dehaze_ots", kwargs)


@register_model
def eamamba_derain(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for deraining (Rain13K)."""
    return _unet("eamamba_derain", kwargs)


@register_model
def eamamba_realsr_x2(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for RealSR x2 (same-size restoration of HR-sized LR images)."""
    return _unet("eamamba_realsr_x2", kwargs)


@register_model
def eamamba_realsr_x3(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for RealSR x3 (same-size restoration of HR-sized LR images)."""
    return _unet("eamamba_realsr_x3", kwargs)


@register_model
def eamamba_realsr_x4(**kwargs: Any) -> EAMamba:
    """EAMamba U-Net for RealSR x4 (same-size restoration of HR-sized LR images)."""
    return _unet("eamamba_realsr_x4", kwargs)


@register_model
def eamamba_light_x2(**kwargs: Any) -> EAMambaSR:
    """EAMamba light SR x2 (725,056 parameters)."""
    return _light("eamamba_light_x2", kwargs)


@register_model
def eamamba_light_x3(**kwargs: Any) -> EAMambaSR:
    """EAMamba light SR x3 (909,696 parameters)."""
    return _light("eamamba_light_x3", kwargs)


@register_model
def eamamba_light_x4(**kwargs: Any) -> EAMambaSR:
    """EAMamba light SR x4 (872,768 parameters)."""
    return _light("eamamba_light_x4", kwargs)


@register_model
def test_eamamba(**kwargs: Any) -> EAMamba:
    """CI-size EAMamba U-Net: dim 16, one block per level, d_state 4."""
    return _unet("test_eamamba", kwargs)


@register_model
def test_eamamba_light(**kwargs: Any) -> EAMambaSR:
    """CI-size EAMamba light SR x2: dim 16, two groups of one block, d_state 4."""
    return _light("test_eamamba_light", kwargs)
