"""FLOP counting of the scan through torch's FlopCounterMode, and ssmblocks.profile, against hand-computed counts."""

from __future__ import annotations

import torch
from scan_inputs import needs_compiler
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import ssmblocks
from ssmblocks.ops import selective_scan_fn, use_backend

pytestmark = needs_compiler   # the scan is one countable op only on the native CPU backend


def _scan_inputs(batch=2, dim=8, length=10, dstate=4):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(batch, dim, length, generator=g)
    return u, torch.rand(batch, dim, length, generator=g), -torch.rand(dim, dstate, generator=g), \
        torch.randn(batch, dstate, length, generator=g), torch.randn(batch, dstate, length, generator=g)


def test_flop_counter_mode_counts_the_scan():
    u, delta, A, B, C = _scan_inputs()
    with use_backend("selective_scan", "native"), FlopCounterMode(display=False) as counter:
        selective_scan_fn(u, delta, A, B, C, D=torch.ones(8), z=torch.randn(2, 8, 10), delta_softplus=True)
    # 9 * batch * L * dim * N for the recurrence, + batch * dim * L for D and again for z
    assert counter.get_total_flops() == 9 * 2 * 10 * 8 * 4 + 2 * 8 * 10 * 2
    with use_backend("selective_scan", "native"), FlopCounterMode(display=False) as counter:
        selective_scan_fn(u, delta, A, B, C)
    assert counter.get_total_flops() == 9 * 2 * 10 * 8 * 4


class ConvScan(nn.Module):
    """conv 3->4 (3x3) then a selective scan over the 64 pixels of each of the 4 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.A = nn.Parameter(-torch.ones(4, 2))

    def forward(self, x):
        y = self.conv(x)
        seq = y.flatten(2)  # (1, 4, 64)
        out = selective_scan_fn(seq, seq, self.A, seq[:, :2], seq[:, 2:], D=torch.ones(4))
        return out.view_as(y)


def test_profile_separates_convolutions_and_scans():
    model = ConvScan()
    result = ssmblocks.profile(model, (3, 8, 8))
    conv = 2 * (8 * 8 * 4) * (3 * 3 * 3)  # 2 FLOPs per multiply-accumulate
    scan = 9 * 1 * 64 * 4 * 2 + 1 * 4 * 64
    assert result.params == 3 * 4 * 9 + 4 + 8
    assert (result.other_flops, result.scan_flops, result.flops) == (conv, scan, conv + scan)
    assert result.input_size == (1, 3, 8, 8)
    assert "scan" in str(result)


def test_activation_memory_counts_live_intermediates():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    # the first output (4 x 8 x 8 float32) is alive while the second one is computed
    assert ssmblocks.profile(model, (1, 3, 8, 8)).activation_bytes == 2 * 4 * 64 * 4


def test_profile_of_a_zoo_model_needs_no_arithmetic():
    model = ssmblocks.create_model("test_mambair_sr")
    small, large = ssmblocks.profile(model, (3, 16, 16)), ssmblocks.profile(model, (3, 32, 32))
    assert small.scan_flops > 0 and large.scan_flops == 4 * small.scan_flops
    assert 3.9 < large.flops / small.flops < 4.1
    assert model.training
