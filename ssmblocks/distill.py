"""Feature distillation, the DVMSR paper's training method, for any teacher/student pair of zoo models.

    distiller = Distiller(teacher, student)                 # teacher frozen, in eval mode
    optimizer = torch.optim.Adam(p for p in distiller.parameters() if p.requires_grad)  # student + adapter
    loss = distiller(lr, hr)                                # a scalar
    loss.backward(); optimizer.step()

loss = pixel_weight * L1(student(lr), hr) + feature_weight * L1(adapter(student features), teacher features).
The features are the end-level ones, before reconstruction: the output of each model's ``forward_features``,
(B, C, h, w) at the input's resolution. The adapter is a learned 1x1 convolution from the student's channels to
the teacher's when they differ, else the identity. The paper (DVMSR, arXiv:2405.03008) uses both weights 1 and
found end-level features best (mid-level features gave no gain; a 5:1 feature weight was slightly worse).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Distiller"]


def _feature_channels(model: nn.Module, role: str) -> int:
    """Channels of ``forward_features``: timm's ``num_features``, else the zoo model's ``embed_dim``."""
    if not callable(getattr(model, "forward_features", None)):
        raise TypeError(f"the {role} ({type(model).__name__}) has no forward_features method: the Distiller "
                        f"needs zoo models whose forward calls forward_features (the features before reconstruction)")
    channels = getattr(model, "num_features", None) or getattr(model, "model_args", {}).get("embed_dim")
    if not isinstance(channels, int):
        raise TypeError(f"the {role} ({type(model).__name__}) does not say how many channels its forward_features "
                        f"returns: give it a num_features attribute")
    return channels


def _forward_with_features(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(model(x), the output of the forward_features call inside it)."""
    captured: list[Tensor] = []
    forward_features = model.forward_features

    def capture(*args, **kwargs):
        features = forward_features(*args, **kwargs)
        captured.append(features)
        return features

    model.forward_features = capture              # an instance attribute shadowing the method, for this call only
    try:
        out = model(x)
    finally:
        del model.forward_features
    if len(captured) != 1:
        raise RuntimeError(f"{type(model).__name__}.forward called forward_features {len(captured)} times; the "
                           f"Distiller needs exactly one call (the features before reconstruction)")
    return out, captured[0]


class Distiller(nn.Module):
    """Trains ``student`` on (lr, hr) pairs while matching the frozen ``teacher``'s end-level features.

    Inputs of ``forward``: lr (B, C, h, w) and hr (B, C, sh, sw), float in [0, 1]; returns the scalar loss.
    The teacher is frozen (``requires_grad`` off) and stays in eval mode whatever ``train()`` is called with; the
    trainable parameters are the student's and the adapter's.

    Args:
        teacher, student: models whose ``forward`` calls ``forward_features`` once (every zoo image model).
        feature_weight: weight of the feature L1 term (the paper's lambda, 1).
        pixel_weight: weight of the L1 term against hr (1 in the paper).
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, *, feature_weight: float = 1.0,
                 pixel_weight: float = 1.0) -> None:
        super().__init__()
        teacher_channels = _feature_channels(teacher, "teacher")
        student_channels = _feature_channels(student, "student")
        self.teacher = teacher.eval().requires_grad_(False)
        self.student = student
        reference = next(student.parameters())
        self.adapter = (nn.Identity() if student_channels == teacher_channels else
                        nn.Conv2d(student_channels, teacher_channels, 1, device=reference.device,
                                  dtype=reference.dtype))
        self.feature_weight, self.pixel_weight = feature_weight, pixel_weight

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, lr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            _, target = _forward_with_features(self.teacher, lr)
        sr, features = _forward_with_features(self.student, lr)
        if sr.shape != hr.shape:
            raise ValueError(f"the student restores lr {tuple(lr.shape)} to {tuple(sr.shape)}, but hr has shape "
                             f"{tuple(hr.shape)}")
        features = self.adapter(features)
        if features.shape != target.shape:
            raise ValueError(f"student features {tuple(features.shape)} (after the adapter) and teacher features "
                             f"{tuple(target.shape)} differ: the two models must keep the input's resolution in "
                             f"forward_features")
        return self.pixel_weight * F.l1_loss(sr, hr) + self.feature_weight * F.l1_loss(features, target)
