"""Losses: Charbonnier and VSRM's Frequency Charbonnier-like loss against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssmblocks.losses import CharbonnierLoss, FrequencyCharbonnierLoss


def _dft_matrix(n: int, norm: str) -> np.ndarray:
    k = np.arange(n)
    matrix = np.exp(-2j * np.pi * np.outer(k, k) / n)
    return matrix / {"ortho": np.sqrt(n), "backward": 1.0, "forward": n}[norm]


def _fcl_direct(pred: np.ndarray, target: np.ndarray, norm: str, eps: float = 1e-3) -> float:
    """Formula (14) read per coefficient, with the 2-D DFT written as two matrix products per frame."""
    height, width = pred.shape[-2:]
    rows, cols = _dft_matrix(height, norm), _dft_matrix(width, norm)
    spec_pred = rows @ pred.astype(complex) @ cols.T
    spec_target = rows @ target.astype(complex) @ cols.T

    def charb(d):
        return np.mean(np.sqrt(d ** 2 + eps ** 2))

    return (charb(pred - target) + 0.02 * charb(spec_pred.real - spec_target.real)
            + 0.02 * charb(spec_pred.imag - spec_target.imag))


@pytest.mark.parametrize("norm", ["ortho", "backward"])
@pytest.mark.parametrize("shape", [(2, 3, 6, 5), (1, 3, 2, 4, 7)])   # images and video
def test_fcl_equals_direct_dft(shape, norm):
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.rand(shape, generator=gen, dtype=torch.float64), torch.rand(shape, generator=gen,
                                                                                        dtype=torch.float64)
    loss = FrequencyCharbonnierLoss(norm=norm)(pred, target)
    assert loss.item() == pytest.approx(_fcl_direct(pred.numpy(), target.numpy(), norm), rel=1e-12)


def test_fcl_weights_are_vsrm_values():
    pred, target = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    pred[..., 0, 0] = 2.0   # one pixel: its spectrum is flat, real part 2/4 = 0.5 everywhere (ortho), imaginary 0
    expected = (15 * 1e-3 + np.sqrt(4 + 1e-6)) / 16 + 0.02 * np.sqrt(0.25 + 1e-6) + 0.02 * 1e-3
    assert FrequencyCharbonnierLoss()(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_fcl_is_minimal_for_identical_inputs():
    torch.manual_seed(0)
    loss = FrequencyCharbonnierLoss()
    target = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    floor = loss(target, target)
    assert floor.item() == pytest.approx((1 + 0.02 + 0.02) * 1e-3, rel=1e-12)   # every term at sqrt(eps²)
    pred = target.clone().requires_grad_(True)
    loss(pred, target).backward()
    assert pred.grad.abs().max().item() < 1e-12   # a stationary point ...
    for scale in (1e-6, 1e-3, 1e-1):              # ... and every perturbation raises the loss
        assert loss(target + scale * torch.randn_like(target), target) > floor


def test_charbonnier_formula():
    pred, target = torch.tensor([[[[0.0, 3.0]]]]), torch.tensor([[[[0.0, -1.0]]]])
    eps = 0.5
    expected = (np.sqrt(eps ** 2) + np.sqrt(16 + eps ** 2)) / 2
    assert CharbonnierLoss(eps=eps)(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_losses_refuse_bad_input():
    loss = FrequencyCharbonnierLoss()
    with pytest.raises(ValueError, match="shapes differ"):
        loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"images \(B, C, H, W\) or video"):
        loss(torch.rand(3, 4, 4), torch.rand(3, 4, 4))
    with pytest.raises(TypeError, match="float tensors"):
        CharbonnierLoss()(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="norm must be one of"):
        FrequencyCharbonnierLoss(norm="unitary")


def test_fcl_runs_under_bf16():
    pred, target = torch.rand(1, 3, 8, 8, dtype=torch.bfloat16), torch.rand(1, 3, 8, 8, dtype=torch.bfloat16)
    reference = FrequencyCharbonnierLoss()(pred.float(), target.float())
    assert FrequencyCharbonnierLoss()(pred, target).float().item() == pytest.approx(reference.item(), rel=1e-2)
