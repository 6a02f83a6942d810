"""Hub-ready folders: export a model (safetensors + config.json + model card), upload it, and read one back
(a Hugging Face repo 'org/name' or a local folder) for ``create_model('hf-hub:...' / 'local-dir:...')``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import huggingface_hub
from safetensors.torch import save_file
from torch import nn

from ssmblocks._atomic import atomic_path
from ssmblocks._contract import ModelContract, contract_of
from ssmblocks._registry import PretrainedCfg, is_builtin, model_module
from ssmblocks._weights import PretrainedUnavailableError, resolve_hub_file

__all__ = ["CONFIG_NAME", "WEIGHT_NAMES", "push_to_hub", "read_repo_config", "save_for_hub"]

CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
_FOLDER_ADVICE = ("or download the repo's config.json and model.safetensors into a folder and use "
                  "create_model('local-dir:/that/folder')")


def _model_card(architecture: str, cfg: PretrainedCfg, contract: ModelContract) -> str:
    module = None if is_builtin(architecture) else model_module(architecture, full=True)
    lines = [f"---\nlibrary_name: ssmblocks\nlicense: {cfg.license.lower() or 'other'}\ntags:\n- image-restoration\n"
             f"- mamba\n---\n", f"# {cfg.name or architecture}\n",
             f"Task: {cfg.task or 'image restoration'}, scale x{contract.scale}, {contract.in_chans} -> "
             f"{contract.out_chans} channels{' per frame (video)' if contract.is_video else ''}.\n",
             "```python\nimport ssmblocks\n" + (f"import {module}   # registers {architecture}\n" if module else "")
             + "model = ssmblocks.create_model('hf-hub:<this repo>')\n```\n"]
    if module:
        lines.append(f"`{architecture}` is not part of ssmblocks: building it needs the Python module `{module}`, "
                     f"which registers it (command line: `ssmblocks --import {module} ...`).\n")
    if cfg.paper:
        lines.append(f"Paper: {cfg.paper}. Official code: {cfg.origin_url}\n")
    if cfg.metrics:
        rows = "".join(f"| {k} | {v} |\n" for k, v in cfg.metrics.items())
        lines.append("| benchmark | published |\n|---|---|\n" + rows)
    if cfg.test_protocol:
        lines.append(f"\nTest protocol: {cfg.test_protocol}\n")
    return "\n".join(lines)


def save_for_hub(model: nn.Module, folder: str | Path) -> Path:
    """Writes a hub-ready folder: model.safetensors, config.json (architecture, model_args, pretrained_cfg), and
    a model card README.md. ``create_model('local-dir:<folder>')`` or, once pushed, ``'hf-hub:<repo>'`` reads it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg: PretrainedCfg = getattr(model, "pretrained_cfg", None) or PretrainedCfg()
    architecture = getattr(model, "architecture", "") or getattr(model, "default_architecture", "")
    if not architecture or not hasattr(model, "model_args"):
        raise ValueError(
            f"save_for_hub writes what rebuilds the model: a registered architecture and its arguments, and "
            f"{type(model).__name__} has neither. Register a function that builds it (@ssmblocks.registry."
            f"register_model def my_net(**kwargs): ...) and build it with ssmblocks.create_model('my_net', ...), or "
            f"give the class @ssmblocks.registry.records_hparams and default_architecture = 'my_net' "
            f"(docs/adding_a_family.md)")
    model_args = dict(model.model_args)
    for name, value in model_args.items():
        try:
            json.dumps(value)
        except TypeError:
            raise ValueError(f"save_for_hub cannot write the model argument {name}={value!r} to config.json; "
                             f"save the state_dict instead and rebuild the model in code") from None
    config: dict[str, Any] = {
        "architecture": architecture,
        "model_args": model_args,
        "pretrained_cfg": cfg.without_weight_source(),   # the folder's own model.safetensors is the weight file
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHT_NAMES[0]) as tmp:          # whole files, with the user's umask permissions
        save_file(state, str(tmp))
    card = _model_card(architecture, cfg, contract_of(model))
    for name, text in ((CONFIG_NAME, json.dumps(config, indent=2)), ("README.md", card)):
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text)
    return folder


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Add ssmblocks model", api: huggingface_hub.HfApi | None = None) -> str:
    """Exports ``model`` with ``save_for_hub`` and uploads the folder to ``repo_id``; returns the commit URL."""
    api = api or huggingface_hub.HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_for_hub(model, tmp)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def read_repo_config(location: str, cache_dir: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """(config.json contents, weight file) of a Hub repo ('org/name') or a local folder ('local-dir:...')."""
    if location.startswith("local-dir:"):
        folder = Path(location[len("local-dir:"):])
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}; write one with ssmblocks.save_for_hub")
        weights = next((folder / n for n in WEIGHT_NAMES if (folder / n).is_file()), None)
        if weights is None:
            raise FileNotFoundError(f"{folder} has none of {WEIGHT_NAMES}")
    else:
        config_path = resolve_hub_file(location, CONFIG_NAME, cache_dir, _FOLDER_ADVICE)
        weights, errors = None, []
        for name in WEIGHT_NAMES:
            try:
                weights = resolve_hub_file(location, name, cache_dir, _FOLDER_ADVICE)
                break
            except PretrainedUnavailableError as err:
                errors.append(str(err))
        if weights is None:   # every name's reason, not only the last fallback's
            raise PretrainedUnavailableError("\n".join(errors))
    config = json.loads(config_path.read_text())
    if "architecture" not in config:
        raise ValueError(f"{config_path} has no 'architecture' entry")
    return config, weights
