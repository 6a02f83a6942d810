"""What the zoo's BasicVSR++-style video models (MedVSR, VSRM) share: the stacking of the propagation branches and
the frame-by-frame x4 reconstruction head. Layouts: clips (B, T, C, H, W); the head's key names (upconv1, upconv2,
conv_hr, conv_last) are BasicVSR++'s, which MedVSR's official checkpoints keep (CUHK-AIM-Group/MedVSR at 342150504e2,
``basicsr/archs/medvsr_arch.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._contract import ModelContract
from ssmblocks._inputs import check_video
from ssmblocks.necks import BRANCHES

__all__ = ["SecondOrderVSR"]


class SecondOrderVSR(nn.Module):
    """Base of the recurrent second-order video models. A subclass builds ``reconstruction`` (a module mapping
    (B, 5 mid, H, W) -> (B, mid, H, W)), calls ``build_x4_head`` and defines ``forward_features``
    ((B, T, 3, H, W) -> (B, T, 5 mid, H, W)); ``forward`` is shared."""

    family = ""
    supports_fp16 = False
    supports_bf16 = True
    min_frames = 2      # second-order propagation needs a neighbour

    @property
    def contract(self) -> ModelContract:
        """x4 video super-resolution of RGB clips (B, T >= 2, 3, H, W); any frame size."""
        return ModelContract(scale=4, in_chans=3, out_chans=3, input_kind="video", min_frames=self.min_frames,
                             supports_fp16=self.supports_fp16, supports_bf16=self.supports_bf16)

    def build_x4_head(self, mid_channels: int, hr_channels: int) -> None:
        """Two conv + pixel-shuffle x2 steps (mid -> hr_channels), a conv and the output conv to RGB."""
        self.upconv1 = nn.Conv2d(mid_channels, mid_channels * 4, 3, padding=1)
        self.upconv2 = nn.Conv2d(mid_channels, hr_channels * 4, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(hr_channels, hr_channels, 3, padding=1)
        self.conv_last = nn.Conv2d(hr_channels, 3, 3, padding=1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    @staticmethod
    def stack_branches(feats: dict[str, list[Tensor]], frames: int) -> Tensor:
        """Per-branch lists of T maps (B, mid, H, W) -> (B, T, 5 mid, H, W): cat[spatial, backward_1, forward_1,
        backward_2, forward_2] per frame."""
        return torch.stack([torch.cat([feats[k][t] for k in ("spatial", *BRANCHES)], dim=1) for t in range(frames)],
                           dim=1)

    def forward(self, lqs: Tensor) -> Tensor:
        """(B, T, 3, H, W) in [0, 1] -> (B, T, 3, 4H, 4W): features, then frame by frame (peak memory of one HR
        frame) reconstruction, the x4 head and the bilinear x4 of the input frame added."""
        check_video(lqs, 3, type(self).__name__, min_frames=self.min_frames)
        features = self.forward_features(lqs)
        outputs = []
        for t in range(lqs.shape[1]):
            hr = self.reconstruction(features[:, t])
            hr = self.lrelu(self.pixel_shuffle(self.upconv1(hr)))
            hr = self.lrelu(self.pixel_shuffle(self.upconv2(hr)))
            hr = self.conv_last(self.lrelu(self.conv_hr(hr)))
            outputs.append(hr + F.interpolate(lqs[:, t], scale_factor=4, mode="bilinear", align_corners=False))
        return torch.stack(outputs, dim=1)
