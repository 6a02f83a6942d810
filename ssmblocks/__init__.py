"""ssmblocks: composable state-space (Mamba) building blocks for image and video restoration.

    model = ssmblocks.create_model("mambair_sr_x4", checkpoint_path="MambaIR_SR_x4.pth")
    model = ssmblocks.load_checkpoint("any_official_checkpoint.pth")   # family and variant detected
"""

from ssmblocks import blocks, metrics, necks, ops, registry, scan_orders, zoo
from ssmblocks._builder import create_model, load_checkpoint
from ssmblocks._checkpoint import CheckpointError
from ssmblocks._contract import ModelContract, contract_of
from ssmblocks._hub import push_to_hub, save_for_hub
from ssmblocks._registry import (
    PretrainedCfg,
    get_pretrained_cfg,
    is_model,
    list_models,
    list_pretrained,
)
from ssmblocks._weights import PretrainedUnavailableError
from ssmblocks.export import export_onnx  # ~1 ms: torch imports torch.export itself
from ssmblocks.inference import restore
from ssmblocks.profiling import profile

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ModelContract",
    "PretrainedCfg",
    "PretrainedUnavailableError",
    "__version__",
    "blocks",
    "contract_of",
    "create_model",
    "export_onnx",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "metrics",
    "necks",
    "ops",
    "profile",
    "push_to_hub",
    "registry",
    "restore",
    "save_for_hub",
    "scan_orders",
    "zoo",
]
