"""Validation on held-out images: PSNR and SSIM (BasicSR's definitions, from ``ssmblocks.metrics``)."""

from __future__ import annotations

import torch
from torch import nn

from ssmblocks.train.data import PairedFrames

__all__ = ["validate"]


@torch.no_grad()
def validate(model: nn.Module, dataset: PairedFrames, device: torch.device, *, crop_border: int,
             test_y_channel: bool = False, bf16: bool = False) -> dict[str, float]:
    """Mean PSNR and SSIM of ``model``'s outputs (clamped to [0, 1]) over every frame of ``dataset`` (whole
    frames, inputs made deterministically). The model is left in eval mode."""
    from ssmblocks.metrics import calculate_psnr, calculate_ssim  # built on the public API, imported on use

    model.eval()
    psnr = ssim = 0.0
    frames = 0
    for index in range(len(dataset)):
        lq, gt = dataset[(index, 0)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(lq.unsqueeze(0).to(device))
        out = out.float().clamp(0, 1).squeeze(0).cpu()
        # images (C, H, W) -> one frame; clips (T, C, H, W) -> T frames
        for restored, truth in zip(out.reshape(-1, *out.shape[-3:]), gt.reshape(-1, *gt.shape[-3:]), strict=True):
            psnr += float(calculate_psnr(restored[None], truth[None], crop_border, test_y_channel=test_y_channel))
            ssim += float(calculate_ssim(restored[None], truth[None], crop_border, test_y_channel=test_y_channel))
            frames += 1
    return {"val_psnr": psnr / frames, "val_ssim": ssim / frames}
