"""Conversions between what users pass to ``restore`` and the float tensors models take.

Accepted: tensors (C, H, W), (B, C, H, W) images or (B, T, C, H, W) video; numpy images (H, W) / (H, W, C) or
frame stacks (T, H, W, C); PIL images, float ("F", e.g. float TIFF) and 16-bit images included; file paths (read
with Pillow). Float data must lie in [0, 1] unless the caller accepts unclipped values (a noisy image as a denoising
model is trained on); integer data is scaled from its type's range (uint8: 255, uint16: 65535) and scaled back on
output. Empty tensors and NaN / Inf values are refused. A fourth (alpha) channel
is set aside, upscaled bicubically and put back; grey inputs to colour models (and the reverse) are converted with
a warning. The output has the input's kind, layout, dtype and channel count.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Prepared", "prepare_input"]

_INT_RANGES = {torch.uint8: 255.0, torch.uint16: 65535.0}
# Pillow modes with an alpha band (LAB's "A" band is a colour axis, not alpha)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
# ITU-R BT.601 luma (the weights Pillow's "L" conversion uses)
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class Prepared:
    """A float batch for the model and the function that turns the model's output back into the input's kind.

    ``tensor``: (N, C, H, W) images or (N, T, C, H, W) video, float in [0, 1], ``C`` = the model's channels.
    ``finish(output)``: the model's output (same rank, scaled), already clamped to [0, 1] -> the user's kind.
    """

    tensor: Tensor
    finish: Callable[[Tensor], Any]
    video: bool


def _luma(x: Tensor, dim: int) -> Tensor:
    r, g, b = x.unbind(dim)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(dim)


def _match_channels(x: Tensor, channels: int, dim: int) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """x with ``channels`` channels on ``dim`` (grey <-> RGB, with a warning), and the inverse for the output."""
    have = x.shape[dim]
    if have == channels:
        return x, lambda y: y
    if have == 1 and channels == 3:
        warnings.warn("the model takes colour images: the grey input is repeated on 3 channels and the output "
                      "converted back to grey (BT.601 luma)", stacklevel=4)
        return x.repeat_interleave(3, dim), lambda y: _luma(y, dim)
    if have == 3 and channels == 1:
        warnings.warn("the model takes grey images: the colour input is converted to grey (BT.601 luma) and the "
                      "output is grey", stacklevel=4)
        return _luma(x, dim), lambda y: y
    raise ValueError(f"the model takes {channels}-channel images, got {have} channels; pass grey (1), RGB (3) or "
                     f"RGBA (4) images")


def _check_values(x: Tensor, unclipped: bool) -> None:
    if not torch.isfinite(x).all():
        raise ValueError("the input contains NaN or Inf values")
    lo, hi = x.min().item(), x.max().item()
    if not unclipped and (lo < -1e-3 or hi > 1 + 1e-3):
        raise ValueError(f"float images must be in [0, 1] (got values in [{lo:.3g}, {hi:.3g}]); divide 8-bit data by "
                         f"255 or pass it as uint8; a noisy image whose values left [0, 1] (the input of a denoising "
                         f"model, as training feeds it) is accepted with unclipped=True (command line: --unclipped)")


def _to_float(x: Tensor, unclipped: bool = False) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """Float tensor in [0, 1] (or, ``unclipped``, any finite values) and the inverse (integer types are scaled from
    and back to their range)."""
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"models take float images in [0, 1] (or uint8 / uint16 images), got {x.dtype}")
    if x.is_floating_point():
        _check_values(x, unclipped)
        dtype = x.dtype
        return x, lambda y: y.to(dtype)
    if x.dtype not in _INT_RANGES:
        raise ValueError(f"models take float images in [0, 1]; integer images must be uint8 or uint16, got {x.dtype}")
    peak, dtype = _INT_RANGES[x.dtype], x.dtype
    return x.float() / peak, lambda y: (y * peak).round_().to(dtype)


def _split_alpha(x: Tensor, dim: int, channels: int) -> tuple[Tensor, Tensor | None]:
    if x.shape[dim] == 4 and channels != 4:
        return x.narrow(dim, 0, 3), x.narrow(dim, 3, 1)
    if x.shape[dim] == 2 and channels != 2:  # grey + alpha (Pillow "LA")
        return x.narrow(dim, 0, 1), x.narrow(dim, 1, 1)
    return x, None


def _resize_alpha(alpha: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic resize of an alpha plane (..., 1, h, w) -> (..., 1, *size), clamped to [0, 1]."""
    lead = alpha.shape[:-3]
    flat = alpha.reshape(-1, 1, *alpha.shape[-2:]).float()
    out = F.interpolate(flat, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    return out.reshape(*lead, 1, *size)


def _prepare_channels_first(x: Tensor, channels: int, video: bool) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """(N, C, H, W) or (N, T, C, H, W) float in [0, 1] -> model input, and output -> same layout and channels."""
    dim = 2 if video else 1
    colour, alpha = _split_alpha(x, dim, channels)
    model_in, back = _match_channels(colour, channels, dim)

    def finish(y: Tensor) -> Tensor:
        y = back(y)
        if alpha is not None:
            y = torch.cat([y, _resize_alpha(alpha, tuple(y.shape[-2:])).to(y)], dim)
        return y

    return model_in, finish


def _from_tensor(x: Tensor, channels: int, unclipped: bool = False) -> Prepared:
    if x.dim() not in (3, 4, 5):
        raise ValueError(f"restore takes images (C, H, W) / (B, C, H, W) or video (B, T, C, H, W), got a "
                         f"{x.dim()}-D tensor of shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"the input is empty (shape {tuple(x.shape)}): images need at least one pixel, one channel "
                         f"and one image (and video one frame)")
    single = x.dim() == 3
    batch = x.unsqueeze(0) if single else x
    data, to_dtype = _to_float(batch, unclipped)
    model_in, back = _prepare_channels_first(data, channels, video=x.dim() == 5)

    def finish(y: Tensor) -> Tensor:
        out = to_dtype(back(y))
        return out[0] if single else out

    return Prepared(model_in.contiguous(), finish, video=x.dim() == 5)


def _from_numpy(x: np.ndarray, channels: int, unclipped: bool = False) -> Prepared:
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"numpy images are (H, W), (H, W, C) or frames (T, H, W, C), got shape {x.shape}")
    if x.ndim > 2 and x.shape[-1] not in (1, 2, 3, 4, channels):
        first = "the first axis" if x.ndim == 3 else "the second axis"
        hint = (f"; {first} looks like channels: pass x.transpose({'1, 2, 0' if x.ndim == 3 else '0, 2, 3, 1'})"
                if x.shape[-3] in (1, 2, 3, 4, channels) else "")
        raise ValueError(f"numpy images are (H, W, C) (channels last), frames (T, H, W, C); got shape {x.shape}, "
                         f"{x.shape[-1]} channels{hint}")
    grey = x.ndim == 2
    hwc = torch.from_numpy(np.array(x[..., None] if grey else x))  # a copy: the input may be read-only
    chw = hwc.movedim(-1, -3)  # (C, H, W) or (T, C, H, W)
    prepared = _from_tensor(chw.unsqueeze(0) if x.ndim == 4 else chw, channels, unclipped)

    def finish(y: Tensor) -> np.ndarray:
        out = prepared.finish(y)
        out = out[0] if x.ndim == 4 else out
        out = out.movedim(-3, -1).cpu().numpy()
        return out[..., 0] if grey else out

    return Prepared(prepared.tensor, finish, prepared.video)


def _from_pil(image: Any, channels: int, unclipped: bool = False) -> Prepared:
    """A PIL image: 8-bit modes as uint8, 16-bit ("I;16*", "I") as uint16, "F" (a float TIFF) as float32 values in
    [0, 1] (written back as "F"); other modes are converted to RGB, or RGBA when they carry transparency (a band
    named "A" is not alpha in every mode: LAB's is a colour axis)."""
    from PIL import Image

    mode = image.mode
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image)
        if array.dtype != np.uint16 and (array.min() < 0 or array.max() > 65535):
            raise ValueError(f"a Pillow {mode!r} image with values outside [0, 65535] is not a 16-bit image")
        array = array.astype(np.uint16)
    elif mode in ("L", "RGB", "RGBA", "LA"):
        array = np.asarray(image)
    else:
        alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
        array = np.asarray(image.convert("RGBA" if alpha else "RGB"))
    prepared = _from_numpy(array, channels, unclipped)

    def finish(y: Tensor) -> Any:
        out = prepared.finish(y)
        grey = out.ndim == 3 and out.shape[-1] == 1   # (H, W, 1) from a grey model: an "L" image
        return Image.fromarray(out[..., 0] if grey else out)

    return Prepared(prepared.tensor, finish, prepared.video)


def prepare_input(x: Any, channels: int, *, unclipped: bool = False) -> Prepared:
    """Converts a tensor, numpy image, PIL image or path for a model with ``channels`` input channels; float data
    outside [0, 1] is refused unless ``unclipped``."""
    if isinstance(x, Tensor):
        return _from_tensor(x, channels, unclipped)
    if isinstance(x, np.ndarray):
        return _from_numpy(x, channels, unclipped)
    if isinstance(x, (str, os.PathLike)):
        from ssmblocks.inference.images import read_image

        return _from_pil(read_image(Path(x)), channels, unclipped)
    if type(x).__module__.startswith("PIL."):
        return _from_pil(x, channels, unclipped)
    raise TypeError(f"restore takes a tensor, a numpy array, a PIL image or a path, got {type(x).__name__}")
