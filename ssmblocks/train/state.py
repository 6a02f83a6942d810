"""The output folder of a run: exported weights, the resumable training state, and the random-number states.

Files: ``config.json`` + ``model.safetensors`` + ``README.md`` (written by ``ssmblocks.save_for_hub``, the EMA
weights when EMA is on; ``create_model("local-dir:<out>")`` reads them), ``training_state.pt`` (step, weights,
EMA, optimiser, schedule, every rank's RNG states, the run's arguments), ``train_args.json`` and ``log.jsonl``.
Every file is written to a temporary name and renamed, so an interruption leaves the previous version whole.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ssmblocks import save_for_hub
from ssmblocks._atomic import atomic_dir, atomic_path

__all__ = ["STATE_NAME", "export_weights", "load_state", "rng_state", "save_state", "set_rng_state", "write_json"]

STATE_NAME = "training_state.pt"


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and CUDA) global generator states, in a form torch.save(weights_only)
    reads back."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position,
                                                    has_gauss, cached), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_state(out: Path, state: dict[str, Any]) -> None:
    with atomic_path(out / STATE_NAME) as partial:
        torch.save(state, partial)


def load_state(out: Path) -> dict[str, Any]:
    path = out / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} does not exist (no earlier run saved its state in {out})")
    return torch.load(path, map_location="cpu", weights_only=True)


def export_weights(model: nn.Module, out: Path) -> None:
    """Writes the model as ``save_for_hub`` does (a zoo model), or only ``model.safetensors`` (any other
    module), each file replacing the previous one whole (``ssmblocks._atomic.atomic_dir``)."""
    with atomic_dir(out) as staging:
        if getattr(model, "architecture", ""):
            save_for_hub(model, staging)
        else:
            save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                      str(staging / "model.safetensors"))


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
