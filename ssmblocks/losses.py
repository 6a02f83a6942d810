"""Restoration losses: Charbonnier and VSRM's Frequency Charbonnier-like loss (FCL).

Inputs are images (B, C, H, W) or video (B, T, C, H, W), float; both losses reduce to a scalar (the mean).

FCL is formula (14) of VSRM (arXiv 2506.22762, "VSRM: A Robust Mamba-Based Framework for Video Super-Resolution";
the authors' repository PhuTran1005/VSRM publishes no code):

    L = λ · Charbonnier(I_SR, I_HR) + Σ_{i ∈ {Re, Im}} λ_i · sqrt(‖i(F(I_SR)) - i(F(I_HR))‖² + ε²)

with F the 2-D FFT of each frame, λ = 1, λ_Re = λ_Im = 0.02, ε = 1e-3. How this library reads what the formula
leaves open, and why:

- The norm is read per frequency coefficient, and the result averaged over every coefficient (mean reduction), as
  the Charbonnier term itself is: ``mean(sqrt(d² + ε²))`` over batch, frames, channels and the H x W spectrum. A
  single square root around the squared norm of the whole spectrum would be a plain (scaled) L2 distance, not the
  "Charbonnier-like" robust penalty the paper names, and its weight would depend on the batch and patch size.
- The FFT is orthonormal (``norm="ortho"``): unitary, so by Parseval a spectrum difference has the same energy as
  the pixel difference. ε then has the same meaning in both terms and the λ_i do not depend on the patch size;
  with the unnormalised FFT (``norm="backward"``) the coefficients grow with H·W and a fixed λ_i = 0.02 would
  weigh a 64² patch 16 times more than a 16² one. ``norm`` is an option of the loss for other readings.
- The full complex spectrum (``fft2``, not the half spectrum of ``rfft2``) over the last two axes (H, W), per
  channel and per frame: the paper's F is "the 2-D FFT" of a frame.
- Charbonnier is ``sqrt(d² + ε²)`` as in the paper (BasicSR's ``charbonnier_loss`` adds ε instead of ε², with
  ε = 1e-12).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CharbonnierLoss", "FrequencyCharbonnierLoss", "charbonnier"]

_FFT_NORMS = ("ortho", "backward", "forward")


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() not in (4, 5):
        raise ValueError(f"losses take images (B, C, H, W) or video (B, T, C, H, W), got shape {tuple(pred.shape)}")
    if not (pred.is_floating_point() and target.is_floating_point()):
        raise TypeError(f"losses take float tensors, got {pred.dtype} and {target.dtype}")


def charbonnier(difference: Tensor, eps: float) -> Tensor:
    """Mean of ``sqrt(difference² + eps²)`` over every element."""
    return torch.sqrt(difference * difference + eps * eps).mean()


class CharbonnierLoss(nn.Module):
    """Charbonnier (smooth L1) loss ``mean(sqrt((pred - target)² + eps²))``.

    Args:
        eps: ε of the penalty (1e-3, VSRM's value).
    """

    def __init__(self, *, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """pred, target: (B, C, H, W) or (B, T, C, H, W); returns a scalar."""
        _check_pair(pred, target)
        return charbonnier(pred - target, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class FrequencyCharbonnierLoss(nn.Module):
    """VSRM's Frequency Charbonnier-like loss (formula 14): a pixel Charbonnier term plus Charbonnier penalties on
    the real and imaginary parts of each frame's 2-D FFT. See the module docstring for how the formula is read.

    Args:
        pixel_weight: λ of the pixel Charbonnier term (1).
        real_weight, imag_weight: λ_Re and λ_Im (0.02 each).
        eps: ε of all three penalties (1e-3).
        norm: the FFT normalisation, ``"ortho"`` (default), ``"backward"`` or ``"forward"`` (torch.fft's names).
    """

    def __init__(self, *, pixel_weight: float = 1.0, real_weight: float = 0.02, imag_weight: float = 0.02,
                 eps: float = 1e-3, norm: str = "ortho") -> None:
        super().__init__()
        if norm not in _FFT_NORMS:
            raise ValueError(f"norm must be one of {_FFT_NORMS}, got {norm!r}")
        self.pixel_weight, self.real_weight, self.imag_weight = pixel_weight, real_weight, imag_weight
        self.eps, self.norm = eps, norm

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """pred, target: (B, C, H, W) or (B, T, C, H, W); the FFT runs over (H, W) of every frame and channel."""
        _check_pair(pred, target)
        difference = pred - target
        # the FFT is linear: F(pred) - F(target) = F(pred - target); fp32 at least (no half-precision FFT on CPU)
        at_least_fp32 = torch.promote_types(difference.dtype, torch.float32)
        spectrum = torch.fft.fft2(difference.to(at_least_fp32), dim=(-2, -1), norm=self.norm)
        return (self.pixel_weight * charbonnier(difference, self.eps)
                + self.real_weight * charbonnier(spectrum.real, self.eps)
                + self.imag_weight * charbonnier(spectrum.imag, self.eps))

    def extra_repr(self) -> str:
        return (f"pixel_weight={self.pixel_weight}, real_weight={self.real_weight}, imag_weight={self.imag_weight}, "
                f"eps={self.eps}, norm={self.norm!r}")
