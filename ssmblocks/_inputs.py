"""Checks of model inputs, shared by every family: layout, channels, dtype, frame count.

Models take float tensors in [0, 1]: images (B, C, H, W), video (B, T, C, H, W). ``ssmblocks.restore`` converts
integer images; a model given one raises instead of computing garbage.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_image", "check_video"]


def _check(x: Tensor, name: str, layout: str, channels: int, channel_words: str, hints: dict[int, str]) -> None:
    """Raises unless ``x`` is a float tensor laid out as ``layout`` (its rank: the letters in the brackets) with
    ``channels`` channels on dim -3, the channel axis of both images and video; ``hints[rank]`` is added to the
    error for a tensor of that rank."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} takes a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} takes float images in [0, 1], got a {x.dtype} tensor: convert it with "
                        f"x.float() / 255 (uint8), or use ssmblocks.restore(), which converts integer images")
    if x.dim() != layout.count(",") + 1:
        raise ValueError(f"{name} expects {layout}, got a {x.dim()}-D tensor of shape {tuple(x.shape)}"
                         f"{hints.get(x.dim(), '')}")
    if x.shape[-3] != channels:
        raise ValueError(f"{name} expects {channels} {channel_words}, got {x.shape[-3]} (shape {tuple(x.shape)})")


def check_image(x: Tensor, channels: int, name: str) -> None:
    """Raises if ``x`` is not a float (B, ``channels``, H, W) tensor."""
    _check(x, name, "images (B, C, H, W)", channels, "input channels",
           {5: " (a video model takes (B, T, C, H, W); this one takes images)"})


def check_video(x: Tensor, channels: int, name: str, min_frames: int = 1) -> None:
    """Raises if ``x`` is not a float (B, T, ``channels``, H, W) tensor with T >= ``min_frames``."""
    one_frame = "x.unsqueeze(1) for one frame, or " if min_frames == 1 else ""
    _check(x, name, "video (B, T, C, H, W)", channels, "channels per frame",
           {4: f" (add a time axis with T >= {min_frames} frames: {one_frame}stack consecutive frames on dim 1)"})
    if x.shape[1] < min_frames:
        raise ValueError(f"{name} needs at least {min_frames} frames, got T={x.shape[1]}")
