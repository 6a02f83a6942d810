"""DVMSR (NTIRE 2024 efficient SR, CVPRW 2024): distilled vision Mamba for lightweight x4 super-resolution.

Facts from nathan66666/DVMSR (MIT) ``models/team07_DVMSR.py`` at 86663ce (the student; the teacher's code and
weights are not released) and mamba_ssm v1.1.1 ``Mamba``. Parameter names follow the official ones, so the
released checkpoints load without renaming:
x -> (x - RGB mean) * img_range -> conv_first 3x3 -> [patch_embed.norm LayerNorm -> layers (ViMM groups, the
paper's RSSB) -> norm_f LayerNorm] = forward_features -> conv_after_body 3x3 (+ conv_first output) ->
upsample (conv 3x3 to 3 s^2 channels + PixelShuffle(s)) -> / img_range + mean. Every feature map is flattened
row-major into one forward sequence.

Official quirk, kept as the named option ``no_block_skip`` (on by default, as the weights were trained): the
official layer calls each block as ``blk(x, x_size)[0]``, the size landing in the block's residual argument, so a
block computes Mamba(LayerNorm(x)) with no per-block skip; the only skips are the groups' and the global one.
Not reproduced: stochastic depth (official drop_path_rate 0.1, which under the quirk drops a block's whole
input in training); the upsamplers other than 'pixelshuffledirect', the only one of the releases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import ResidualGroup, ViMM
from ssmblocks.data import bundled_file
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.scan_orders import ScanOrder
from ssmblocks.zoo._common import count_indices, init_linear_and_norm, variant_named, width_ratio
from ssmblocks.zoo._image import SwinIRSkeleton

__all__ = ["DVMSR"]

@records_hparams
class DVMSR(SwinIRSkeleton):
    """DVMSR: (B, in_chans, H, W) in [0, 1] -> (B, in_chans, sH, sW). Any H, W >= 1.

    The SwinIR skeleton (``SwinIRSkeleton``, 'pixelshuffledirect' head, final norm ``norm_f``) with residual groups
    of ViMM blocks (the paper's RSSB). ``create_model`` returns it in train mode, ``load_checkpoint`` in eval mode.

    Args:
        upscale: scale s of the pixel-shuffle head.
        in_chans: 3 (RGB, mean-shifted) or 1 (no mean shift).
        embed_dim, depths: channels, and ViMM blocks per residual group.
        d_state, d_conv, expand, dt_rank: the Mamba mixer's options (dt_rank None = ceil(embed_dim / 16)).
        img_range: the input scale of the official model (1: inputs in [0, 1]).
        no_block_skip: the official quirk (see the module docstring): ViMM blocks without their skip.
        scan_order: how the mixers turn a map into sequences (default: one row-major path).
    """

    family = "DVMSR"
    default_architecture = "dvmsr"

    def __init__(self, *, upscale: int = 4, in_chans: int = 3, embed_dim: int = 60, depths: Sequence[int] = (2,) * 4,
                 d_state: int = 16, d_conv: int = 4, expand: float = 2.0, dt_rank: int | None = None,
                 img_range: float = 1.0, no_block_skip: bool = True, scan_order: ScanOrder | None = None) -> None:
        super().__init__()
        self.dt_rank = math.ceil(embed_dim / 16) if dt_rank is None else dt_rank
        self.build_stem(in_chans=in_chans, embed_dim=embed_dim, img_range=img_range)
        self.layers = nn.ModuleList(
            ResidualGroup(embed_dim, depth, block=ViMM, skip=not no_block_skip, d_state=d_state, d_conv=d_conv,
                          expand=expand, dt_rank=self.dt_rank, scan_order=scan_order)
            for depth in depths
        )
        self.build_head(upscale=upscale, upsampler="pixelshuffledirect", norm_key="norm_f")
        self.apply(init_linear_and_norm)


# ---- detection of official checkpoints ---------------------------------------------------------------------------
_BLOCK0 = "layers.0.residual_group.blocks.0."


def _claims_dvmsr(state: Mapping[str, Tensor]) -> bool:
    """DVMSR blocks hold a mamba_ssm ``mixer`` (MambaIR/MambaCSR: ``self_attention``), and the body ends in
    ``norm_f``."""
    return f"{_BLOCK0}mixer.A_log" in state and "norm_f.weight" in state


@register_detector("DVMSR", claims=_claims_dvmsr)
def detect_dvmsr(state: Mapping[str, Tensor]) -> Detection:
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    depths = [count_indices(state, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.norm\.weight")
              for i in range(count_indices(state, r"layers\.(\d+)\.conv\.weight"))]
    d_inner, d_state = state[f"{_BLOCK0}mixer.A_log"].shape
    args = {"upscale": math.isqrt(state["upsample.0.weight"].shape[0] // in_chans), "in_chans": in_chans,
            "embed_dim": embed_dim, "depths": depths, "d_state": d_state,
            "d_conv": state[f"{_BLOCK0}mixer.conv1d.weight"].shape[-1], "expand": width_ratio(d_inner, embed_dim),
            "dt_rank": state[f"{_BLOCK0}mixer.dt_proj.weight"].shape[1]}
    arch = variant_named(_VARIANTS, args, ("embed_dim", "depths"), "dvmsr")
    variant = (f"DVMSR x{args['upscale']}; embed_dim {embed_dim}, depths {depths}, d_state {d_state}; the weights do "
               f"not record the block skip: the official no-skip blocks are assumed")
    return Detection("DVMSR", arch, args, variant)


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_VARIANTS: dict[str, dict[str, Any]] = {
    "dvmsr": {"embed_dim": 60, "depths": (2,) * 4},                 # the released student
    "dvmsr_teacher": {"embed_dim": 192, "depths": (2,) * 8},        # the paper's teacher
    "dvmsr_teacher_ntire": {"embed_dim": 180, "depths": (2,) * 6},  # the NTIRE 2024 teacher
    "test_dvmsr": {"embed_dim": 16, "depths": (1, 1), "d_state": 4},
}



# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = ("DVMSR: Distillated Vision Mamba for Efficient Super-Resolution (CVPR 2024 workshops, NTIRE 2024 ESR), "
          "arXiv:2405.03008")
_ORIGIN = "https://github.com/nathan66666/DVMSR"
_RAW = "https://github.com/nathan66666/DVMSR/raw/86663ce906aab91c31ee5bf69bebc1ad61537405/model_zoo"
_PROTOCOL = ("DVMSR test_demo.py: the whole image (no tiling), RGB in [0, 1]; output clamped to [0, 1] and rounded "
             "to uint8; PSNR on RGB with a border of 4 px cropped, HR modcropped to 4")
_cfg = partial(PretrainedCfg, license="MIT", paper=_PAPER, origin_url=_ORIGIN)


def _released(file: str, sha256: str, task: str, metrics: dict[str, Any], notes: str,
              bundled: str | None = None) -> PretrainedCfg:
    """A released file on GitHub (URL + sha256); ``bundled`` names the copy shipped in ssmblocks/data, used first."""
    return _cfg(file=str(bundled_file(bundled)) if bundled else None, url=f"{_RAW}/{file}", sha256=sha256, task=task,
                test_protocol=_PROTOCOL, protocol="dvmsr", metrics=metrics, notes=notes)


def _untrained(task: str) -> PretrainedCfg:
    return _cfg(task=task, notes="no released weights")


register_cfgs({
    "dvmsr.ntire2024_team07": _released(
        "team07_DVMSR.pth", "37ff9ece556b84e2aa63533d0d1a0ee27ab63cc6a46d4df8f6bfa16e325d34fe",
        "lightweight SR x4 (the NTIRE 2024 ESR submission)",
        {"NTIRE 2024 ESR validation PSNR": 26.930, "utils/test.bmp RGB PSNR (official code)": 27.2026},
        "model_zoo/team07_DVMSR.pth, a raw state_dict; shipped with the package (the offline default model)",
        bundled="dvmsr_team07.safetensors"),
    "dvmsr.params_ema": _released(
        "DVMSR.pth", "b9993f169da81ee63c4b5d4fc770c2f05a4af1e9481aa18a16577fe78fb6f174",
        "lightweight SR x4 (the repository's DVMSR.pth, EMA weights)",
        {"Set5 PSNR/SSIM": "32.19/0.8955", "Set14 PSNR/SSIM": "28.61/0.7823", "BSD100 PSNR/SSIM": "27.58/0.7379",
         "Urban100 PSNR/SSIM": "26.03/0.7838", "Manga109 PSNR/SSIM": "30.48/0.9084",
         "utils/test.bmp RGB PSNR (official code)": 27.2979},
        "model_zoo/DVMSR.pth['params_ema']; the paper's table does not say which release produced it"),
    "dvmsr_teacher.untrained": _untrained("the paper's distillation teacher (8 RSSB x 2 ViMM, 192 channels)"),
    "dvmsr_teacher_ntire.untrained": _untrained("the NTIRE 2024 distillation teacher (6 RSSB x 2 ViMM, 180 channels)"),
    "test_dvmsr.untrained": _untrained("CI-size DVMSR (random weights)"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> DVMSR:
    return DVMSR(**{**_VARIANTS[name], **kwargs})


@register_model
def dvmsr(**kwargs: Any) -> DVMSR:
    """DVMSR x4, the released student (424,428 parameters); tags ntire2024_team07 (default) and params_ema."""
    return _create("dvmsr", kwargs)


@register_model
def dvmsr_teacher(**kwargs: Any) -> DVMSR:
    """The DVMSR paper's teacher: 8 RSSB x 2 ViMM, 192 channels (architecture only; no released weights)."""
    return _create("dvmsr_teacher", kwargs)


@register_model
def dvmsr_teacher_ntire(**kwargs: Any) -> DVMSR:
    """The NTIRE 2024 DVMSR teacher: 6 RSSB x 2 ViMM, 180 channels (architecture only; no released weights)."""
    return _create("dvmsr_teacher_ntire", kwargs)


@register_model
def test_dvmsr(**kwargs: Any) -> DVMSR:
    """CI-size DVMSR: 2 RSSB x 1 ViMM, 16 channels, d_state 4."""
    return _create("test_dvmsr", kwargs)
