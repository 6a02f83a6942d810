"""What a restoration model takes and gives back — its contract — and how to read it off any module.

Every zoo model derives its ``contract`` property from its own hyperparameters, so a model built from its class
carries the same facts as one from ``create_model``. ``restore``, ``train``, export, the CLI and the spandrel
integration read the contract through ``contract_of(model)``, which probes a test forward only for modules from
outside the library. (The fields follow spandrel's ``ImageModelDescriptor``: scale, channels, size requirements,
tiling advice, half-precision support.) A ``PretrainedCfg`` records a weight release, not the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["INPUT_KINDS", "TILING", "ModelContract", "contract_of", "declared_contract"]

INPUT_KINDS = ("image", "video")
# spandrel's ModelTiling: 'supported' (tiles give the whole-image result up to seams), 'discouraged' (tiles change the
# result: every scan path of an SSM reaches across the whole input), 'internal' (the model tiles itself)
TILING = ("supported", "discouraged", "internal")
_PROBE_SIDE = 16


@dataclass(frozen=True)
class ModelContract:
    """A restoration model's input/output contract.

    Attributes:
        scale: output size / input size (1 for same-size restoration).
        in_chans, out_chans: channels of the input and of the output (per frame for video).
        input_kind: 'image' — (B, C, H, W) — or 'video' — (B, T, C, H, W) with T >= ``min_frames``.
        min_frames: frames a video model needs (1 for images).
        min_size: the smallest H and W the model runs on (``restore`` pads smaller inputs).
        multiple_of: H and W must be multiples of it for the model's exact result (``restore`` pads to it and crops;
            a model that pads itself may still declare it so that exports and tiles get sizes it runs unpadded).
        supports_fp16, supports_bf16: whether half-precision runs give usable output.
        tiling: one of ``TILING``.
    """

    scale: int = 1
    in_chans: int = 3
    out_chans: int = 3
    input_kind: str = "image"
    min_frames: int = 1
    min_size: int = 1
    multiple_of: int = 1
    supports_fp16: bool = False
    supports_bf16: bool = True
    tiling: str = "discouraged"

    def __post_init__(self) -> None:
        for name in ("scale", "in_chans", "out_chans", "min_frames", "min_size", "multiple_of"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelContract.{name} must be an integer >= 1, got {value!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"ModelContract.input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        if self.tiling not in TILING:
            raise ValueError(f"ModelContract.tiling must be one of {TILING}, got {self.tiling!r}")

    @property
    def is_video(self) -> bool:
        return self.input_kind == "video"

    def example_shape(self, height: int, width: int, frames: int | None = None, batch: int = 1) -> tuple[int, ...]:
        """An input shape the model accepts: (B, C, H, W), or (B, T, C, H, W) with T = ``frames`` or
        ``max(min_frames, 3)`` (three frames exercise second-order propagation) for video models."""
        if not self.is_video:
            return batch, self.in_chans, height, width
        return batch, frames or max(self.min_frames, 3), self.in_chans, height, width


def declared_contract(model: nn.Module) -> ModelContract | None:
    """The contract the model declares (its ``contract`` property: every ssmblocks model), or None."""
    contract = getattr(model, "contract", None)
    return contract if isinstance(contract, ModelContract) else None


def contract_of(model: nn.Module) -> ModelContract:
    """The model's ``contract`` (every ssmblocks model has one). For a module from outside the library: the input
    channels of its first convolution, image input unless it sets ``is_video = True``, and the scale measured by
    one forward of a 16x16 zero input in eval mode (the module's mode is restored afterwards)."""
    contract = declared_contract(model)
    if contract is not None:
        return contract
    video = bool(getattr(model, "is_video", False))
    conv = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)
    in_chans = conv.in_channels if conv is not None else 3
    param = next(model.parameters(), None)
    probe = torch.zeros(1, *((1,) if video else ()), in_chans, _PROBE_SIDE, _PROBE_SIDE,
                        device=param.device if param is not None else "cpu",
                        dtype=param.dtype if param is not None else torch.float32)
    was_training = model.training
    model.eval()   # a train-mode probe would update BatchNorm statistics
    try:
        with torch.inference_mode():
            out = model(probe)
    finally:
        model.train(was_training)
    return ModelContract(scale=max(out.shape[-1] // _PROBE_SIDE, 1), in_chans=in_chans, out_chans=out.shape[-3],
                         input_kind="video" if video else "image")
