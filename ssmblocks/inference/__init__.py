"""Inference built on the public model API: ``restore`` (any input kind, padding, tiling with smooth blending,
memory budgets, the official test protocols, video chunks), restoring files and folders (``plan_restore``,
``restore_paths``), evaluation on folders of pairs (``evaluate``) and image file helpers."""

from ssmblocks.inference.evaluate import EvalReport, EvalRow, evaluate, metric_defaults, pair_images
from ssmblocks.inference.folders import RestorePlan, RestoreReport, plan_restore, restore_paths
from ssmblocks.inference.images import expand_inputs, list_images, read_image, write_image
from ssmblocks.inference.protocols import PROTOCOLS, run_protocol
from ssmblocks.inference.restore import ModelInfo, model_info, resolve_protocol, restore
from ssmblocks.inference.tiling import parse_bytes, run_tiled, tile_starts

__all__ = [
    "PROTOCOLS",
    "EvalReport",
    "EvalRow",
    "ModelInfo",
    "RestorePlan",
    "RestoreReport",
    "evaluate",
    "expand_inputs",
    "list_images",
    "metric_defaults",
    "model_info",
    "pair_images",
    "parse_bytes",
    "plan_restore",
    "read_image",
    "resolve_protocol",
    "restore",
    "restore_paths",
    "run_protocol",
    "run_tiled",
    "tile_starts",
    "write_image",
]
