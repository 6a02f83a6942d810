"""PSNR / SSIM against values computed independently here (closed forms and plain loops on hand-made images)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssmblocks.metrics import calculate_psnr, calculate_ssim


def _images(seed: int = 0, shape=(16, 19, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, shape).astype(np.uint8)
    noise = rng.integers(-9, 10, shape)
    return img, np.clip(img.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _psnr_loop(a: np.ndarray, b: np.ndarray) -> float:
    total, count = 0.0, 0
    for value, other in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist(), strict=True):
        total += (float(value) - float(other)) ** 2
        count += 1
    return 10 * math.log10(255**2 / (total / count))


def _y_loop(img: np.ndarray) -> np.ndarray:
    """BasicSR's Y: float32 /255, BT.601 in float64 on (B, G, R), float32 /255, float32 *255."""
    out = np.zeros(img.shape[:2], dtype=np.float64)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            r, g, b = (np.float32(v) / np.float32(255) for v in img[i, j])
            y = 24.966 * float(b) + 128.553 * float(g) + 65.481 * float(r) + 16.0
            out[i, j] = float(np.float32(np.float32(y / 255.0) * np.float32(255.0)))
    return out[..., None]


def _ssim_loop(a: np.ndarray, b: np.ndarray) -> float:
    """Per channel: 11x11 Gaussian (sigma 1.5) statistics at every valid window position, averaged."""
    g = [math.exp(-((k - 5) ** 2) / (2 * 1.5**2)) for k in range(11)]
    g = [v / sum(g) for v in g]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    channel_means = []
    for c in range(a.shape[2]):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        values = []
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                w = np.outer(g, g)
                px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy, cxy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2, (w * px * py).sum() - mx * my
                values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
        channel_means.append(sum(values) / len(values))
    return sum(channel_means) / len(channel_means)


def test_psnr_closed_form():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert calculate_psnr(a, a + 1, 0) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert calculate_psnr(a, a, 0) == math.inf


def test_psnr_with_crop_and_y_channel():
    img, img2 = _images()
    assert calculate_psnr(img, img2, 0) == pytest.approx(_psnr_loop(img, img2), abs=1e-10)
    assert calculate_psnr(img, img2, 3) == pytest.approx(_psnr_loop(img[3:-3, 3:-3], img2[3:-3, 3:-3]), abs=1e-10)
    expected = _psnr_loop(_y_loop(img[2:-2, 2:-2]), _y_loop(img2[2:-2, 2:-2]))
    assert calculate_psnr(img, img2, 2, test_y_channel=True) == pytest.approx(expected, abs=1e-9)


def test_float_images_in_0_255_and_chw_order():
    img, img2 = _images(1)
    assert calculate_psnr(img.astype(np.float64), img2.astype(np.float64), 1) == pytest.approx(
        calculate_psnr(img, img2, 1), abs=1e-12)
    assert calculate_psnr(img.transpose(2, 0, 1), img2.transpose(2, 0, 1), 1, "CHW") == pytest.approx(
        calculate_psnr(img, img2, 1), abs=1e-12)


def test_ssim_closed_form_for_constant_images():
    c, d = 90.0, 120.0
    c1 = (0.01 * 255) ** 2
    a, b = np.full((12, 13, 1), c), np.full((12, 13, 1), d)
    assert calculate_ssim(a, b, 0) == pytest.approx((2 * c * d + c1) / (c * c + d * d + c1), abs=1e-12)
    assert calculate_ssim(a, a, 0) == pytest.approx(1.0, abs=1e-12)


def test_ssim_against_window_loop():
    img, img2 = _images(2)
    assert calculate_ssim(img, img2, 0) == pytest.approx(_ssim_loop(img, img2), abs=1e-10)
    expected = _ssim_loop(_y_loop(img[1:-1, 1:-1]), _y_loop(img2[1:-1, 1:-1]))
    assert calculate_ssim(img, img2, 1, test_y_channel=True) == pytest.approx(expected, abs=1e-10)


def test_tensors_are_measured_as_basicsr_saves_them():
    img, img2 = _images(3)
    # values a little off the 8-bit grid, and out of range: tensor2img clamps, scales and rounds
    t = torch.from_numpy(img).permute(2, 0, 1).double() / 255 + 0.3 / 255
    t2 = torch.from_numpy(img2).permute(2, 0, 1).double() / 255 - 0.2 / 255
    t2[0, 0, 0] = 1.7
    img2_expected = img2.copy()
    img2_expected[0, 0, 0] = 255
    assert calculate_psnr(t, t2, 0) == pytest.approx(_psnr_loop(img, img2_expected), abs=1e-10)
    assert calculate_ssim(t.unsqueeze(0), t2.unsqueeze(0), 0) == pytest.approx(_ssim_loop(img, img2_expected),
                                                                               abs=1e-10)


def test_video_and_batches_average_over_frames():
    pairs = [_images(seed) for seed in (4, 5, 6, 7)]
    frames = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
    expected = sum(_psnr_loop(a, b) for a, b in pairs) / 4
    assert calculate_psnr(*frames, 0) == pytest.approx(expected, abs=1e-10)
    video = [torch.from_numpy(f).permute(0, 3, 1, 2).reshape(2, 2, 3, 16, 19).float() / 255 for f in frames]
    assert calculate_psnr(*video, 0) == pytest.approx(expected, abs=1e-10)


def test_bad_input():
    img, img2 = _images()
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_psnr(img, img2[:-1], 0)
    with pytest.raises(TypeError, match="not one of each"):
        calculate_psnr(img, torch.zeros(3, 16, 19), 0)
    with pytest.raises(ValueError, match="at least 11x11"):
        calculate_ssim(img, img2, 4)
