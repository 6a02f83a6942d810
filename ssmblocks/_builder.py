"""create_model and load_checkpoint: build a registered model, find its weights, and load them strictly.

Official checkpoints load as they are: the library's modules carry the official key names, and a family whose keys
truly differ gives its model class a ``checkpoint_filter_fn(state_dict, model)`` that maps official keys to the
library's (returning early for the library's own format; ``filter_checkpoint`` applies it). ``load_checkpoint``
recognises the family and variant of an official checkpoint from its keys and shapes. Detection is declarative:
each family registers which keys make a checkpoint its own (``claims``) separately from how its hyperparameters are
read from shapes (``infer``); all families are asked, exactly one must claim a checkpoint, and nothing but
``CheckpointError`` escapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssmblocks._checkpoint import (
    CHECKPOINT_SUFFIXES,
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    read_state_dict,
)
from ssmblocks._contract import INPUT_KINDS
from ssmblocks._formats import DescribedCheckpoint, describe_checkpoint, state_dict_of
from ssmblocks._hub import read_repo_config
from ssmblocks._registry import (
    PretrainedCfg,
    get_pretrained_cfg,
    is_model,
    list_pretrained,
    model_entrypoint,
    model_module,
    split_model_name,
)
from ssmblocks._weights import file_sha256, is_glob, resolve_weights

__all__ = ["Detection", "create_model", "detect_checkpoint", "family_claims", "filter_checkpoint",
           "load_checkpoint",
           "model_from_state_dict", "register_detector", "supported_families"]


@dataclass(frozen=True)
class Detection:
    """What a detector recognised: the family, a registered architecture to build, its keyword arguments
    (hyperparameters inferred from shapes), and a human-readable variant description."""

    family: str
    architecture: str
    model_args: dict[str, Any] = field(default_factory=dict)
    variant: str = ""


InferFn = Callable[[Mapping[str, Tensor]], Detection]


@dataclass(frozen=True)
class _Detector:
    family: str
    claims: Callable[[Mapping[str, Tensor]], bool]
    infer: InferFn
    input_kind: str


_detectors: dict[str, _Detector] = {}


def register_detector(family: str, *, claims: Callable[[Mapping[str, Tensor]], bool],
                      input_kind: str = "image") -> Callable[[InferFn], InferFn]:
    """Registers how a family recognises its checkpoints. Decorates ``infer``.

    ``claims(state)`` says whether the keys are this family's (by keys unique to it; it must not look at shapes).
    ``infer(state)`` reads the hyperparameters from the shapes of a claimed checkpoint and returns a Detection
    whose ``model_args`` are complete constructor arguments. Any exception inside either becomes a
    CheckpointError naming the family. ``input_kind`` ('image' or 'video') is the kind of model the family's
    checkpoints build (integrations that load images only, such as spandrel's, list the image families).
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")

    def decorator(infer: InferFn) -> InferFn:
        if family in _detectors:
            raise ValueError(f"a detector for {family!r} is registered twice")
        _detectors[family] = _Detector(family, claims, infer, input_kind)
        return infer

    return decorator


def supported_families(input_kind: str = "") -> list[str]:
    """The families whose checkpoints ``load_checkpoint`` detects (only those of ``input_kind`` when given)."""
    return sorted(f for f, d in _detectors.items() if not input_kind or d.input_kind == input_kind)


def family_claims(family: str) -> Callable[[Mapping[str, Tensor]], bool]:
    """The key test by which ``family`` claims a checkpoint (for integrations that detect before loading)."""
    return _detectors[family].claims


def detect_checkpoint(state_dict: Mapping[str, Tensor], origin: str = "checkpoint") -> Detection:
    """The family, architecture and hyperparameters of a checkpoint. Every family's detector runs; exactly one
    must claim the keys. Raises CheckpointError when none or several do, or when a detector fails."""
    claimed = []
    for detector in _detectors.values():
        try:
            if detector.claims(state_dict):
                claimed.append(detector)
        except Exception as err:
            raise CheckpointError(f"{origin}: the {detector.family} detector failed on its keys "
                                  f"({type(err).__name__}: {err})") from err
    if not claimed:
        sample = ", ".join(list(state_dict)[:6])
        raise CheckpointError(f"{origin}: not a checkpoint of any supported family ({', '.join(supported_families())})"
                              f"; its keys start with: {sample}")
    if len(claimed) > 1:
        raise CheckpointError(f"{origin}: the keys are claimed by several families "
                              f"({', '.join(d.family for d in claimed)}); load it with "
                              f"ssmblocks.create_model(name, checkpoint_path=...) naming the architecture")
    detector = claimed[0]
    try:
        return detector.infer(state_dict)
    except Exception as err:
        raise CheckpointError(f"{origin} looks like a {detector.family} checkpoint, but its hyperparameters cannot "
                              f"be read from its shapes ({type(err).__name__}: {err}); it may be truncated or of an "
                              f"unsupported variant") from err


def filter_checkpoint(model: nn.Module, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``state_dict`` with its keys mapped to ``model``'s by the class's ``checkpoint_filter_fn`` hook, when the
    class has one (official keys that differ from the library's); else a copy as it is."""
    filter_fn = getattr(type(model), "checkpoint_filter_fn", None)
    return filter_fn(dict(state_dict), model) if filter_fn else dict(state_dict)


def _load_weights(model: nn.Module, state_dict: Mapping[str, Tensor], origin: str, assign: bool = False) -> None:
    state = filter_checkpoint(model, state_dict)
    try:
        load_state_dict_strict(model, state, origin, assign=assign)
    except CheckpointError as err:
        family = getattr(model, "family", type(model).__name__)
        _raise_if_another_family(state_dict, origin, f"the model is {type(model).__name__}",
                                 lambda found: found.family == family, err)
        raise


def _raise_if_another_family(state: Mapping[str, Tensor], origin: str, model: str,
                             same_family: Callable[[Detection], bool], cause: Exception) -> None:
    """Raises a CheckpointError naming both families when ``state`` is detected as a checkpoint for which
    ``same_family`` is false (the model is described as ``model`` in the message)."""
    try:
        found = detect_checkpoint(state, origin)
    except CheckpointError:
        return
    if not same_family(found):
        raise CheckpointError(f"{origin} is a {found.family} checkpoint ({found.variant}), but {model}: use "
                              f"ssmblocks.load_checkpoint(path) to build the right model") from cause


def _build(architecture: str, cfg: PretrainedCfg, model_args: dict[str, Any], meta: bool = False) -> nn.Module:
    """Calls the entry point; on the meta device (no memory, no init) when ``meta``."""
    if meta:
        with torch.device("meta"):
            model = model_entrypoint(architecture)(**model_args)
    else:
        model = model_entrypoint(architecture)(**model_args)
    if not hasattr(model, "model_args"):           # a class without @records_hparams: the entry point's arguments
        model.model_args = _entrypoint_arguments(architecture, model_args)
    model.pretrained_cfg = cfg
    model.architecture = architecture
    return model


def _entrypoint_arguments(architecture: str, model_args: dict[str, Any]) -> dict[str, Any]:
    """Every argument the entry point was called with, its defaults included (what ``records_hparams`` records for
    the zoo's classes): a custom model registered as ``def my_net(width=32, depth=4)`` records both."""
    try:
        bound = inspect.signature(model_entrypoint(architecture)).bind(**model_args)
    except TypeError:
        return dict(model_args)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, param in inspect.signature(model_entrypoint(architecture)).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
    return arguments


class _TooManyParametersError(Exception):
    """Raised inside a guarded build that registers more parameters than the weights it is for hold."""


@contextlib.contextmanager
def _parameter_budget(limit: int) -> Iterator[None]:
    """Aborts a build (in this thread) that registers more than ``limit`` parameters: a hostile size
    (``depths: [1000000]``) must fail before it has built millions of modules."""
    thread, count = threading.get_ident(), 0

    def hook(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        nonlocal count
        if param is not None and threading.get_ident() == thread:
            count += 1
            if count > limit:
                raise _TooManyParametersError

    handle = nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _build_loaded(architecture: str, cfg: PretrainedCfg, model_args: dict[str, Any], state: Mapping[str, Tensor],
                  origin: str) -> nn.Module:
    """The model of ``architecture`` with ``state`` loaded strictly: built on the meta device (nothing allocated or
    initialised, and aborted once it has far more parameters than ``state`` has tensors), checked against the
    weights, then given the file's tensors. Train mode, as built. Any failure of the build is a CheckpointError
    naming ``origin``."""
    try:    # a model whose parameters outnumber the file's tensors cannot load it strictly; constructors may register
        # and then replace a few parameters, hence the margin
        with _parameter_budget(2 * len(state) + 64):
            model = _build(architecture, cfg, model_args, meta=True)
    except _TooManyParametersError as err:
        _raise_if_another_family(state, origin, f"{architecture} is not a model of that family",
                                 lambda found: model_module(found.architecture) == model_module(architecture), err)
        raise CheckpointError(f"{origin} holds {len(state)} tensors, but {architecture} with {_comparable(model_args)} "
                              f"has more parameters: the arguments do not describe these weights") from None
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        raise CheckpointError(f"{architecture} cannot be built with the arguments given for {origin} "
                              f"({_comparable(model_args)}): {type(err).__name__}: {err}") from err
    _load_weights(model, state, origin, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):   # non-persistent buffers: build for real
        model = _build(architecture, model.pretrained_cfg, model_args)
        _load_weights(model, state, origin)
    return model


def _check_name(model_name: object) -> str:
    if not isinstance(model_name, str) or not model_name:
        raise TypeError(f"create_model takes a model name (str) such as 'mambair_sr_x4', got {model_name!r}; "
                        f"see ssmblocks.list_models()")
    if model_name.startswith(("hf-hub:", "local-dir:")):
        return model_name
    if "/" in model_name or "\\" in model_name or Path(model_name).suffix in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{model_name!r} looks like a checkpoint file: use ssmblocks.load_checkpoint(path) (family "
                         f"detected), create_model(name, checkpoint_path=path), or the 'local-dir:' / 'hf-hub:' "
                         f"prefixes for hub folders")
    arch, dot, tag = model_name.partition(".")
    if not arch or (dot and not tag):
        raise ValueError(f"{model_name!r} is not a model name: use 'architecture' or 'architecture.tag'")
    return model_name


def create_model(
    model_name: str,
    pretrained: bool = False,
    checkpoint_path: str | Path | None = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Builds a model by name ('architecture', 'architecture.tag', 'hf-hub:org/repo' or 'local-dir:/folder').

    The model is returned in train mode, as torch modules are built (call ``.eval()`` for inference);
    ``load_checkpoint`` returns eval mode.

    Args:
        pretrained: load the tag's published weights (Hub, URL, Google Drive, or an explanation of what to do).
        checkpoint_path: load this file instead (official or library format; strict).
        pretrained_cfg_overlay: fields replacing those of the pretrained cfg (e.g. ``{"file": "w.pth"}``).
        cache_dir: where downloads are cached.
        **kwargs: model constructor arguments.
    """
    model_name = _check_name(model_name)
    if model_name.startswith(("hf-hub:", "local-dir:")):
        return _from_repo(model_name, checkpoint_path, cache_dir, kwargs)
    arch, _ = split_model_name(model_name)
    cfg = get_pretrained_cfg(model_name)
    if pretrained_cfg_overlay:
        cfg = dataclasses.replace(cfg, **pretrained_cfg_overlay)
    # the weights first: a missing or unreadable file fails at once, before any model is built
    if checkpoint_path is not None:
        state = state_dict_of(read_checkpoint(checkpoint_path), str(checkpoint_path), cfg.weights_key)
        model = _build_loaded(arch, cfg, kwargs, state, str(checkpoint_path))
        model.pretrained_cfg = _checkpoint_cfg(arch, cfg, Path(checkpoint_path), pretrained_cfg_overlay)
        return model
    if pretrained:
        path = resolve_weights(cfg, cache_dir)
        origin = f"{cfg.name} weights ({path})"
        return _build_loaded(arch, cfg, kwargs, state_dict_of(read_checkpoint(path), origin, cfg.weights_key), origin)
    return _build(arch, cfg, kwargs)


def _from_repo(model_name: str, checkpoint_path: str | Path | None, cache_dir: str | Path | None,
               kwargs: dict[str, Any]) -> nn.Module:
    """A model from a hub folder ('hf-hub:org/repo' or 'local-dir:/folder'): its config.json is checked (types,
    a registered architecture, arguments that agree with the weights) before anything is built, and the model is
    built on the meta device and checked against the weights before it takes them."""
    location = model_name[len("hf-hub:"):] if model_name.startswith("hf-hub:") else model_name
    config, weights = read_repo_config(location, cache_dir)
    origin = f"{model_name} (config.json)"
    architecture, model_args = config.get("architecture"), config.get("model_args", {})
    if not isinstance(architecture, str) or not architecture:
        raise CheckpointError(f"{origin}: 'architecture' must be the name of a registered model, got {architecture!r}")
    if not is_model(architecture):
        raise CheckpointError(f"{origin} names the architecture {architecture!r}, which is not registered: if it is "
                              f"a custom model, import the module that registers it first (command line: "
                              f"ssmblocks --import MODULE ...); see ssmblocks.list_models()")
    if not isinstance(model_args, dict) or not all(isinstance(k, str) for k in model_args):
        raise CheckpointError(f"{origin}: 'model_args' must be an object of keyword arguments, got {model_args!r}")
    try:
        cfg = PretrainedCfg.from_dict({**config.get("pretrained_cfg", {}), "architecture": architecture})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{origin}: 'pretrained_cfg' is not valid: {err}") from err
    if model_name.startswith("hf-hub:"):
        cfg = dataclasses.replace(cfg, hf_hub_id=location)
    source = checkpoint_path or weights
    state = read_state_dict(source)
    args = {**model_args, **kwargs}
    _check_args_against_weights(architecture, args, state, f"{origin} with weights {source}")
    return _build_loaded(architecture, cfg, args, state, str(source))


def _check_args_against_weights(architecture: str, args: Mapping[str, Any], state: Mapping[str, Tensor],
                                origin: str) -> None:
    """Refuses arguments that contradict what the weights' shapes say (when the family has a detector): a config
    must not make a model of another size than its weights."""
    try:
        found = detect_checkpoint(state, origin)
    except CheckpointError:
        return                                  # a custom family: the guarded meta build and strict load check it
    if model_module(found.architecture) != model_module(architecture):
        return                                  # another family's weights: the strict load says which
    wrong = [f"{name}={args[name]!r} (the weights say {value!r})" for name, value in found.model_args.items()
             if name in args and _comparable(args[name]) != _comparable(value)]
    if wrong:
        raise CheckpointError(f"{origin}: the arguments do not describe the weights: {', '.join(wrong)}")


def _comparable(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=repr)


def _release_file_names(cfg: PretrainedCfg) -> set[str]:
    """The names the release's file is published under: its sources' base names (Hub globs name no file)."""
    names = {cfg.manual_filename}
    if cfg.file:
        names.add(Path(cfg.file).name)
    if cfg.url:
        names.add(Path(urllib.parse.urlparse(cfg.url).path).name)
    if cfg.hf_hub_id and not is_glob(cfg.hf_hub_filename):
        names.add(Path(cfg.hf_hub_filename).name)
    return names - {None}


def _identify_release(architecture: str, path: Path) -> tuple[PretrainedCfg, str] | None:
    """The release of ``architecture`` whose file ``path`` is, and how it was recognised: the first release whose
    declared sha256 (or prefix) the file's digest starts with, else the single release published under this file
    name. None when neither identifies one (or ``path`` is no file)."""
    releases = [get_pretrained_cfg(name) for name in list_pretrained(f"{architecture}.*")]
    if path.is_file() and any(cfg.sha256 for cfg in releases):
        digest = file_sha256(path)
        for cfg in releases:
            if cfg.sha256 and digest.startswith(cfg.sha256):
                return cfg, "sha256 match"
    named = [cfg for cfg in releases if path.name in _release_file_names(cfg)]
    return (named[0], "file name match") if len(named) == 1 else None


def _checkpoint_cfg(architecture: str, cfg: PretrainedCfg, path: Path,
                    overlay: dict[str, Any] | None) -> PretrainedCfg:
    """The cfg of a model named ``cfg`` whose weights were loaded from ``path``: the cfg of the release that file
    is (``_identify_release``; another tag of the architecture, e.g. ``dvmsr.params_ema`` for DVMSR.pth loaded
    into ``dvmsr``), else ``cfg`` with a note that the weights are not a known release's."""
    release = _identify_release(architecture, path)
    if release is None:
        return dataclasses.replace(cfg, notes=f"weights from {path.name}, not a known release file ({cfg.name}'s "
                                              f"cfg; its published numbers are the release's)")
    found, how = release
    found = dataclasses.replace(found, **overlay) if overlay else found
    return dataclasses.replace(found, notes=f"weights from {path.name} ({found.name} release: {how})")


def _detected_cfg(found: Detection, full_args: dict[str, Any], path: Path,
                  options: set[str] = frozenset()) -> PretrainedCfg:
    """The cfg of the release this file is (``_identify_release``) when it has the architecture's released
    hyperparameters; for another file of that size, the architecture's default cfg with a note saying the file is
    not a known release; otherwise (a custom size) a cfg that says it was detected, with the task facts but no
    weight source and no published numbers."""
    published = get_pretrained_cfg(found.architecture)
    release_args = {name: value for name, value in _build(found.architecture, published, {}, meta=True)
                    .model_args.items() if name not in options}      # options the caller chose: not the weights'
    if _comparable(release_args) == _comparable(full_args):
        release = _identify_release(found.architecture, path)
        if release is not None:
            cfg, how = release
            return dataclasses.replace(cfg, notes=f"detected from {path.name} ({cfg.name} release: {how}): "
                                                  f"{found.variant}")
        return dataclasses.replace(published, notes=f"detected from {path.name} (not a known release file; the "
                                                    f"released size, so {published.name}'s cfg): {found.variant}")
    keep = ("license", "paper", "origin_url", "task", "protocol")
    return PretrainedCfg(architecture=found.architecture, tag="custom",
                         **{name: getattr(published, name) for name in keep},
                         notes=f"detected from {path.name}, custom size: {found.variant}")


def _described_release(described: DescribedCheckpoint, full_args: dict[str, Any],
                        path: Path) -> PretrainedCfg | None:
    """The release a self-describing file is, by its file name: a cfg of any architecture of the same module (the
    ten EAMamba U-Net tasks share one architecture) published under ``path``'s name, for the same weight set
    (``weights_key``; None = the format's default), whose architecture builds exactly ``full_args``."""
    module = model_module(described.architecture)
    for name in list_pretrained():
        cfg = get_pretrained_cfg(name)
        if (model_module(cfg.architecture) == module and path.name in _release_file_names(cfg)
                and (cfg.weights_key or described.default_weights) == described.weights
                and _comparable(_build(cfg.architecture, cfg, {}, meta=True).model_args) == _comparable(full_args)):
            return cfg
    return None


def _check_options(options: Mapping[str, Any], model_args: Mapping[str, Any], origin: str) -> None:
    """Refuses load options that contradict the arguments the weights determine."""
    wrong = [f"{name}={value!r} (the weights say {model_args[name]!r})" for name, value in options.items()
             if name in model_args and _comparable(value) != _comparable(model_args[name])]
    if wrong:
        raise CheckpointError(f"{origin}: the options contradict the weights: {', '.join(wrong)}")


def model_from_state_dict(state: Mapping[str, Tensor], origin: str, **options: Any) -> nn.Module:
    """Builds the model a state dict belongs to (family, variant and hyperparameters detected) and loads it
    strictly; eval mode. The model is built on the meta device and takes the tensors, so no time is spent
    initialising weights that are then overwritten. ``origin`` names the source in messages and cfg notes; when it
    is the path of the file, a release's file is recognised by its sha256 or name and gets that release's cfg.
    ``options``: constructor arguments the weights do not determine (e.g. MambaIRv2's ``routing``); one that
    contradicts what the weights say is refused."""
    found = detect_checkpoint(state, origin)
    _check_options(options, found.model_args, origin)
    model = _build_loaded(found.architecture, PretrainedCfg(), {**found.model_args, **options}, state, origin)
    model_args = {name: value for name, value in model.model_args.items() if name not in options}
    model.pretrained_cfg = _detected_cfg(found, model_args, Path(origin), set(options))
    return model.eval()


def load_checkpoint(path: str | Path, weights: str | None = None, **options: Any) -> nn.Module:
    """Builds the model an (official or library) checkpoint file belongs to, loads it strictly, returns it in
    eval mode. A file of a self-describing format (``register_checkpoint_format``: EAMamba's) is built from the
    architecture and arguments it records; any other file is recognised from its keys and shapes (see
    ``detect_checkpoint``). ``weights`` picks one of several sets of weights in the file: a format's named set
    (EAMamba: 'sd_e' by default, or 'sd'), else the top-level entry of that name (BasicSR's 'params').
    ``options`` are constructor arguments the weights do not determine (MambaIRv2's ``routing="gumbel"``, ...); one
    that contradicts the file is refused."""
    origin = str(path)
    raw = read_checkpoint(path)
    described = describe_checkpoint(raw, origin, weights)
    if described is None:
        return model_from_state_dict(state_dict_of(raw, origin, weights), origin, **options)
    if not is_model(described.architecture):
        raise CheckpointError(f"{origin} describes the architecture {described.architecture!r}, which is not "
                              f"registered")
    _check_options(options, described.model_args, origin)
    _check_args_against_weights(described.architecture, described.model_args, described.state_dict, origin)
    model = _build_loaded(described.architecture, PretrainedCfg(), {**described.model_args, **options},
                          described.state_dict, origin)
    model_args = {name: value for name, value in model.model_args.items() if name not in options}
    release = _described_release(described, model_args, Path(origin))
    if release is not None:
        model.architecture = release.architecture
        model.pretrained_cfg = dataclasses.replace(release, notes=f"read from {Path(origin).name} ({release.name} "
                                                                  f"release: file name match): {described.variant}")
    else:
        found = Detection(described.family or getattr(model, "family", ""), described.architecture,
                          described.model_args, described.variant)
        model.pretrained_cfg = _detected_cfg(found, model_args, Path(origin), set(options))
    return model.eval()
