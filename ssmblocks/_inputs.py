"""Checks of model inputs, shared by every family: layout, channels, dtype, frame count.

Models take float tensors in [0, 1]: images (B, C, H, W), video (B, T, C, H, W). ``ssmblocks.restore`` converts
integer images; a model given one raises instead of computing garbage.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_image", "check_video"]


def _check_float(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} takes a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} takes float images in [0, 1], got a {x.dtype} tensor: convert it with "
                        f"x.float() / 255 (uint8), or use ssmblocks.restore(), which converts integer images")


def check_image(x: Tensor, channels: int, name: str) -> None:
    """Raises if ``x`` is not a float (B, ``channels``, H, W) tensor."""
    _check_float(x, name)
    if x.dim() != 4:
        hint = " (a video model takes (B, T, C, H, W); this one takes images)" if x.dim() == 5 else ""
        raise ValueError(f"{name} expects images (B, C, H, W), got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} expects {channels} input channels, got {x.shape[1]} (shape {tuple(x.shape)})")


def check_video(x: Tensor, channels: int, name: str, min_frames: int = 1) -> None:
    """Raises if ``x`` is not a float (B, T, ``channels``, H, W) tensor with T >= ``min_frames``."""
    _check_float(x, name)
    if x.dim() != 5:
        hint = " (add a time axis: x.unsqueeze(1) for one frame, or stack frames on dim 1)" if x.dim() == 4 else ""
        raise ValueError(f"{name} expects video (B, T, C, H, W), got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}{hint}")
    if x.shape[2] != channels:
        raise ValueError(f"{name} expects {channels} channels per frame, got {x.shape[2]} (shape {tuple(x.shape)})")
    if x.shape[1] < min_frames:
        raise ValueError(f"{name} needs at least {min_frames} frames, got T={x.shape[1]}")
