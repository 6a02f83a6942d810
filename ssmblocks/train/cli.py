"""``ssmblocks train`` / ``python -m ssmblocks.train``: the command line of the training loop.

    python -m ssmblocks.train --model mambair_light_x2 --data DIV2K_HR --task sr --steps 500000 \\
        --batch-size 8 --patch-size 128 --lr 2e-4 --out runs/light_x2
    torchrun --nproc_per_node 8 -m ssmblocks.train ...   # the same run on 8 GPUs (DDP)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ssmblocks.train.data import TASKS
from ssmblocks.train.loop import LOSSES, OPTIMIZERS, TrainConfig, train

__all__ = ["build_parser", "main"]

_HELP = {
    "model": "registered model name (ssmblocks.list_models())",
    "data": "folder of high-quality images (or of frame folders with --frames)",
    "out": "output folder: config.json + model.safetensors, log.jsonl, training_state.pt",
    "task": "how inputs are made from --data: bicubic downscaling, JPEG, or Gaussian noise",
    "scale": "upscaling factor (default: the model's; must match it)",
    "lq_data": "folder of ready-made inputs, same file names as --data (instead of degrading on the fly)",
    "val_data": "held-out high-quality images; PSNR/SSIM logged at the end and every --val-every steps",
    "val_lq_data": "ready-made inputs for --val-data",
    "frames": "video models: clips of this many consecutive frames from the frame folders of --data",
    "data_cache": "folder for decoded frames as uncompressed .npy files, decoded once and read a patch at a time "
                  "(disk: the uncompressed size of the data); samples are identical without it",
    "jpeg_quality": "JPEG quality of the inputs (task jpeg; with task sr: compressed SR)",
    "noise_sigma": "Gaussian noise standard deviation on the 0-255 scale (task denoise)",
    "steps": "optimiser steps",
    "batch_size": "patches per step and process",
    "patch_size": "side of the ground-truth patches (a multiple of the scale)",
    "lr": "peak learning rate",
    "min_lr_ratio": "final learning rate of the cosine, as a fraction of --lr",
    "warmup_steps": "linear warm-up steps",
    "optimizer": "optimiser",
    "weight_decay": "weight decay",
    "betas": "Adam betas",
    "clip_grad": "maximum gradient norm (0: no clipping)",
    "ema_decay": "keep an EMA of the weights with this decay (e.g. 0.999; 0: off); exported weights are the EMA's",
    "loss": "pixel loss: L1, Charbonnier, or VSRM's Frequency Charbonnier-like loss",
    "bf16": "bf16 autocast (only for models whose cfg supports it)",
    "model_kwargs": "JSON object of model constructor arguments, e.g. '{\"embed_dim\": 48}'",
    "init_checkpoint": "start from these weights (fine-tuning)",
    "teacher": "distil from this zoo model (needs --teacher-checkpoint)",
    "teacher_checkpoint": "the teacher's weights",
    "distill_weight": "weight of the feature-distillation term (the pixel term has weight 1; DVMSR: 1)",
    "seed": "seed of the initial weights, the data order and every augmentation",
    "workers": "data-loading processes per training process",
    "log_every": "log the mean loss every N steps",
    "save_every": "save weights and the resumable state every N steps",
    "val_every": "validate every N steps (0: only at the end)",
    "val_y_channel": "validation metrics on the Y channel (BasicSR's test_y_channel)",
    "resume": "continue the run saved in --out",
    "stop_after": "stop after this step with the state saved, as an interruption would (then --resume)",
    "progress": "progress bar",
}
_CHOICES = {"task": TASKS, "optimizer": tuple(OPTIMIZERS), "loss": tuple(LOSSES)}


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, e.g. '{{\"embed_dim\": 48}}' "
                                         f"(quote it for the shell), got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds '(default: ...)' to a flag's help unless the default is None or the help already states it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field (``--batch-size`` for ``batch_size``), with the field's default."""
    parser = argparse.ArgumentParser(prog="ssmblocks train", description=__doc__.splitlines()[0],
                                     formatter_class=_HelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (f.default_factory() if f.default is dataclasses.MISSING else f.default)
        options = {"help": _HELP[f.name], "required": required}
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, **options)
        elif f.name == "betas":
            parser.add_argument(flag, type=float, nargs=2, default=default, **options)
        elif f.name == "model_kwargs":
            parser.add_argument(flag, type=_json_object, default=default, **options)
        else:
            kind = {"int": int, "float": float}.get(str(f.type).split(" |")[0], str)
            parser.add_argument(flag, type=kind, default=default, choices=_CHOICES.get(f.name), **options)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parses ``argv`` (default: sys.argv), trains, returns the exit status."""
    args = build_parser().parse_args(argv)
    config = TrainConfig(**{k: tuple(v) if k == "betas" else v for k, v in vars(args).items()})
    try:
        train(config)
    except (ValueError, FileNotFoundError) as err:
        print(f"ssmblocks train: error: {err}", file=sys.stderr)
        return 2
    return 0
