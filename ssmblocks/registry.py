"""The extension API: what a model family — in the library or in your own package — uses to plug into
``create_model``, ``load_checkpoint``, ``restore``, the ``ssmblocks`` command and the spandrel integration.

A family module (see docs/adding_a_family.md, and any file of ``ssmblocks/zoo/`` as a worked example):

    @records_hparams                                  # model_args: every constructor argument, defaults included
    class MyNet(SwinIRSkeleton):                      # or any nn.Module with a ``contract`` property
        family = "MyNet"
        ...

    @register_detector("MyNet", claims=lambda state: "my_unique_key.weight" in state)
    def detect_mynet(state) -> Detection:             # hyperparameters from tensor shapes
        return Detection("MyNet", "mynet_x4", {"upscale": 4, ...}, "MyNet x4")

    register_cfgs({"mynet_x4.v1": PretrainedCfg(url=..., sha256=..., license=..., task=...)})

    @register_model
    def mynet_x4(**kwargs) -> MyNet:
        return MyNet(**{"upscale": 4, **kwargs})

Importing the module registers everything; ``ssmblocks --import mypackage.mynet ...`` does it for the CLI.
"""

from ssmblocks._builder import Detection, detect_checkpoint, family_claims, register_detector, supported_families
from ssmblocks._contract import INPUT_KINDS, TILING, ModelContract, contract_of, declared_contract
from ssmblocks._formats import DescribedCheckpoint, checkpoint_formats, register_checkpoint_format
from ssmblocks._hparams import records_hparams
from ssmblocks._registry import (
    PretrainedCfg,
    get_pretrained_cfg,
    is_model,
    list_models,
    list_modules,
    list_pretrained,
    model_entrypoint,
    model_module,
    register_cfgs,
    register_model,
    split_model_name,
)

__all__ = [
    "INPUT_KINDS",
    "TILING",
    "DescribedCheckpoint",
    "Detection",
    "ModelContract",
    "PretrainedCfg",
    "checkpoint_formats",
    "contract_of",
    "declared_contract",
    "detect_checkpoint",
    "family_claims",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_modules",
    "list_pretrained",
    "model_entrypoint",
    "model_module",
    "records_hparams",
    "register_cfgs",
    "register_checkpoint_format",
    "register_detector",
    "register_model",
    "split_model_name",
    "supported_families",
]
