"""spandrel support: ``spandrel.ModelLoader().load_from_file(path)`` loads official checkpoints of the library's
image families (MambaIR, MambaIRUNet, MambaCSR, DVMSR, and every image family registered later), so ComfyUI and
chaiNNer, which load upscalers through spandrel, can run them.

    import ssmblocks.integrations.spandrel as ssm_spandrel
    ssm_spandrel.register()                    # adds the families to spandrel.MAIN_REGISTRY (once)
    model = spandrel.ModelLoader().load_from_file("MambaIR_SR_x4.pth")
    sr = model(image)                          # (B, C, H, W) in [0, 1]
    model = ssm_spandrel.descriptor(ssmblocks.create_model("mambair_sr_x4", pretrained=True))   # a zoo model

The families come from the registry: every registered architecture whose models take images (video models do not
fit spandrel's image descriptors) contributes its family, one ``Architecture`` per family with a detector. The
files spandrel reads (``.pth`` with BasicSR ``params`` / ``params_ema``, raw state dicts, the library's own
safetensors from ``save_for_hub`` / ``ssmblocks convert``) are unwrapped by the library's own rules
(``ssmblocks._checkpoint.unwrap_state_dict``) and detected by the families' own claims (keys unique to a family),
before spandrel's built-in architectures so that none of them mistakes a Mamba checkpoint for its own.

Facts about spandrel's extension API (``Architecture``, ``ArchSupport.from_architecture``, ``ArchRegistry.add`` and
``architectures("insertion")``, ``ImageModelDescriptor`` and its purposes, ``SizeRequirements``, ``ModelTiling``,
``canonicalize_state_dict``) are from spandrel 0.4.2 (chaiNNer-org/spandrel, ``libs/spandrel/spandrel/__helpers``).
Tiling is declared discouraged: every SSM path reaches across the whole image, so tiles change the output
(``ssmblocks.restore`` tiles with overlap and blending when memory requires).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks._builder import create_model, model_from_state_dict
from ssmblocks._checkpoint import CheckpointError
from ssmblocks._formats import state_dict_of
from ssmblocks.registry import contract_of, family_claims, list_models, supported_families

__all__ = ["architectures", "descriptor", "image_architectures", "image_families", "register"]

ARCH_PREFIX = "ssmblocks."


def image_families() -> list[str]:
    """The families whose checkpoints build image models (their detectors are registered with
    ``input_kind='image'``); video families do not fit spandrel's image descriptors."""
    return supported_families("image")


@functools.cache
def image_architectures() -> tuple[str, ...]:
    """The registered architectures whose models take images (each built once on the meta device: no memory, no
    initialisation, only its contract is read)."""
    image = []
    for arch in list_models():
        with torch.device("meta"):
            if not contract_of(create_model(arch)).is_video:
                image.append(arch)
    return tuple(image)


def descriptor(model: nn.Module, architecture: Any = None) -> Any:
    """A spandrel ``ImageModelDescriptor`` for a library model (eval mode): scale, channels, size requirements,
    fp16/bf16 support and tiling advice from the model's contract; purpose 'SR' above x1, else 'Restoration'.
    ``architecture``: the spandrel ``Architecture`` it was detected by (default: its family's)."""
    import spandrel

    contract = contract_of(model)
    if contract.is_video:
        raise ValueError(f"{type(model).__name__} restores videos; spandrel's descriptors take single images")
    if architecture is None:
        architecture = _architecture_class()(getattr(model, "family", None) or type(model).__name__)
    tag = getattr(getattr(model, "pretrained_cfg", None), "tag", "")
    tags = [getattr(model, "architecture", type(model).__name__), *([tag] if tag else [])]
    size = spandrel.SizeRequirements(minimum=contract.min_size if contract.min_size > 1 else 0,
                                     multiple_of=contract.multiple_of)
    return spandrel.ImageModelDescriptor(
        model.eval(), model.state_dict(), architecture=architecture,
        purpose="SR" if contract.scale > 1 else "Restoration", tags=tags, supports_half=contract.supports_fp16,
        supports_bfloat16=contract.supports_bf16, scale=contract.scale, input_channels=contract.in_chans,
        output_channels=contract.out_chans, size_requirements=size,
        tiling=getattr(spandrel.ModelTiling, contract.tiling.upper()))


def _unwrapped(state_dict: Mapping[str, Any]) -> dict[str, Tensor] | None:
    """The tensors of a checkpoint by the library's unwrapping rules; None when it holds none."""
    try:
        return state_dict_of(state_dict, "checkpoint")   # a self-describing format's default weights, or unwrapped
    except CheckpointError:
        return None


@functools.cache
def _architecture_class() -> type:
    import spandrel

    class FamilyArchitecture(spandrel.Architecture):
        """One library family: detected by the family's claims, loaded by the library's detection."""

        def __init__(self, family: str) -> None:
            super().__init__(id=ARCH_PREFIX + family, name=family, detect=self._claims)
            self.family = family

        def _claims(self, state_dict: Mapping[str, Any]) -> bool:
            state = _unwrapped(state_dict)
            return state is not None and family_claims(self.family)(state)

        def load(self, state_dict: Mapping[str, Any]) -> Any:
            state = _unwrapped(state_dict)
            if state is None:
                raise CheckpointError(f"{self.family} state dict: holds no tensors")
            return descriptor(model_from_state_dict(state, f"{self.family} state dict"), self)

    return FamilyArchitecture


def architectures() -> list:
    """One spandrel ``Architecture`` per image family of the library (``image_families``)."""
    family_architecture = _architecture_class()
    return [family_architecture(family) for family in image_families()]


def register(registry: Any = None) -> list:
    """Adds the library's image families to ``registry`` (default ``spandrel.MAIN_REGISTRY``), detected before
    every architecture already there. Idempotent. Returns the ``ArchSupport`` entries added."""
    import spandrel

    registry = registry if registry is not None else spandrel.MAIN_REGISTRY
    before = tuple(support.architecture.id for support in registry.architectures("insertion")
                   if not str(support.architecture.id).startswith(ARCH_PREFIX))
    supports = [spandrel.ArchSupport.from_architecture(arch, before=before) for arch in architectures()]
    return registry.add(*supports, ignore_duplicates=True)
