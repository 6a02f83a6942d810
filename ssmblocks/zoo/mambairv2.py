"""MambaIRv2 (CVPR 2025): attentive state-space restoration; classic / lightweight SR, colour denoising, JPEG CAR.

Facts from csguoh/MambaIR (Apache-2.0) ``basicsr/archs/mambairv2_arch.py`` (``MambaIRv2``) and
``basicsr/archs/mambairv2light_arch.py`` (``MambaIRv2Light``) at 33d7b34, the test ymls under
``options/test/mambairv2/`` and the README (see shared/reference/mambairv2.md). Parameter names follow the official
ones, so the released checkpoints load without renaming, the model-level buffer ``relative_position_index_SA``
included.

The SwinIR skeleton (``SwinIRSkeleton``) with residual groups of AttentiveLayers (``ASSB``): the input is
symmetrically padded to multiples of the window (``cat([x, x.flip()])[:Hp]``: the first padded row repeats the
last one), everything runs on the padded map (routing and sorting included), and the output is cropped back. The
official padding needs pad <= side, i.e. sides of at least window_size / 2 (8 for the releases): smaller inputs
raise a ValueError (``restore`` pads them, from the contract's ``min_size``).

Options that do not change the weights (``load_checkpoint(path, routing=...)``,
``create_model(name, pretrained=True, routing=...)``):

* ``routing``: "argmax" (default; deterministic) or "gumbel" (the official random Gumbel-softmax routing, drawn on
  every forward in eval too; the published numbers are one such sample). With "gumbel", ``torch.manual_seed(s)``
  right before the forward makes the official draws (one per AttentiveLayer, in execution order).
* ``tie_order``: "stable" (default; tokens of one class in raster order) or "backend" (the official
  ``torch.sort(stable=False)``, whose tie order is the backend's).
* ``prompt_alignment``: "official" (default; the quirk: the prompt added in raster order to the sorted sequence)
  or "sorted".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import ASSB
from ssmblocks.blocks.assm import check_routing
from ssmblocks.blocks.attentive_layer import FFN_VARIANTS
from ssmblocks.blocks.window_attention import relative_position_index, shifted_window_mask
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.zoo._common import count_indices, init_linear_and_norm, variant_named, width_ratio
from ssmblocks.zoo._image import SwinIRSkeleton

__all__ = ["MambaIRv2"]


@records_hparams
class MambaIRv2(SwinIRSkeleton):
    """MambaIRv2 and MambaIRv2Light. Input (B, in_chans, H, W) in [0, 1], H, W >= window_size / 2; output
    (B, in_chans, sH, sW), not clamped. ``create_model`` returns it in train mode, ``load_checkpoint`` in eval mode.

    Args:
        upscale: scale s (1 for denoising / CAR).
        in_chans: 3 (RGB, mean-shifted) or 1 (grey).
        embed_dim, depths, num_heads: channels, AttentiveLayers and attention heads per residual group.
        window_size: the attention window (and the padding multiple).
        d_state, inner_rank, num_tokens: the ASSM's state size, prompt rank and routing classes.
        mlp_ratio: hidden = int(embed_dim * mlp_ratio), the ASSM and FFN width.
        ffn: "conv" (ConvFFN, the classic file) or "gate" (the light file's gated MLP).
        convffn_kernel_size: the ConvFFN's depthwise kernel.
        upsampler: 'pixelshuffle' (classic SR), 'pixelshuffledirect' (light SR) or '' (denoise / CAR).
        routing, tie_order, prompt_alignment: see the module docstring.
        img_range, num_feat: as SwinIR.
    """

    family = "MambaIRv2"
    default_architecture = "mambairv2_base_x2"

    def __init__(self, *, upscale: int = 2, in_chans: int = 3, embed_dim: int = 174, depths: Sequence[int] = (6,) * 6,
                 num_heads: Sequence[int] = (6,) * 6, window_size: int = 16, d_state: int = 16, inner_rank: int = 64,
                 num_tokens: int = 128, mlp_ratio: float = 2.0, ffn: str = "conv", convffn_kernel_size: int = 5,
                 img_range: float = 1.0, upsampler: str = "pixelshuffle", routing: str = "argmax",
                 tie_order: str = "stable", prompt_alignment: str = "official", num_feat: int = 64) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths and num_heads need one entry per group, got {list(depths)} and "
                             f"{list(num_heads)}")
        if window_size < 2 or window_size % 2:
            raise ValueError(f"window_size must be even and >= 2, got {window_size}")
        if ffn not in FFN_VARIANTS:
            raise ValueError(f"ffn must be one of {FFN_VARIANTS}, got {ffn!r}")
        check_routing(routing)
        self.window_size = window_size
        self.build_stem(in_chans=in_chans, embed_dim=embed_dim, img_range=img_range)
        self.min_size = window_size // 2            # the official padding's limit (pad <= side)
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size))
        self.layers = nn.ModuleList(
            ASSB(embed_dim, depth, num_heads=heads, window_size=window_size, d_state=d_state, inner_rank=inner_rank,
                 num_tokens=num_tokens, mlp_ratio=mlp_ratio, ffn=ffn, convffn_kernel_size=convffn_kernel_size,
                 routing=routing, tie_order=tie_order, prompt_alignment=prompt_alignment)
            for depth, heads in zip(depths, num_heads, strict=True)
        )
        self.build_head(upscale=upscale, upsampler=upsampler, num_feat=num_feat)
        self.apply(init_linear_and_norm)

    def set_routing(self, routing: str) -> None:
        """Switches every ASSM to ``routing`` ("argmax" or "gumbel"); the weights are unchanged. ``model_args``
        follows, so a saved model keeps the mode."""
        for layer in self.layers:
            layer.set_routing(routing)
        if isinstance(getattr(self, "model_args", None), dict):
            self.model_args["routing"] = routing

    def pad_input(self, x: Tensor) -> Tensor:
        """The official symmetric padding of H and W to multiples of the window (see the module docstring)."""
        height, width = x.shape[-2:]
        ws = self.window_size
        padded_h, padded_w = (height + ws - 1) // ws * ws, (width + ws - 1) // ws * ws
        if not torch.compiler.is_compiling() and (padded_h - height > height or padded_w - width > width):
            raise ValueError(f"{type(self).__name__} mirrors the image to pad it to multiples of the window "
                             f"{ws}, which needs H and W of at least {ws // 2}, got {height}x{width} (restore() "
                             f"pads smaller images)")
        return _mirror(_mirror(x, -2, padded_h), -1, padded_w)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, Hp, Wp) -> (B, C, Hp, Wp): norm, the ASSB groups (sharing the index buffer and the shift mask of
        this size, built once per forward as the official code does), norm."""
        height, width = x.shape[-2:]
        ws = self.window_size
        mask = shifted_window_mask(height, width, ws, ws // 2, device=x.device, dtype=x.dtype)
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x, self.relative_position_index_SA, mask)
        return self.body_norm(x)


def _mirror(x: Tensor, dim: int, size: int) -> Tensor:
    """x extended along ``dim`` to ``size`` by its mirror image (index i >= n reads n - 1 - (i - n)), which is the
    official ``cat([x, x.flip(dim)], dim)[:size]`` for size <= 2n, as one gather (no size-dependent slicing, so
    torch.export keeps H and W symbolic)."""
    length = x.shape[dim]
    index = torch.arange(size, device=x.device)
    index = torch.where(index < length, index, 2 * length - 1 - index)
    return x.index_select(dim, index)


# ---- detection of official checkpoints ---------------------------------------------------------------------------
_LAYER0 = "layers.0.residual_group.layers.0."


def _claims_mambairv2(state: Mapping[str, Tensor]) -> bool:
    """MambaIRv2's groups hold AttentiveLayers (``residual_group.layers``, each with an ASSM); MambaIR v1's hold
    ``residual_group.blocks`` of VSSBlocks, so the two never claim the same file."""
    return f"{_LAYER0}assm.selectiveScan.A_logs" in state and f"{_LAYER0}embeddingA.weight" in state


@register_detector("MambaIRv2", claims=_claims_mambairv2)
def detect_mambairv2(state: Mapping[str, Tensor]) -> Detection:
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]
    groups = count_indices(state, r"layers\.(\d+)\.conv\.weight")
    depths = [count_indices(state, rf"layers\.{g}\.residual_group\.layers\.(\d+)\.norm1\.weight")
              for g in range(groups)]
    num_heads = [state[f"layers.{g}.residual_group.layers.0.win_mhsa.relative_position_bias_table"].shape[1]
                 for g in range(groups)]
    table_rows = state[f"{_LAYER0}win_mhsa.relative_position_bias_table"].shape[0]
    inner_rank, d_state = state[f"{_LAYER0}embeddingA.weight"].shape
    hidden = state[f"{_LAYER0}assm.in_proj.0.weight"].shape[0]
    gated = f"{_LAYER0}convffn1.sg.norm.weight" in state
    args: dict[str, Any] = {
        "in_chans": in_chans, "embed_dim": embed_dim, "depths": depths, "num_heads": num_heads,
        "window_size": (math.isqrt(table_rows) + 1) // 2, "d_state": d_state, "inner_rank": inner_rank,
        "num_tokens": state[f"{_LAYER0}assm.embeddingB.weight"].shape[0], "mlp_ratio": width_ratio(hidden, embed_dim),
        "ffn": "gate" if gated else "conv",
        "convffn_kernel_size": 5 if gated else state[f"{_LAYER0}convffn1.dwconv.depthwise_conv.0.weight"].shape[-1],
    }
    if "conv_before_upsample.0.weight" in state:
        num_feat = state["conv_before_upsample.0.weight"].shape[0]
        convs = count_indices(state, r"upsample\.(\d+)\.weight")
        upscale = 3 if state["upsample.0.weight"].shape[0] == 9 * num_feat else 2**convs
        args.update(upsampler="pixelshuffle", upscale=upscale, num_feat=num_feat)
    elif "upsample.0.weight" in state:
        args.update(upsampler="pixelshuffledirect", upscale=math.isqrt(state["upsample.0.weight"].shape[0] // in_chans))
    else:
        args.update(upsampler="", upscale=1)
    naming = {"pixelshuffle": ("embed_dim", "depths", "upscale"), "pixelshuffledirect": ("ffn", "upscale"),
              "": ("in_chans", "embed_dim", "depths")}[args["upsampler"]]
    arch = variant_named(_VARIANTS, args, ("upsampler", *naming), "mambairv2_base_x2")
    kind = "MambaIRv2Light" if gated else "MambaIRv2"
    task = {"pixelshuffle": f"SR x{args['upscale']}", "pixelshuffledirect": f"lightweight SR x{args['upscale']}",
            "": "colour denoising" if in_chans == 3 else "grey JPEG CAR"}[args["upsampler"]]
    variant = (f"{kind} {task}; embed_dim {embed_dim}, depths {depths}, num_heads {num_heads}, d_state {d_state}, "
               f"num_tokens {args['num_tokens']}, mlp_ratio {args['mlp_ratio']}")
    return Detection("MambaIRv2", arch, args, variant)


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_LIGHT = {"embed_dim": 48, "depths": (5,) * 4, "num_heads": (4,) * 4, "d_state": 8, "inner_rank": 32,
          "num_tokens": 64, "mlp_ratio": 1.0, "ffn": "gate", "upsampler": "pixelshuffledirect"}
_CLASSIC = {"d_state": 16, "inner_rank": 64, "num_tokens": 128, "mlp_ratio": 2.0, "ffn": "conv"}
_SMALL = {**_CLASSIC, "embed_dim": 132, "depths": (4,) * 6, "num_heads": (4,) * 6, "upsampler": "pixelshuffle"}
_BASE = {**_CLASSIC, "embed_dim": 174, "depths": (6,) * 6, "num_heads": (6,) * 6, "upsampler": "pixelshuffle"}
_LARGE = {**_CLASSIC, "embed_dim": 174, "depths": (6,) * 9, "num_heads": (6,) * 9, "upsampler": "pixelshuffle"}
_RESTORE = {**_BASE, "upsampler": "", "upscale": 1}
_VARIANTS: dict[str, dict[str, Any]] = {
    **{f"mambairv2_light_x{s}": {**_LIGHT, "upscale": s} for s in (2, 3, 4)},
    **{f"mambairv2_small_x{s}": {**_SMALL, "upscale": s} for s in (2, 3, 4)},
    **{f"mambairv2_base_x{s}": {**_BASE, "upscale": s} for s in (2, 3, 4)},
    **{f"mambairv2_large_x{s}": {**_LARGE, "upscale": s} for s in (2, 3, 4)},
    "mambairv2_dn": {**_RESTORE, "in_chans": 3},
    **{f"mambairv2_car_q{q}": {**_RESTORE, "in_chans": 1} for q in (10, 30, 40)},
    "test_mambairv2": {"embed_dim": 24, "depths": (2,), "num_heads": (2,), "window_size": 8, "d_state": 4,
                       "inner_rank": 8, "num_tokens": 8, "mlp_ratio": 2.0, "upsampler": "pixelshuffle",
                       "upscale": 2},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = "MambaIRv2: Attentive State Space Restoration (CVPR 2025), arXiv:2411.15269"
_ORIGIN = "https://github.com/csguoh/MambaIR"
_HUB_REPO = "cguoh/MambaIR"
_RELEASE = "https://github.com/csguoh/MambaIR/releases/download/v1.0"
_ROUTING_NOTE = ("the published numbers were measured with the official random Gumbel routing (routing='gumbel', "
                 "one CUDA draw); the default routing='argmax' is deterministic")
_TILING = ("MambaIRv2Model.test tiling (as MambaIR's): n = h//200+1 splits per axis, reflect-pad to a multiple of n, "
           "tiles of H//n extended by tile//10, own parts pasted; each tile symmetric-padded to multiples of 16")
_SR_PROTOCOL = f"{_TILING}; PSNR/SSIM on Y (BT.601), crop_border = scale; uint8-rounded"
_DN_PROTOCOL = (f"{_TILING}; RGB PSNR, border 0; input gt + np.random.normal(0, 15/255) with np.random.seed(0) per "
                f"image (HWC BGR float32 as read by cv2, not clipped)")
_CAR_PROTOCOL = f"{_TILING}; grey PSNR/SSIM, border 0, Classic5 / LIVE1 pre-made JPEG inputs"
_cfg = partial(PretrainedCfg, license="Apache-2.0", paper=_PAPER, origin_url=_ORIGIN)


def _released(file: str, task: str, test_protocol: str, metrics: dict[str, Any] | None = None,
              notes: str = "") -> PretrainedCfg:
    """A release of the v1.0 GitHub release, mirrored in the authors' Hub repo (folder MambaIRv2_ckpt/): the Hub
    first, the release asset URL as the fallback."""
    return _cfg(hf_hub_id=_HUB_REPO, hf_hub_filename=f"MambaIRv2_ckpt/{file}", url=f"{_RELEASE}/{file}",
                fallback_url=f"{_RELEASE}/{file}", task=task, test_protocol=test_protocol, protocol="mambairv2",
                metrics=metrics or {}, notes="; ".join(filter(None, (notes, _ROUTING_NOTE))))


_LIGHT_METRICS = {2: "33.26/0.9378", 3: "29.01/0.8689", 4: "26.82/0.8079"}
_BASE_METRICS = {2: "34.49/0.9468", 3: "30.28/0.8905", 4: "27.89/0.8344"}
_CAR_METRICS = {10: "30.37/0.8269", 30: "33.81/0.8970", 40: "34.64/0.9093"}
_SIZE_NOTE = "the README gives no numbers for this size (the paper's tables do)"

register_cfgs({
    **{f"mambairv2_light_x{s}.official": _released(
        f"mambairv2_lightSR_x{s}.pth", f"lightweight SR x{s}", _SR_PROTOCOL,
        {"Urban100 PSNR/SSIM": _LIGHT_METRICS[s]}) for s in (2, 3, 4)},
    **{f"mambairv2_small_x{s}.official": _released(
        f"mambairv2_classicSR_Small_x{s}.pth", f"classic SR x{s} (Small)", _SR_PROTOCOL, notes=_SIZE_NOTE)
       for s in (2, 3, 4)},
    **{f"mambairv2_base_x{s}.official": _released(
        f"mambairv2_classicSR_Base_x{s}.pth", f"classic SR x{s} (Base)", _SR_PROTOCOL,
        {"Urban100 PSNR/SSIM": _BASE_METRICS[s]},
        notes="the official Base x3 test yml loads with strict_load_g: false (reason unknown)" if s == 3 else "")
       for s in (2, 3, 4)},
    **{f"mambairv2_large_x{s}.official": _released(
        f"mambairv2_classicSR_Large_x{s}.pth", f"classic SR x{s} (Large)", _SR_PROTOCOL, notes=_SIZE_NOTE)
       for s in (2, 3, 4)},
    "mambairv2_dn.sigma15": _released("mambairv2_ColorDN_15.pth", "colour Gaussian denoising, sigma 15",
                                      _DN_PROTOCOL, {"Urban100 PSNR": 35.42},
                                      notes="the only released denoiser (sigma 25/50 were not released)"),
    **{f"mambairv2_car_q{q}.official": _released(
        f"mambairv2_jpeg_q{q}.pth", f"grey JPEG artefact reduction, quality {q}", _CAR_PROTOCOL,
        {"Classic5 PSNR/SSIM": _CAR_METRICS[q]}) for q in (10, 30, 40)},
    "test_mambairv2.untrained": _cfg(task="CI-size MambaIRv2 (random weights)", notes="tiny; no weights"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> MambaIRv2:
    return MambaIRv2(**{**_VARIANTS[name], **kwargs})


@register_model
def mambairv2_light_x2(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2Light SR x2: embed 48, 4 x 5 layers, gated MLP, pixelshuffledirect (774,092 parameters)."""
    return _create("mambairv2_light_x2", kwargs)


@register_model
def mambairv2_light_x3(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2Light SR x3: embed 48, 4 x 5 layers, gated MLP, pixelshuffledirect (780,587 parameters)."""
    return _create("mambairv2_light_x3", kwargs)


@register_model
def mambairv2_light_x4(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2Light SR x4: embed 48, 4 x 5 layers, gated MLP, pixelshuffledirect (789,680 parameters)."""
    return _create("mambairv2_light_x4", kwargs)


@register_model
def mambairv2_small_x2(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Small classic SR x2: embed 132, 6 x 4 layers, 4 heads (9,621,935 parameters)."""
    return _create("mambairv2_small_x2", kwargs)


@register_model
def mambairv2_small_x3(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Small classic SR x3: embed 132, 6 x 4 layers, 4 heads (9,806,575 parameters)."""
    return _create("mambairv2_small_x3", kwargs)


@register_model
def mambairv2_small_x4(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Small classic SR x4: embed 132, 6 x 4 layers, 4 heads (9,769,647 parameters)."""
    return _create("mambairv2_small_x4", kwargs)


@register_model
def mambairv2_base_x2(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Base classic SR x2: embed 174, 6 x 6 layers, 6 heads (22,903,001 parameters)."""
    return _create("mambairv2_base_x2", kwargs)


@register_model
def mambairv2_base_x3(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Base classic SR x3: embed 174, 6 x 6 layers, 6 heads (23,087,641 parameters)."""
    return _create("mambairv2_base_x3", kwargs)


@register_model
def mambairv2_base_x4(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Base classic SR x4: embed 174, 6 x 6 layers, 6 heads (23,050,713 parameters)."""
    return _create("mambairv2_base_x4", kwargs)


@register_model
def mambairv2_large_x2(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Large classic SR x2: embed 174, 9 x 6 layers, 6 heads (34,090,523 parameters)."""
    return _create("mambairv2_large_x2", kwargs)


@register_model
def mambairv2_large_x3(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Large classic SR x3: embed 174, 9 x 6 layers, 6 heads (34,275,163 parameters)."""
    return _create("mambairv2_large_x3", kwargs)


@register_model
def mambairv2_large_x4(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 Large classic SR x4: embed 174, 9 x 6 layers, 6 heads (34,238,235 parameters)."""
    return _create("mambairv2_large_x4", kwargs)


@register_model
def mambairv2_dn(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 colour Gaussian denoising (the Base body, image-level residual; tag sigma15)."""
    return _create("mambairv2_dn", kwargs)


@register_model
def mambairv2_car_q10(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 grey JPEG artefact reduction, quality 10 (the Base body, 1 channel)."""
    return _create("mambairv2_car_q10", kwargs)


@register_model
def mambairv2_car_q30(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 grey JPEG artefact reduction, quality 30 (the Base body, 1 channel)."""
    return _create("mambairv2_car_q30", kwargs)


@register_model
def mambairv2_car_q40(**kwargs: Any) -> MambaIRv2:
    """MambaIRv2 grey JPEG artefact reduction, quality 40 (the Base body, 1 channel)."""
    return _create("mambairv2_car_q40", kwargs)


@register_model
def test_mambairv2(**kwargs: Any) -> MambaIRv2:
    """CI-size MambaIRv2 SR x2: embed 24, one group of 2 layers, window 8, 8 routing classes."""
    return _create("test_mambairv2", kwargs)
