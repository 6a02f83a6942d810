"""PSNR and SSIM exactly as BasicSR computes them, the numbers every MambaIR-family paper reports.

``calculate_psnr(img, img2, crop_border, input_order='HWC', test_y_channel=False)`` and ``calculate_ssim(...)``
keep BasicSR's names and argument order (XPixelGroup/BasicSR ``basicsr/metrics/psnr_ssim.py`` at 8d56e3a), so a
script ports by changing its import. Semantics, from that file and ``basicsr/metrics/metric_util.py``:

- numpy images are RGB, HWC (or HW), uint8 or float in [0, 255], or uint16 (scaled to [0, 255] by / 257, so a
  16-bit copy of an 8-bit image scores as the original) (BasicSR reads BGR; the Y formula below is the
  same channel weighting); ``crop_border`` pixels are removed on every side first.
- Y channel (``test_y_channel``): the image goes to float32 / 255, Y = 16 + 65.481 R + 128.553 G + 24.966 B is
  computed in float64, stored as float32 / 255 and multiplied by 255 in float32 (BT.601, MATLAB ``rgb2ycbcr``;
  BasicSR's ``to_y_channel``), unrounded.
- PSNR: MSE in float64, 10 log10(255^2 / MSE); identical images give inf.
- SSIM: 11x11 Gaussian window (sigma 1.5), valid region only, c1 = (0.01 * 255)^2, c2 = (0.03 * 255)^2, float64,
  the mean over each channel's map, averaged over channels.

torch tensors in [0, 1], (C, H, W) or (B, C, H, W) or video (B, T, C, H, W), are first turned into the uint8
images BasicSR's validation measures (``tensor2img``: clamp to [0, 1], x255 in float32, round half to even); the
result is the mean over images (and frames), as BasicSR averages per-image values over a test set. Scores of
video are the mean over all frames.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["calculate_psnr", "calculate_ssim", "gaussian_window", "to_y_channel"]

_Y_WEIGHTS_BGR = (24.966, 128.553, 65.481)  # applied to B, G, R in this order, as BasicSR does on BGR images


def to_y_channel(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 255] -> (H, W, 1) Y in [0, 255], float32, unrounded (BasicSR's ``to_y_channel``).
    Other channel counts are returned as float32 unchanged."""
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        bgr = img[..., ::-1].astype(np.float64)
        y = bgr @ np.asarray(_Y_WEIGHTS_BGR) + 16.0
        img = (y / 255.0).astype(np.float32)[..., None]
    return img * np.float32(255.0)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """(size, size) float64 Gaussian window summing to 1 (OpenCV's ``getGaussianKernel`` outer product)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(coords**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return np.outer(kernel, kernel)


def _valid_filter(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """2-D correlation of (H, W) float64 with the window, valid region only."""
    size = window.shape[0]
    views = np.lib.stride_tricks.sliding_window_view(img, (size, size))
    return np.einsum("ijkl,kl->ij", views, window)


def _ssim_channel(img: np.ndarray, img2: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = gaussian_window()
    mu1, mu2 = _valid_filter(img, window), _valid_filter(img2, window)
    sigma1_sq = _valid_filter(img * img, window) - mu1**2
    sigma2_sq = _valid_filter(img2 * img2, window) - mu2**2
    sigma12 = _valid_filter(img * img2, window) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * sigma12 + c2)) / ((mu1**2 + mu2**2 + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def _psnr_image(img: np.ndarray, img2: np.ndarray) -> float:
    mse = np.mean((img.astype(np.float64) - img2.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim_image(img: np.ndarray, img2: np.ndarray) -> float:
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    if min(img.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after cropping, got {img.shape[0]}x{img.shape[1]}")
    return float(np.mean([_ssim_channel(img[..., c], img2[..., c]) for c in range(img.shape[2])]))


def _tensor_to_images(x: Tensor) -> list[np.ndarray]:
    """(C, H, W) / (B, C, H, W) / (B, T, C, H, W) in [0, 1] -> uint8 HWC images (BasicSR ``tensor2img``)."""
    if x.dim() not in (3, 4, 5):
        raise ValueError(f"metrics take tensors (C, H, W), (B, C, H, W) or (B, T, C, H, W), got shape {tuple(x.shape)}")
    frames = x.detach().float().cpu().reshape(-1, *x.shape[-3:]).clamp(0, 1)
    return list((frames * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


def _at_8_bit_scale(img: np.ndarray) -> np.ndarray:
    """uint16 -> float64 in [0, 255] (65535 / 257 = 255); other arrays as they are."""
    return img.astype(np.float64) / 257.0 if img.dtype == np.uint16 else img


def _pairs(img: Any, img2: Any, input_order: str) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(img, Tensor) != isinstance(img2, Tensor):
        raise TypeError("pass two numpy images or two tensors, not one of each")
    if img.shape != img2.shape:
        raise ValueError(f"image shapes differ: {tuple(img.shape)} vs {tuple(img2.shape)}")
    if isinstance(img, Tensor):
        return list(zip(_tensor_to_images(img), _tensor_to_images(img2), strict=True))
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    img, img2 = _at_8_bit_scale(np.asarray(img)), _at_8_bit_scale(np.asarray(img2))
    if img.ndim == 2:
        img, img2 = img[..., None], img2[..., None]
    elif img.ndim == 3 and input_order == "CHW":
        img, img2 = img.transpose(1, 2, 0), img2.transpose(1, 2, 0)
    elif img.ndim == 4:  # frames (T, H, W, C)
        return [(a, b) for a, b in zip(img, img2, strict=True)]
    elif img.ndim != 3:
        raise ValueError(f"numpy images are (H, W), (H, W, C) or frames (T, H, W, C), got shape {img.shape}")
    return [(img, img2)]


def _prepared(img: np.ndarray, crop_border: int, test_y_channel: bool) -> np.ndarray:
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    return to_y_channel(img) if test_y_channel else img


def calculate_psnr(img: Any, img2: Any, crop_border: int, input_order: str = "HWC", test_y_channel: bool = False,
                   **kwargs: Any) -> float:
    """PSNR in dB as BasicSR computes it (see the module docstring); the mean over images/frames of a batch."""
    scores = [_psnr_image(_prepared(a, crop_border, test_y_channel), _prepared(b, crop_border, test_y_channel))
              for a, b in _pairs(img, img2, input_order)]
    return float(np.mean(scores))


def calculate_ssim(img: Any, img2: Any, crop_border: int, input_order: str = "HWC", test_y_channel: bool = False,
                   **kwargs: Any) -> float:
    """SSIM as BasicSR computes it (see the module docstring); the mean over images/frames of a batch."""
    scores = [_ssim_image(_prepared(a, crop_border, test_y_channel), _prepared(b, crop_border, test_y_channel))
              for a, b in _pairs(img, img2, input_order)]
    return float(np.mean(scores))
