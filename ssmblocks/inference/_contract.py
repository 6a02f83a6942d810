"""What the command line, evaluation and training read about a model's inputs and outputs, in one place.

``contract_of(model)`` is the only reader of these facts outside ``restore``: today they come from the model's
pretrained cfg; when models carry their contract themselves, this function is the one to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["ModelContract", "contract_of"]


@dataclass(frozen=True)
class ModelContract:
    """A model's input/output contract: upscaling factor, channels in and out, image (B, C, H, W) or video
    (B, T, C, H, W) input with at least ``min_frames`` frames, size rules (at least ``min_size`` pixels, a multiple
    of ``multiple_of``), and half-precision support."""

    scale: int
    in_chans: int
    out_chans: int
    video: bool
    min_frames: int
    min_size: int
    multiple_of: int
    supports_fp16: bool
    supports_bf16: bool


def contract_of(model: nn.Module) -> ModelContract | None:
    """The contract of a model built by ssmblocks; None for a module that does not declare one."""
    cfg = getattr(model, "pretrained_cfg", None)
    if cfg is None:
        return None
    return ModelContract(scale=cfg.scale, in_chans=cfg.in_chans, out_chans=cfg.out_chans,
                         video=cfg.input_kind == "video", min_frames=cfg.min_frames, min_size=cfg.min_size,
                         multiple_of=cfg.multiple_of, supports_fp16=cfg.supports_fp16,
                         supports_bf16=cfg.supports_bf16)
