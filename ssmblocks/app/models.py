"""The models the page offers and how it loads them: the zoo's published weights that can be had here (bundled or
downloadable), or a checkpoint file whose family is detected as ``ssmblocks.load_checkpoint`` does.

No Gradio here: the page (``ssmblocks.app.page``) calls these functions, and tests call them directly.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ssmblocks

__all__ = ["CHECKPOINT_CHOICE", "ModelFacts", "ModelLoader", "available_devices", "dtype_choices", "model_choices",
           "model_facts", "runtime_options"]

#: The picker's entry for "load a checkpoint file" (its value; the label is in ``model_choices``).
CHECKPOINT_CHOICE = "checkpoint file"
# Weight sources the page can fetch by itself; "gdrive" needs the optional gdown package, "manual" a person.
_FETCHABLE = ("file", "hf-hub", "url")
# Constructor options that change how a model runs, not its weights, and the values the page offers for each.
# A model shows the control when its ``model_args`` has the option (MambaIRv2's routing: argmax or the official
# random Gumbel routing).
RUNTIME_OPTIONS: dict[str, tuple[str, ...]] = {"routing": ("argmax", "gumbel")}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelFacts:
    """What the page needs to know about a model's inputs and outputs."""

    scale: int
    in_chans: int
    video: bool
    min_frames: int
    supports_fp16: bool
    supports_bf16: bool


def model_facts(model: nn.Module) -> ModelFacts:
    """What the page shows of the model's contract (``ssmblocks.contract_of``); sizes and padding are
    ``restore``'s business."""
    contract = ssmblocks.contract_of(model)
    return ModelFacts(scale=contract.scale, in_chans=contract.in_chans, video=contract.is_video,
                      min_frames=contract.min_frames, supports_fp16=contract.supports_fp16,
                      supports_bf16=contract.supports_bf16)


def _fetchable(source: str | None) -> bool:
    return source in _FETCHABLE or (source == "gdrive" and importlib.util.find_spec("gdown") is not None)


def model_choices() -> list[tuple[str, str]]:
    """(label, value) for the picker: every published release whose weights are bundled or can be downloaded
    here (Google Drive ones when gdown is installed), then the "load a checkpoint file" entry. The bundled model
    comes first: it works offline. (What a model takes is shown once it is loaded: ``model_facts``.)"""
    sources = {"file": "bundled, offline", "hf-hub": "download from the Hub", "url": "download",
               "gdrive": "download from Google Drive"}
    releases = {name: ssmblocks.get_pretrained_cfg(name).source for name in ssmblocks.list_pretrained()}
    names = sorted((name for name, source in releases.items() if _fetchable(source)),
                   key=lambda name: releases[name] != "file")
    return [*((f"{name} ({sources[releases[name]]})", name) for name in names),
            ("Load a checkpoint file (.pth, .safetensors)...", CHECKPOINT_CHOICE)]


def runtime_options(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """The options of ``RUNTIME_OPTIONS`` this model has, with the values offered."""
    args = getattr(model, "model_args", {})
    return {name: values for name, values in RUNTIME_OPTIONS.items() if name in args}


def available_devices() -> list[str]:
    """'cpu', then every CUDA device and 'mps' where this machine has them."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *cuda, *(["mps"] if torch.backends.mps.is_available() else [])]


def dtype_choices(facts: ModelFacts) -> list[str]:
    """float32, and the half types the model declares it supports."""
    return ["float32", *(["bfloat16"] if facts.supports_bf16 else []), *(["float16"] if facts.supports_fp16 else [])]


def _with_options(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    """The same weights in a model built with ``options`` changed (options that do not change the weights)."""
    changed = {k: v for k, v in options.items() if model.model_args.get(k) != v}
    if not changed:
        return model
    rebuilt = ssmblocks.create_model(model.architecture, **{**model.model_args, **changed})
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.pretrained_cfg = model.pretrained_cfg
    return rebuilt.eval()


class ModelLoader:
    """Loads the picked model (one kept in memory: the last one asked for) for the page's requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._model: nn.Module | None = None

    def get(self, choice: str, checkpoint: str | Path | None = None, options: dict[str, Any] | None = None,
            dtype: str = "float32") -> nn.Module:
        """The model of a picker value (a release name, or ``CHECKPOINT_CHOICE`` with ``checkpoint`` a file), with
        runtime ``options``, its parameters in ``dtype`` (a key of ``DTYPES``); eval mode. Another dtype loads the
        weights again: a float32 model converted to bfloat16 and back would keep the rounding. Raises ValueError (no
        file given, unknown dtype), CheckpointError, PretrainedUnavailableError as the library does."""
        if dtype not in DTYPES:
            raise ValueError(f"unknown precision {dtype!r}; choose one of {', '.join(DTYPES)}")
        options = {k: v for k, v in (options or {}).items() if k in RUNTIME_OPTIONS and v}
        if choice == CHECKPOINT_CHOICE:
            if not checkpoint:
                raise ValueError("choose a checkpoint file (.pth or .safetensors) to load")
            base_key: tuple[Any, ...] = (choice, str(checkpoint))
        else:
            base_key = (choice,)
        key = (*base_key, tuple(sorted(options.items())), dtype)
        with self._lock:
            if self._key != key:
                self._model = None       # free the previous model before loading the next
                if choice == CHECKPOINT_CHOICE:
                    model = ssmblocks.load_checkpoint(checkpoint)
                else:
                    model = ssmblocks.create_model(choice, pretrained=True).eval()
                model = _with_options(model, {k: v for k, v in options.items() if k in runtime_options(model)})
                self._model = model.to(DTYPES[dtype])
                self._key = key
            return self._model
