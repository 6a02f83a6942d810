"""MedVSR (ICCV 2025): medical video super-resolution x4 with cross state-space propagation.

Facts from CUHK-AIM-Group/MedVSR at 342150504e21be18ff09e9867e4f8db3467b40d7 (``archs/medvsr_arch.py``,
``archs/modules/mamba_vision.py``, ``options/medvsr_train.yml``); parameter names are the official ones, so official
checkpoints load as they are. The network (released: mid_channels 64):

* SpyNet flows between neighbouring LR frames (``spynet``); per-frame features ``feat_extract`` (conv + 5 blocks);
* second-order propagation, branches backward_1, forward_1, backward_2, forward_2 (``second_order_propagation``):
  flow-guided deformable alignment ``deform_align.<branch>``, ONE cross state-space block ``cross_arc_block``
  (CSSB) shared by the four branches refining the t-2 condition, conv trunks ``backbone.<branch>``;
* per frame, ISSR reconstruction of cat[spatial, b1, f1, b2, f2] (conv, windowed Mamba-2 layer, depthwise
  residual blocks), two PixelShuffle x2 stages, ``conv_hr``, ``conv_last``, plus the bilinear x4 LR frame.

Video stays (B, T, C, H, W) throughout: every state-space scan here runs inside 16x16 windows of one frame, so the
model never forms a (B, C, T, H, W) volume. Differences from the official code, none changing its outputs:
the deformable alignment is always built (the official code skips it without CUDA, which breaks strict loading),
forward flows are always computed (the official code reuses the backward ones for mirror-extended clips, which is
the same value), and frames smaller than 64x64 (the official code refuses them) are replicate-padded to 64 for
SpyNet only, the flows cropped back.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks._hparams import records_hparams
from ssmblocks.blocks import CSSB, ConvResidualBlocks, ResidualBlockNoBN, WindowedMamba2Layer
from ssmblocks.necks import BRANCHES, SecondOrderDeformableAlignment, SpyNet, neighbour_flows, second_order_propagation
from ssmblocks.registry import Detection, PretrainedCfg, register_cfgs, register_detector, register_model
from ssmblocks.zoo._common import count_indices, width_ratio
from ssmblocks.zoo._video import SecondOrderVSR

__all__ = ["ISSR", "MedVSR"]


class ISSR(nn.Module):
    """MedVSR's reconstruction: (B, in_channels, H, W) -> (B, dim, H, W).

    ``main`` = [Conv3x3(in -> dim), LeakyReLU(0.1), Sequential(``mamba_layers`` WindowedMamba2Layer),
    Sequential(``num_blocks - mamba_layers`` depthwise-k residual blocks), Identity].
    """

    def __init__(self, in_channels: int, dim: int, *, num_blocks: int = 10, mamba_layers: int = 1,
                 kernel_size: int = 7, window_size: int = 16, mlp_ratio: float = 2.0, d_state: int = 16,
                 headdim: int = 16, d_conv: int = 3, device=None, dtype=None) -> None:
        super().__init__()
        if not 1 <= mamba_layers <= num_blocks:
            raise ValueError(f"ISSR needs 1 <= mamba_layers <= num_blocks, got {mamba_layers} and {num_blocks}")
        dd = {"device": device, "dtype": dtype}
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, dim, 3, padding=1, **dd),
            nn.LeakyReLU(negative_slope=0.1),
            nn.Sequential(*(WindowedMamba2Layer(dim, window_size=window_size, mlp_ratio=mlp_ratio, d_state=d_state,
                                                d_conv=d_conv, headdim=headdim, **dd)
                            for _ in range(mamba_layers))),
            nn.Sequential(*(ResidualBlockNoBN(dim, depthwise_kernel=kernel_size, **dd)
                            for _ in range(num_blocks - mamba_layers))),
            nn.Identity(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


@records_hparams
class MedVSR(SecondOrderVSR):
    """MedVSR x4 video super-resolution. Input (B, T, 3, H, W) in [0, 1], T >= 2; output (B, T, 3, 4H, 4W).

    Args:
        mid_channels: feature width (a multiple of 32: the ISSR Mamba-2 has mid / 32 heads).
        num_blocks: residual blocks of each propagation trunk. num_extract_blocks: of the feature extractor.
        num_reconstruct_blocks: ISSR blocks, the first ``mamba_layers`` of them windowed Mamba-2 layers.
        reconstruct_kernel: depthwise kernel of the ISSR residual blocks.
        window_size: side of the CSSB / ISSR windows. d_state, headdim, d_conv: of their Mamba-2 mixers.
        cssb_mlp_ratio, issr_mlp_ratio: MLP widths of the CSSB and of the ISSR Mamba-2 blocks.
        deformable_groups, max_residue_magnitude: of the deformable alignment.
        hr_channels: width after the second PixelShuffle (the official code fixes 64).
        second_order_dcn: False (official MedVSR): the alignment DCN gets (feat_prop, feat_prop) and the first-order
            flow twice; True: (feat_prop, feat_n2) and (flow_n1, flow_n2), as BasicVSR++.
    """

    family = "MedVSR"
    default_architecture = "medvsr"

    def __init__(self, *, mid_channels: int = 64, num_blocks: int = 7, num_extract_blocks: int = 5,
                 num_reconstruct_blocks: int = 10, mamba_layers: int = 1, reconstruct_kernel: int = 7,
                 window_size: int = 16, d_state: int = 16, headdim: int = 16, d_conv: int = 3,
                 cssb_mlp_ratio: float = 4.0, issr_mlp_ratio: float = 2.0, deformable_groups: int = 16,
                 max_residue_magnitude: float = 10.0, hr_channels: int = 64, second_order_dcn: bool = False) -> None:
        super().__init__()
        self.mid_channels, self.second_order_dcn = mid_channels, second_order_dcn
        self.spynet = SpyNet()
        self.feat_extract = ConvResidualBlocks(3, mid_channels, num_extract_blocks)
        self.deform_align = nn.ModuleDict({
            name: SecondOrderDeformableAlignment(2 * mid_channels, mid_channels, deformable_groups=deformable_groups,
                                                 max_residue_magnitude=max_residue_magnitude)
            for name in BRANCHES
        })
        self.backbone = nn.ModuleDict({name: ConvResidualBlocks((2 + i) * mid_channels, mid_channels, num_blocks)
                                       for i, name in enumerate(BRANCHES)})
        self.cross_arc_block = CSSB(mid_channels, window_size=window_size, mlp_ratio=cssb_mlp_ratio, d_state=d_state,
                                    d_conv=d_conv, headdim=headdim)
        self.reconstruction = ISSR((len(BRANCHES) + 1) * mid_channels, mid_channels,
                                   num_blocks=num_reconstruct_blocks, mamba_layers=mamba_layers,
                                   kernel_size=reconstruct_kernel, window_size=window_size, mlp_ratio=issr_mlp_ratio,
                                   d_state=d_state, headdim=headdim, d_conv=d_conv)
        self.build_x4_head(mid_channels, hr_channels)

    def compute_flows(self, lqs: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, 3, H, W) -> flows_backward (frame k -> k+1) and flows_forward (k+1 -> k), each (B, T-1, 2, H, W).

        Frames under 64x64 are replicate-padded (right/bottom) to 64 for SpyNet; the flows are cropped back."""
        return neighbour_flows(self.spynet, lqs)

    def _align(self, name: str):
        module = self.deform_align[name]
        if self.second_order_dcn:
            return lambda prop, cond, flow_n1, feat_n2, flow_n2: module(torch.cat([prop, feat_n2], 1), cond, flow_n1,
                                                                        flow_n2)
        return lambda prop, cond, flow_n1, feat_n2, flow_n2: module(torch.cat([prop, prop], 1), cond, flow_n1, flow_n1)

    def forward_features(self, lqs: Tensor) -> Tensor:
        """(B, T, 3, H, W) -> (B, T, 5 mid, H, W): cat[spatial, backward_1, forward_1, backward_2, forward_2]."""
        batch, frames = lqs.shape[:2]
        spatial = self.feat_extract(lqs.flatten(0, 1)).unflatten(0, (batch, frames))
        flows_backward, flows_forward = self.compute_flows(lqs)
        feats = second_order_propagation(
            spatial.unbind(1), flows_backward, flows_forward, align={name: self._align(name) for name in BRANCHES},
            refine=self.backbone, cross_frame=self.cross_arc_block)
        return self.stack_branches(feats, frames)



# ---- detection of official checkpoints ---------------------------------------------------------------------------


def _claims_medvsr(state: Mapping[str, Tensor]) -> bool:
    """MedVSR holds the cross state-space block's support projection and a SpyNet."""
    return "cross_arc_block.mixer.in_proj_b.weight" in state and "spynet.basic_module.0.basic_module.0.weight" in state


@register_detector("MedVSR", claims=_claims_medvsr, input_kind="video")
def detect_medvsr(state: Mapping[str, Tensor]) -> Detection:
    mid = state["feat_extract.main.0.weight"].shape[0]
    mamba_layers = count_indices(state, r"reconstruction\.main\.2\.(\d+)\.blocks\.0\.norm1\.weight")
    cross = "cross_arc_block.mixer."
    issr = "reconstruction.main.2.0.blocks.0."
    args = {
        "mid_channels": mid,
        "num_blocks": count_indices(state, r"backbone\.backward_1\.main\.2\.(\d+)\.conv1\.weight"),
        "num_extract_blocks": count_indices(state, r"feat_extract\.main\.2\.(\d+)\.conv1\.weight"),
        "num_reconstruct_blocks": mamba_layers
        + count_indices(state, r"reconstruction\.main\.3\.(\d+)\.conv1\.0\.weight"),
        "mamba_layers": mamba_layers,
        "reconstruct_kernel": state["reconstruction.main.3.0.conv1.0.weight"].shape[-1],
        "window_size": 16,                                  # not in the weights; every MedVSR config uses 16
        "d_state": state[f"{cross}in_proj_b.weight"].shape[0],
        "headdim": mid // state[f"{cross}A_log"].shape[0],
        "d_conv": state[f"{cross}conv1d.weight"].shape[-1],
        "cssb_mlp_ratio": width_ratio(state["cross_arc_block.mlp.fc1.weight"].shape[0], mid),
        "issr_mlp_ratio": width_ratio(state[f"{issr}mlp.fc1.weight"].shape[0], mid),
        "deformable_groups": state["deform_align.backward_1.conv_offset.6.weight"].shape[0] // 27,
        "max_residue_magnitude": 10.0,                      # not in the weights; the official default
        "hr_channels": state["conv_hr.weight"].shape[0],
        "second_order_dcn": False,
    }
    variant = (f"MedVSR x4; mid_channels {mid}, num_blocks {args['num_blocks']}, "
               f"reconstruction {args['num_reconstruct_blocks']} ({mamba_layers} Mamba-2)")
    return Detection("MedVSR", "medvsr", args, variant)


# ---- the registered sizes: one table behind the entry points, detection names and cfgs ---------------------------
_VARIANTS: dict[str, dict[str, Any]] = {
    "medvsr": {},                 # options/medvsr_train.yml: the constructor's defaults
    "test_medvsr": {"mid_channels": 32, "num_blocks": 1, "num_extract_blocks": 1, "num_reconstruct_blocks": 2},
}


# ---- pretrained cfgs -------------------------------------------------------------------------------------------
_PAPER = ("MedVSR: Medical Video Super-Resolution with Cross State-Space Propagation (ICCV 2025), "
          "arXiv:2509.21265")
_cfg = partial(PretrainedCfg, license="none stated (no license file in the official repository)", paper=_PAPER,
               origin_url="https://github.com/CUHK-AIM-Group/MedVSR")

register_cfgs({
    "medvsr.official": _cfg(
        hf_hub_id="jeffrey423/MedVSR", hf_hub_filename="*.pth", task="medical video super-resolution x4",
        test_protocol="whole-sequence inference on the HyperKvasir / LDPolyp / EndoVis18 test sets; PSNR/SSIM on "
                      "RGB, crop_border 0", protocol="medvsr",
        metrics={"HyperKvasir PSNR/SSIM (supplementary, bidirectional propagation)": "32.0958/0.9069"},
        notes="the Hub repo's single .pth (its name is not published), BasicSR {'params': ...} format"),
    "test_medvsr.untrained": _cfg(task="CI-size MedVSR (random weights)", notes="tiny; no weights"),
})


# ---- registered entry points -----------------------------------------------------------------------------------
def _create(name: str, kwargs: dict[str, Any]) -> MedVSR:
    return MedVSR(**{**_VARIANTS[name], **kwargs})


@register_model
def medvsr(**kwargs: Any) -> MedVSR:
    """MedVSR x4 as released (options/medvsr_train.yml): mid 64, 7 trunk blocks, ISSR of 10 (1 Mamba-2 layer)."""
    return _create("medvsr", kwargs)


@register_model
def test_medvsr(**kwargs: Any) -> MedVSR:
    """CI-size MedVSR: mid 32, one block per trunk, ISSR of 2 (1 Mamba-2 layer + 1 residual block)."""
    return _create("test_medvsr", kwargs)
