"""The Distiller: its loss, what it trains (student and adapter only), the frozen teacher, any pair of zoo models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ssmblocks
from ssmblocks.distill import Distiller


def _pair(teacher_dim: int = 24) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return ssmblocks.create_model("test_dvmsr", embed_dim=teacher_dim), ssmblocks.create_model("test_dvmsr")


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 6, 7, generator=generator), torch.rand(2, 3, 24, 28, generator=generator)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_loss_falls_and_only_the_student_and_adapter_change():
    teacher, student = _pair()
    distiller = Distiller(teacher, student)
    assert isinstance(distiller.adapter, torch.nn.Conv2d) and distiller.adapter.weight.shape == (24, 16, 1, 1)
    trainable = [p for p in distiller.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in [*student.parameters(), *distiller.adapter.parameters()]}
    before = {"teacher": _snapshot(teacher), "student": _snapshot(student), "adapter": _snapshot(distiller.adapter)}
    optimizer = torch.optim.Adam(trainable, lr=3e-3)
    lr, hr = _data()
    distiller.train()
    assert student.training and not teacher.training
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = distiller(lr, hr)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert loss.dim() == 0 and losses[-1] < 0.9 * losses[0]
    after = {name: module.state_dict() for name, module in
             (("teacher", teacher), ("student", student), ("adapter", distiller.adapter))}
    assert all(torch.equal(after["teacher"][k], v) for k, v in before["teacher"].items())
    assert all(p.grad is None for p in teacher.parameters())
    for part in ("student", "adapter"):
        assert any(not torch.equal(after[part][k], v) for k, v in before[part].items()), part


@pytest.mark.parametrize(("feature_weight", "pixel_weight"), [(1.0, 1.0), (0.0, 1.0), (2.5, 0.5)])
def test_loss_is_the_weighted_sum_of_the_two_l1_terms(feature_weight, pixel_weight):
    """The features are read independently here, with hooks on the models' final LayerNorm (DVMSR's norm_f)."""
    teacher, student = _pair()
    distiller = Distiller(teacher, student, feature_weight=feature_weight, pixel_weight=pixel_weight).eval()
    features = {}
    for name, model in (("teacher", teacher), ("student", student)):
        model.norm_f.register_forward_hook(lambda m, i, out, name=name: features.__setitem__(name, out))
    lr, hr = _data()
    with torch.no_grad():
        loss = distiller(lr, hr)
        sr = student(lr)
        teacher(lr)
        student_features = distiller.adapter(features["student"].permute(0, 3, 1, 2))
        expected = pixel_weight * (sr - hr).abs().mean() + feature_weight * (
            student_features - features["teacher"].permute(0, 3, 1, 2)).abs().mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)


def test_equal_widths_need_no_adapter_and_any_zoo_pair_works():
    teacher, student = _pair(teacher_dim=16)
    assert isinstance(Distiller(teacher, student).adapter, torch.nn.Identity)
    # a MambaIR teacher (x4 light, 32 channels) for a DVMSR student
    mambair = ssmblocks.create_model("test_mambair_light")
    distiller = Distiller(mambair, student)
    assert distiller.adapter.weight.shape == (32, 16, 1, 1)
    lr, hr = _data()
    distiller(lr, hr).backward()
    assert all(p.grad is not None for p in student.parameters()) and distiller.adapter.weight.grad is not None


def test_bad_pairs_and_shapes_are_explained():
    teacher, student = _pair()
    with pytest.raises(TypeError, match="has no forward_features method"):
        Distiller(torch.nn.Conv2d(3, 3, 3), student)
    lr, hr = _data()
    with pytest.raises(ValueError, match=r"restores lr \(2, 3, 6, 7\) to \(2, 3, 24, 28\), but hr has shape"):
        Distiller(teacher, student)(lr, F.interpolate(hr, scale_factor=0.5))
