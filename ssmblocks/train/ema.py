"""Exponential moving average of a model's weights (the ``params_ema`` of BasicSR-trained checkpoints)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["ModelEma"]


class ModelEma:
    """A frozen copy of ``model`` whose floating-point parameters follow ``ema = decay * ema + (1 - decay) * param``
    after every ``update``; buffers (and integer tensors) are copied as they are.

    Args:
        model: the trained model (not a DDP wrapper); the copy keeps its attributes (``pretrained_cfg``, ...).
        decay: the weight of the running average, in [0, 1) (BasicSR trains MambaIR with 0.999).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        averaged = dict(self.module.named_parameters())
        for name, param in model.named_parameters():
            averaged[name].lerp_(param.detach(), 1.0 - self.decay)
        copies = dict(self.module.named_buffers())
        for name, buffer in model.named_buffers():
            copies[name].copy_(buffer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
