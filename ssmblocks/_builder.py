"""create_model and load_checkpoint: build a registered model, find its weights, and load them strictly.

Official checkpoints load as they are: each family's ``checkpoint_filter_fn`` maps official keys to the library's
(returning early for the library's own format), and ``load_checkpoint`` recognises the family and variant of an
official checkpoint from its keys and shapes (detectors registered by the family modules).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ssmblocks._checkpoint import CheckpointError, load_state_dict_strict, read_state_dict
from ssmblocks._hub import read_repo_config, resolve_weights
from ssmblocks._registry import PretrainedCfg, get_pretrained_cfg, model_entrypoint, split_model_name

__all__ = ["Detection", "create_model", "detect_checkpoint", "load_checkpoint", "register_detector"]


@dataclass(frozen=True)
class Detection:
    """What a detector recognised: the family, a registered architecture to build, its keyword arguments
    (hyperparameters inferred from shapes), and a human-readable variant description."""

    family: str
    architecture: str
    model_args: dict[str, Any] = field(default_factory=dict)
    variant: str = ""


_detectors: list[Callable[[Mapping[str, Tensor]], Detection | None]] = []


def register_detector(fn: Callable[[Mapping[str, Tensor]], Detection | None]) -> Callable:
    """Registers a family's detector: state dict -> Detection, or None if the keys are not that family's."""
    _detectors.append(fn)
    return fn


def detect_checkpoint(state_dict: Mapping[str, Tensor]) -> Detection | None:
    for detector in _detectors:
        found = detector(state_dict)
        if found is not None:
            return found
    return None


def _load_weights(model: nn.Module, state_dict: Mapping[str, Tensor], origin: str) -> None:
    filter_fn = getattr(type(model), "checkpoint_filter_fn", None)
    state = filter_fn(dict(state_dict), model) if filter_fn else dict(state_dict)
    try:
        load_state_dict_strict(model, state, origin)
    except CheckpointError as err:
        found = detect_checkpoint(state_dict)
        if found is not None and found.family != getattr(model, "family", type(model).__name__):
            raise CheckpointError(f"{origin} is a {found.family} checkpoint ({found.variant}), but the model is "
                                  f"{type(model).__name__}: use ssmblocks.load_checkpoint(path) to build the right "
                                  f"model") from err
        raise


def _build(architecture: str, cfg: PretrainedCfg, model_args: dict[str, Any]) -> nn.Module:
    model = model_entrypoint(architecture)(**model_args)
    model.pretrained_cfg = cfg
    model.architecture = architecture
    model.model_args = dict(model_args)
    return model


def create_model(
    model_name: str,
    pretrained: bool = False,
    checkpoint_path: str | Path | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Builds a model by name ('architecture', 'architecture.tag', 'hf-hub:org/repo' or 'local-dir:/folder').

    Args:
        pretrained: load the tag's published weights (Hub, URL, or an explanation for manual downloads).
        checkpoint_path: load this file instead (official or library format; strict).
        pretrained_cfg_overlay: fields replacing those of the pretrained cfg (e.g. ``{"file": "w.pth"}``).
        cache_dir: where downloads are cached.
        **kwargs: model constructor arguments.
    """
    if model_name.startswith(("hf-hub:", "local-dir:")):
        location = model_name[len("hf-hub:"):] if model_name.startswith("hf-hub:") else model_name
        config, weights = read_repo_config(location, cache_dir)
        cfg = PretrainedCfg.from_dict({**config.get("pretrained_cfg", {}), "architecture": config["architecture"]})
        if model_name.startswith("hf-hub:"):
            cfg = dataclasses.replace(cfg, hf_hub_id=location)
        model = _build(config["architecture"], cfg, {**config.get("model_args", {}), **kwargs})
        _load_weights(model, read_state_dict(checkpoint_path or weights), str(checkpoint_path or weights))
        return model
    if "/" in model_name or "\\" in model_name:
        raise ValueError(f"{model_name!r} looks like a path: use create_model(name, checkpoint_path=...), "
                         f"ssmblocks.load_checkpoint(path), or the 'local-dir:' / 'hf-hub:' prefixes")
    arch, _ = split_model_name(model_name)
    cfg = get_pretrained_cfg(model_name)
    if pretrained_cfg_overlay:
        cfg = dataclasses.replace(cfg, **pretrained_cfg_overlay)
    model = _build(arch, cfg, kwargs)
    if checkpoint_path is not None:
        _load_weights(model, read_state_dict(checkpoint_path), str(checkpoint_path))
    elif pretrained:
        path = resolve_weights(cfg, cache_dir)
        _load_weights(model, read_state_dict(path), f"{cfg.name} weights ({path})")
    return model


def load_checkpoint(path: str | Path) -> nn.Module:
    """Builds the model an (official or library) checkpoint file belongs to, loads it strictly, returns it in
    eval mode. The family, variant and hyperparameters are recognised from the keys and shapes."""
    state = read_state_dict(path)
    found = detect_checkpoint(state)
    if found is None:
        sample = ", ".join(list(state)[:6])
        raise CheckpointError(f"{path}: not a checkpoint of any supported family (keys start with: {sample})")
    cfg = get_pretrained_cfg(found.architecture)
    cfg = dataclasses.replace(cfg, notes=f"detected from {Path(path).name}: {found.variant}")
    model = _build(found.architecture, cfg, found.model_args)
    _load_weights(model, state, str(path))
    return model.eval()
