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

``inherit_weights(teacher, student)`` initialises a narrower student of the teacher's family from the teacher's
weights (weight inheritance): every tensor keeps the teacher's leading channels along each dimension the student
narrows, packed tensors (a Mamba ``in_proj`` holds x and z, its ``x_proj`` holds dt, B and C) segment by segment.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks import BlockSequence, Mamba, ResidualGroup, ViMM
from ssmblocks.necks import PixelShuffleDirect
from ssmblocks.zoo.dvmsr import DVMSR

__all__ = ["Distiller", "inherit_weights"]


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


# ---- weight inheritance -----------------------------------------------------------------------------------------
# Module types whose own tensors are plain channel layouts (each dimension indexes one kind of channel), and, for the
# modules that pack several tensors along one dimension, {relative name: (dimension, segment sizes)} of an instance.
# A model holding any other module type is refused: slicing an unknown packed layout would mix its parts silently.
_Segments = dict[str, tuple[int, tuple[int, ...]]]
_PLAIN_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LayerNorm, nn.ModuleList, nn.Sequential, nn.PixelShuffle,
                nn.ModuleDict, nn.Identity, ViMM, BlockSequence, ResidualGroup, PixelShuffleDirect, DVMSR)


def _mamba_segments(mixer: Mamba) -> _Segments:
    """mamba_ssm's packing (see ssmblocks.blocks.mamba): in_proj rows = [x | z], x_proj rows = [dt | B | C]."""
    xz = (mixer.d_inner, mixer.d_inner)
    return {"in_proj.weight": (0, xz), "in_proj.bias": (0, xz),
            "x_proj.weight": (0, (mixer.dt_rank, mixer.d_state, mixer.d_state))}


_PACKED_TYPES: dict[type, Callable[[nn.Module], _Segments]] = {Mamba: _mamba_segments}


def _segments(model: nn.Module) -> _Segments:
    """{state-dict key: (dimension, segment sizes)} of the packed tensors of ``model``; refuses unknown modules."""
    out = {}
    for name, module in model.named_modules():
        if type(module) in _PACKED_TYPES:
            prefix = f"{name}." if name else ""
            out.update({prefix + key: value for key, value in _PACKED_TYPES[type(module)](module).items()})
        elif not (isinstance(module, _PLAIN_TYPES) or type(module) is nn.Module):
            raise TypeError(f"inherit_weights does not know how {type(module).__name__} ({name or 'the model'}) "
                            f"lays out its tensors; it supports models built from "
                            f"{', '.join(t.__name__ for t in (*_PLAIN_TYPES, *_PACKED_TYPES))}")
    return out


def _narrow(tensor: Tensor, shape: torch.Size, packed: tuple[int, tuple[int, ...], tuple[int, ...]] | None) -> Tensor:
    """The leading part of ``tensor`` along every dimension, to ``shape``; along a packed dimension, the leading part
    of each segment (teacher segment sizes -> student segment sizes)."""
    for dim, size in enumerate(shape):
        if packed is not None and packed[0] == dim:
            parts = tensor.split(packed[1], dim=dim)
            tensor = torch.cat([part.narrow(dim, 0, n) for part, n in zip(parts, packed[2], strict=True)], dim=dim)
        else:
            tensor = tensor.narrow(dim, 0, size)
    return tensor


@torch.no_grad()
def inherit_weights(teacher: nn.Module, student: nn.Module) -> dict[str, Tensor]:
    """The teacher's state dict cut to the student's shapes, for ``student.load_state_dict``.

    The student is a narrower instance of the teacher's family (the same class and tensor names, each dimension at
    most the teacher's: e.g. a DVMSR with embed_dim 30 from one with 60, or with a smaller d_state): each tensor
    keeps the teacher's leading entries along every dimension, and a packed dimension (Mamba's in_proj = [x | z],
    x_proj = [dt | B | C]) keeps the leading entries of each of its segments. Supported: models built from the
    module types listed in the error raised for any other (today the DVMSR family).

    Raises:
        TypeError: different classes, or a module whose tensor layout is not known.
        ValueError: different tensor names or ranks, or a student dimension wider than the teacher's.
    """
    if type(teacher) is not type(student):
        raise TypeError(f"weight inheritance needs a student of the teacher's class: got a {type(student).__name__} "
                        f"student for a {type(teacher).__name__} teacher")
    teacher_segments, student_segments = _segments(teacher), _segments(student)
    source, target = teacher.state_dict(), student.state_dict()
    if source.keys() != target.keys():
        missing, extra = sorted(target.keys() - source.keys()), sorted(source.keys() - target.keys())
        raise ValueError(f"teacher and student have different tensors (depths differ?): only the student has "
                         f"{missing[:3]}, only the teacher {extra[:3]}")
    state = {}
    for key, wanted in target.items():
        tensor = source[key]
        too_wide = tensor.dim() != wanted.dim() or any(s > t for s, t in zip(wanted.shape, tensor.shape, strict=True))
        packed = None
        if key in student_segments:
            dim, sizes = student_segments[key]
            packed = (dim, teacher_segments[key][1], sizes)
            too_wide = too_wide or any(s > t for s, t in zip(sizes, packed[1], strict=True))
        if too_wide:
            raise ValueError(f"{key}: the student's {tuple(wanted.shape)} is not a narrowing of the teacher's "
                             f"{tuple(tensor.shape)}")
        state[key] = _narrow(tensor, wanted.shape, packed).clone().to(wanted.dtype)
    return state
