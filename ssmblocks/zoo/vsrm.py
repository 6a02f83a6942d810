"""VSRM (arXiv 2506.22762): video super-resolution x4 with spatial-to-temporal Mamba and deformable cross-mamba
alignment — the first public implementation, built from the paper (github PhuTran1005/VSRM publishes a README and
figures only: no code, no weights). Every choice the paper leaves open is a constructor argument; docs/models/vsrm.md
gives each choice and its reason.

The network (paper Fig. 2, on a BasicVSR++/IART-style recurrent propagation as its README says):

* per-frame features: Conv3x3 + LeakyReLU + residual blocks (``feat_extract``); SpyNet flows between neighbours;
* second-order bidirectional propagation over branches backward_1, forward_1, backward_2, forward_2
  (``second_order_propagation``). At each step a Feature Propagation Block (``fpb.<branch>``) aligns the branch's
  previous and second-previous outputs to the current frame with one DCA (``DeformableCrossMambaAlignment``,
  SpyNet flow and the composed second-order flow), stacks the 3-frame clip [aligned t-1, current, aligned t-2]
  (IART's clip), projects it to ``embed_dim`` and runs ``num_dambs`` DAMBs (``damb_depth`` S2TMBs + one T2SMB)
  over it; the clip's centre frame, projected back, is added to the aligned t-1 feature. A conv trunk
  (``refine.<branch>``) then fuses [current, earlier branches, propagated] into a residual, as in BasicVSR++;
* per frame, reconstruction of cat[spatial, 4 branches] (conv trunk), two PixelShuffle x2 stages, ``conv_hr``,
  ``conv_last``, plus the bilinearly x4 upsampled LR frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import ConvResidualBlocks
from ssmblocks.blocks.clip_blocks import DAMB
from ssmblocks.necks import BRANCHES, SpyNet, neighbour_flows, second_order_propagation
from ssmblocks.necks.cross_mamba_alignment import DeformableCrossMambaAlignment
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.zoo._common import count_indices
from ssmblocks.zoo._video import SecondOrderVSR

__all__ = ["VSRM", "FeaturePropagationBlock"]


class FeaturePropagationBlock(nn.Module):
    """FPB = DCA + DAMBs, called as the propagation's ``align``:
    ``(feat_prop, cond, flow_n1, feat_n2, flow_n2) -> (B, C, H, W)`` with ``cond`` = cat[warped t-1, current,
    warped t-2] (B, 3C, H, W) of which only ``current`` is read (DCA does its own sampling).

    Args:
        dim: propagation channels C. embed_dim: channels of the DAMBs. num_dambs, damb_depth: DAMBs, S2TMBs each.
        dca_options: keyword options of ``DeformableCrossMambaAlignment``. damb_options: of ``DAMB``.
    """

    def __init__(self, dim: int, *, embed_dim: int, num_dambs: int, damb_depth: int, dca_options: dict[str, Any],
                 damb_options: dict[str, Any], device=None, dtype=None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dca = DeformableCrossMambaAlignment(dim, **dca_options, **dd)
        self.proj_in = nn.Linear(dim, embed_dim, **dd)
        self.dambs = nn.Sequential(*(DAMB(embed_dim, depth=damb_depth, **damb_options, **dd)
                                     for _ in range(num_dambs)))
        self.norm = nn.LayerNorm(embed_dim, **dd)
        self.proj_out = nn.Linear(embed_dim, dim, **dd)

    def forward(self, feat_prop: Tensor, cond: Tensor, flow_n1: Tensor, feat_n2: Tensor, flow_n2: Tensor) -> Tensor:
        current = cond.chunk(3, dim=1)[1]
        aligned_n1 = self.dca(current, feat_prop, flow_n1)
        aligned_n2 = self.dca(current, feat_n2, flow_n2)
        clip = torch.stack([aligned_n1, current, aligned_n2], dim=1).permute(0, 1, 3, 4, 2)   # (B, 3, H, W, C)
        centre = self.proj_out(self.norm(self.dambs(self.proj_in(clip)))[:, 1])            # (B, H, W, C)
        return aligned_n1 + centre.permute(0, 3, 1, 2)


@records_hparams
class VSRM(SecondOrderVSR):
    """VSRM x4 video super-resolution. Input (B, T, 3, H, W) in [0, 1], T >= 2; output (B, T, 3, 4H, 4W).

    Args:
        mid_channels: propagation width C (a multiple of 4). embed_dim: DAMB width.
        num_extract_blocks, num_refine_blocks, num_reconstruct_blocks: residual blocks of the feature extractor,
            of each branch's fusion trunk and of the reconstruction trunk.
        num_dambs: DAMBs per FPB. damb_depth: S2TMBs per DAMB (then one T2SMB).
        d_state, d_conv, expand: of the S2T/T2S Mamba mixers. share_directions: S2T's forward and backward scans
            share conv1d and SSM parameters.
        ffn_expansion, ffn_kernel: of TGFN.
        region_size, offset_layers, snap_to_grid, positional_encoding: of DCA; dca_d_state, dca_expand,
            dca_headdim: of its cross-mamba.
        hr_channels: width after the second PixelShuffle.
    """

    family = "VSRM"
    default_architecture = "vsrm"

    def __init__(self, *, mid_channels: int = 64, embed_dim: int = 120, num_extract_blocks: int = 5,
                 num_refine_blocks: int = 2, num_reconstruct_blocks: int = 3, num_dambs: int = 3,
                 damb_depth: int = 5, d_state: int = 16, d_conv: int = 4, expand: float = 2.0,
                 share_directions: bool = True, ffn_expansion: float = 1.5,
                 ffn_kernel: tuple[int, int, int] = (3, 3, 3), region_size: tuple[int, int] = (3, 3),
                 offset_layers: int = 3, snap_to_grid: bool = True, positional_encoding: bool = True,
                 dca_d_state: int = 16, dca_expand: int = 2, dca_headdim: int = 16, hr_channels: int = 64) -> None:
        super().__init__()
        self.mid_channels = mid_channels
        dca_options = {"region_size": tuple(region_size), "offset_layers": offset_layers,
                       "snap_to_grid": snap_to_grid, "positional_encoding": positional_encoding,
                       "d_state": dca_d_state, "d_conv": d_conv, "expand": dca_expand, "headdim": dca_headdim}
        damb_options = {"share_directions": share_directions, "ffn_expansion": ffn_expansion,
                        "ffn_kernel": tuple(ffn_kernel), "d_state": d_state, "d_conv": d_conv, "expand": expand}
        self.spynet = SpyNet()
        self.feat_extract = ConvResidualBlocks(3, mid_channels, num_extract_blocks)
        self.fpb = nn.ModuleDict({
            name: FeaturePropagationBlock(mid_channels, embed_dim=embed_dim, num_dambs=num_dambs,
                                          damb_depth=damb_depth, dca_options=dca_options, damb_options=damb_options)
            for name in BRANCHES})
        self.refine = nn.ModuleDict({name: ConvResidualBlocks((2 + i) * mid_channels, mid_channels, num_refine_blocks)
                                     for i, name in enumerate(BRANCHES)})
        self.reconstruction = ConvResidualBlocks((len(BRANCHES) + 1) * mid_channels, mid_channels,
                                                 num_reconstruct_blocks)
        self.build_x4_head(mid_channels, hr_channels)

    def forward_features(self, lqs: Tensor) -> Tensor:
        """(B, T, 3, H, W) -> (B, T, 5 mid, H, W): cat[spatial, backward_1, forward_1, backward_2, forward_2]."""
        batch, frames = lqs.shape[:2]
        spatial = self.feat_extract(lqs.flatten(0, 1)).unflatten(0, (batch, frames))
        flows_backward, flows_forward = neighbour_flows(self.spynet, lqs)
        feats = second_order_propagation(spatial.unbind(1), flows_backward, flows_forward, align=self.fpb,
                                         refine=self.refine)
        return self.stack_branches(feats, frames)



# ---- detection of the library's VSRM checkpoints ------------------------------------------------------------------
_S2T0 = "fpb.backward_1.dambs.0.0."


def _claims_vsrm(state: Mapping[str, Tensor]) -> bool:
    """VSRM holds the DCA cross-mamba of its first propagation block and a TGFN in its first S2TMB."""
    return ("fpb.backward_1.dca.cross_mamba.in_proj_b.weight" in state
            and f"{_S2T0}ffn.dwconv1.weight" in state)


@register_detector("VSRM", claims=_claims_vsrm, input_kind="video")
def detect_vsrm(state: Mapping[str, Tensor]) -> Detection:
    mid = state["feat_extract.main.0.weight"].shape[0]
    embed = state["fpb.backward_1.proj_in.weight"].shape[0]
    num_dambs = count_indices(state, r"fpb\.backward_1\.dambs\.(\d+)\.0\.norm1\.weight")
    blocks = count_indices(state, r"fpb\.backward_1\.dambs\.0\.(\d+)\.norm1\.weight")
    mixer, ffn = f"{_S2T0}mixer.", f"{_S2T0}ffn."
    dca = "fpb.backward_1.dca."
    d_inner = state[f"{mixer}in_proj.weight"].shape[0] // 2
    dca_inner = state[f"{dca}cross_mamba.norm.weight"].shape[0]
    offset_convs = count_indices(state, r"fpb\.backward_1\.dca\.offset_net\.(\d+)\.weight")
    tokens = state[f"{dca}offset_net.{2 * (offset_convs - 1)}.weight"].shape[0] // 2
    side = round(tokens**0.5)
    if side * side != tokens:
        raise ValueError(f"DCA region of {tokens} points: only square regions are detected")
    args = {
        "mid_channels": mid,
        "embed_dim": embed,
        "num_extract_blocks": count_indices(state, r"feat_extract\.main\.2\.(\d+)\.conv1\.weight"),
        "num_refine_blocks": count_indices(state, r"refine\.backward_1\.main\.2\.(\d+)\.conv1\.weight"),
        "num_reconstruct_blocks": count_indices(state, r"reconstruction\.main\.2\.(\d+)\.conv1\.weight"),
        "num_dambs": num_dambs,
        "damb_depth": blocks - 1,
        "d_state": state[f"{mixer}A_log"].shape[1],
        "d_conv": state[f"{mixer}conv1d.weight"].shape[-1],
        "expand": d_inner / embed,
        "share_directions": f"{mixer}A_b_log" not in state,
        "ffn_expansion": state[f"{ffn}dwconv1.weight"].shape[0] / embed,
        "ffn_kernel": tuple(state[f"{ffn}dwconv1.weight"].shape[2:]),
        "region_size": (side, side),
        "offset_layers": offset_convs,
        "snap_to_grid": True,                          # not in the weights: the paper's Eq. 8
        "positional_encoding": True,                   # not in the weights: the paper's choice
        "dca_d_state": state[f"{dca}cross_mamba.in_proj_b.weight"].shape[0],
        "dca_expand": dca_inner // mid,
        "dca_headdim": dca_inner // state[f"{dca}cross_mamba.A_log"].shape[0],
        "hr_channels": state["conv_hr.weight"].shape[0],
    }
    variant = f"VSRM x4; mid {mid}, embed {embed}, {num_dambs} DAMBs of {blocks - 1} S2TMBs + 1 T2SMB per FPB"
    return Detection("VSRM", "vsrm", args, variant)


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_VARIANTS: dict[str, dict[str, Any]] = {
    "vsrm": {},                                                  # the constructor's defaults (docs/models/vsrm.md)
    "vsrm_ablation": {"num_dambs": 2, "damb_depth": 2, "num_reconstruct_blocks": 5},
    "test_vsrm": {"mid_channels": 16, "embed_dim": 16, "num_extract_blocks": 0, "num_refine_blocks": 0,
                  "num_reconstruct_blocks": 0, "num_dambs": 1, "damb_depth": 1, "d_state": 4, "dca_d_state": 4,
                  "dca_headdim": 8, "region_size": (2, 2), "offset_layers": 2, "hr_channels": 16},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = "VSRM: A Robust Mamba-Based Framework for Video Super-Resolution (ICCV 2025), arXiv:2506.22762"
_NO_WEIGHTS = ("the authors published no code and no weights; this is the library's implementation from the paper. "
               "Train it with `ssmblocks train --model vsrm --data <frame folders> --frames 6 --loss fcl ...` "
               "(docs/training.md; `fcl` is the paper's Charbonnier + Frequency Charbonnier-like loss, "
               "ssmblocks.losses.FrequencyCharbonnierLoss)")
_cfg = partial(PretrainedCfg, license="library implementation (the paper's repository states no license for code; "
                                      "none exists)",
               paper=_PAPER, origin_url="https://github.com/PhuTran1005/VSRM", task="video super-resolution x4")

register_cfgs({
    "vsrm.none": _cfg(
        test_protocol="REDS4 (clips of 100 frames; paper: 6- and 16-frame training) and Vid4 / Vimeo-90K-T, "
                      "PSNR/SSIM as BasicVSR++", notes=_NO_WEIGHTS,
        metrics={"REDS4 PSNR/SSIM (paper, 16 frames)": "33.11/0.9162", "Vid4 PSNR/SSIM (paper)": "28.44/0.8552",
                 "Vimeo-90K-T PSNR/SSIM (paper)": "38.33/0.9543", "parameters (paper)": "17.1 M"}),
    "vsrm_ablation.none": _cfg(
        test_protocol="REDS4, the paper's ablation setting", notes=_NO_WEIGHTS,
        metrics={"REDS4 PSNR (paper, ablation)": "31.09", "parameters (paper)": "8.61 M"}),
    "test_vsrm.untrained": _cfg(notes="tiny CI-size VSRM; random weights"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> VSRM:
    return VSRM(**{**_VARIANTS[name], **kwargs})


@register_model
def vsrm(**kwargs: Any) -> VSRM:
    """VSRM x4, the paper's main model (17.1 M parameters): see docs/models/vsrm.md for the chosen sizes."""
    return _create("vsrm", kwargs)


@register_model
def vsrm_ablation(**kwargs: Any) -> VSRM:
    """The paper's 8.61 M-parameter ablation model: see docs/models/vsrm.md for the chosen sizes."""
    return _create("vsrm_ablation", kwargs)


@register_model
def test_vsrm(**kwargs: Any) -> VSRM:
    """CI-size VSRM: mid 16, embed 16, one DAMB of one S2TMB + one T2SMB per FPB, no residual blocks."""
    return _create("test_vsrm", kwargs)
