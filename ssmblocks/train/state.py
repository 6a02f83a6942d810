"""The output folder of a run: exported weights, the resumable training state, and the random-number states.

Files: ``config.json`` + ``model.safetensors`` + ``README.md`` (written by ``ssmblocks.save_for_hub``, the EMA
weights when EMA is on; ``create_model("local-dir:<out>")`` reads them), ``training_state.pt`` (step, weights,
EMA, optimiser, schedule, every rank's RNG states, the run's arguments), ``train_args.json`` and ``log.jsonl``.
Every file is written to a temporary name and renamed, so an interruption leaves the previous version whole; the
hidden temporaries a killed run leaves (``.training_state.pt.*.part``, staging folders ``.<out>.*``) are removed
when the next run starts (``clear_leftovers``). A folder that holds a run (``holds_run``) is not trained into again
unless the run is resumed or overwritten on request. ``load_state`` refuses an empty, damaged or incomplete state
file with a ValueError naming it.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ssmblocks import save_for_hub
from ssmblocks._atomic import atomic_dir, atomic_path

__all__ = ["RUN_FILES", "STATE_NAME", "clear_leftovers", "export_weights", "holds_run", "load_state", "rng_state",
           "save_state", "set_rng_state", "write_json"]

STATE_NAME = "training_state.pt"
# The files a run writes into its folder; any of them means the folder holds a run
RUN_FILES = (STATE_NAME, "log.jsonl", "train_args.json", "model.safetensors", "config.json")
# What the state must hold to be resumed
_STATE_KEYS = ("step", "objective", "optimizer", "schedule", "ema", "rng", "world_size", "config")


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


def holds_run(out: Path) -> list[str]:
    """The files of a run (``RUN_FILES``) in ``out``; empty when there are none."""
    return [name for name in RUN_FILES if (out / name).exists()]


def clear_leftovers(out: Path) -> list[Path]:
    """Removes the hidden temporaries that killed writes left in ``out``: ``.<file>.*`` of the run's files and the
    staging folders ``.<out name>.*`` of its exports. Other files stay. Returns what was removed."""
    prefixes = tuple(f".{name}." for name in (*RUN_FILES, "README.md", out.name))
    removed = []
    for item in out.iterdir() if out.is_dir() else []:
        if item.name.startswith(prefixes):
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed.append(item)
    return removed


def load_state(out: Path) -> dict[str, Any]:
    """The saved state of the run in ``out``; FileNotFoundError when there is none, ValueError naming the file when
    it is empty, cut short, not a training state, or lacks one of its parts."""
    path = out / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} does not exist (no earlier run saved its state in {out})")
    redo = "resume from a copy of the folder, or start again with --overwrite"
    if path.stat().st_size == 0:
        raise ValueError(f"--resume: {path} is empty (a save cut short before anything was written); {redo}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:   # torch.load raises many kinds for a damaged file; none may escape
        raise ValueError(f"--resume: {path} is not a training state that can be read ({type(err).__name__}): the "
                         f"file is damaged or is another kind of file; {redo}") from err
    if not isinstance(state, dict):
        raise ValueError(f"--resume: {path} is not a training state (it holds a {type(state).__name__}); {redo}")
    missing = [key for key in _STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"--resume: {path} lacks {', '.join(missing)}: not a complete training state; {redo}")
    return state


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
