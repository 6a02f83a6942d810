"""Inference built on the public model API: ``restore`` (any input kind, padding, tiling with smooth blending,
memory budgets, the official test protocols, video chunks) and image file helpers."""

from ssmblocks.inference.images import expand_inputs, list_images, read_image, write_image
from ssmblocks.inference.protocols import PROTOCOLS, run_protocol
from ssmblocks.inference.restore import ModelInfo, model_info, resolve_protocol, restore
from ssmblocks.inference.tiling import parse_bytes, run_tiled, tile_starts

__all__ = [
    "PROTOCOLS",
    "ModelInfo",
    "expand_inputs",
    "list_images",
    "model_info",
    "parse_bytes",
    "read_image",
    "resolve_protocol",
    "restore",
    "run_protocol",
    "run_tiled",
    "tile_starts",
    "write_image",
]
