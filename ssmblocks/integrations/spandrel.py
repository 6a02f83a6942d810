"""spandrel support: ``spandrel.ModelLoader().load_from_file(path)`` loads official checkpoints of the library's
image families (MambaIR, MambaIRUNet, MambaCSR, DVMSR, ...), so ComfyUI and chaiNNer, which load upscalers
through spandrel, can run them.

    import ssmblocks.integrations.spandrel as ssm_spandrel
    ssm_spandrel.register()                    # adds the families to spandrel.MAIN_REGISTRY (once)
    descriptor = spandrel.ModelLoader().load_from_file("MambaIR_SR_x4.pth")
    sr = descriptor(image)                     # (B, C, H, W) in [0, 1]

Facts about spandrel's extension API (``Architecture``, ``ArchSupport``, ``ImageModelDescriptor``,
``SizeRequirements``, ``ModelTiling``, ``ArchRegistry.add``) are from spandrel 0.4.2. Detection uses the families'
own claims (keys unique to a family), placed before spandrel's built-in architectures so that none of them
mistakes a Mamba checkpoint for its own. Tiling is declared discouraged: every SSM path reaches across the whole
image, so tiles change the output (``ssmblocks.restore`` tiles with overlap and blending when memory requires).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ssmblocks._builder import model_from_state_dict
from ssmblocks.registry import contract_of, family_claims, supported_families

__all__ = ["architectures", "register"]

ARCH_PREFIX = "ssmblocks."


def architectures() -> list:
    """One spandrel ``Architecture`` per image family of the library."""
    import spandrel

    class FamilyArchitecture(spandrel.Architecture):
        def __init__(self, family: str) -> None:
            super().__init__(id=ARCH_PREFIX + family, name=family, detect=family_claims(family))
            self.family = family

        def load(self, state_dict: Mapping[str, Tensor]) -> spandrel.ImageModelDescriptor:
            model = model_from_state_dict(state_dict, f"{self.family} state dict")
            cfg, contract = model.pretrained_cfg, contract_of(model)
            return spandrel.ImageModelDescriptor(
                model, dict(state_dict), architecture=self, purpose="SR" if contract.scale > 1 else "Restoration",
                tags=[model.architecture, *([cfg.tag] if cfg.tag else [])], supports_half=contract.supports_fp16,
                supports_bfloat16=contract.supports_bf16, scale=contract.scale, input_channels=contract.in_chans,
                output_channels=contract.out_chans,
                size_requirements=spandrel.SizeRequirements(minimum=contract.min_size,
                                                            multiple_of=contract.multiple_of),
                tiling=getattr(spandrel.ModelTiling, contract.tiling.upper()))

    # video families (MedVSR, VSRM) do not fit spandrel's image descriptors
    return [FamilyArchitecture(family) for family in supported_families("image")]


def register(registry=None) -> list:
    """Adds the library's image families to ``registry`` (default ``spandrel.MAIN_REGISTRY``), detected before
    every architecture already there. Idempotent. Returns the ``ArchSupport`` entries added."""
    import spandrel

    registry = registry if registry is not None else spandrel.MAIN_REGISTRY
    before = tuple(support.architecture.id for support in registry.architectures("insertion")
                   if not str(support.architecture.id).startswith(ARCH_PREFIX))
    supports = [spandrel.ArchSupport.from_architecture(arch, before=before) for arch in architectures()]
    return registry.add(*supports, ignore_duplicates=True)
