"""The nodes. ComfyUI's conventions (facts from comfyanonymous/ComfyUI, ``nodes.py`` and
``comfy_extras/nodes_upscale_model.py``): a node class declares ``INPUT_TYPES()`` (a classmethod returning
``{"required": {name: (type, options)}}``; a list of strings is a drop-down), ``RETURN_TYPES``, ``FUNCTION`` (the
method ComfyUI calls with the inputs as keyword arguments; it returns a tuple) and ``CATEGORY``; the package lists
its nodes in ``NODE_CLASS_MAPPINGS`` and their titles in ``NODE_DISPLAY_NAME_MAPPINGS``. An ``IMAGE`` is a float
tensor (B, H, W, C) in [0, 1]; an ``UPSCALE_MODEL`` is a spandrel ``ImageModelDescriptor``, what "Load Upscale
Model" returns and "Upscale Image (using Model)" takes.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

import ssmblocks
from ssmblocks.integrations.spandrel import descriptor, image_architectures


@functools.cache
def _image_releases() -> list[str]:
    """Published releases of image models (spandrel descriptors take single images); ComfyUI asks for the inputs
    of every node more than once, the list is made once."""
    architectures = image_architectures()
    return [name for name in ssmblocks.list_pretrained() if name.split(".")[0] in architectures]


class SSMBlocksZooLoader:
    """Creates a zoo model by name with its published weights (bundled, or downloaded once and cached) and gives it
    to ComfyUI as an upscale model."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        return {"required": {"model_name": (_image_releases(),)}}

    RETURN_TYPES = ("UPSCALE_MODEL",)
    FUNCTION = "load_model"
    CATEGORY = "loaders"

    def load_model(self, model_name: str) -> tuple[Any]:
        return (descriptor(ssmblocks.create_model(model_name, pretrained=True)),)


class SSMBlocksRestore:
    """Restores images with an upscale model through ``ssmblocks.restore``: the model's official test procedure,
    or overlapping tiles blended without seams (``tile`` > 0, in input pixels), padding to the model's size rules."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 (ComfyUI's name)
        return {"required": {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",),
                             "tile": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "restore"
    CATEGORY = "image/upscaling"

    def restore(self, upscale_model: Any, image: torch.Tensor, tile: int = 0) -> tuple[torch.Tensor]:
        """image (B, H, W, C) float in [0, 1] -> (B, s*H, s*W, C') float in [0, 1]."""
        device = "cuda" if torch.cuda.is_available() else "cpu"
        restored = ssmblocks.restore(upscale_model.model, image.movedim(-1, 1), tile=tile or None, device=device,
                                     dtype=torch.float32, progress=False)
        return (restored.movedim(1, -1).cpu(),)


NODE_CLASS_MAPPINGS = {"SSMBlocksZooLoader": SSMBlocksZooLoader, "SSMBlocksRestore": SSMBlocksRestore}
NODE_DISPLAY_NAME_MAPPINGS = {"SSMBlocksZooLoader": "Load SSM Restoration Model (ssmblocks zoo)",
                              "SSMBlocksRestore": "Restore Image (ssmblocks, seamless tiles)"}
