"""``ssmblocks train`` (also ``python -m ssmblocks.train``): the command line of the training loop.

    ssmblocks train --model mambair_light_x2 --data DIV2K_HR --task sr --steps 500000 \\
        --batch-size 8 --patch-size 128 --lr 2e-4 --out runs/light_x2
    torchrun --nproc_per_node 8 -m ssmblocks.train ...   # the same run on 8 GPUs (DDP)

One flag per ``TrainConfig`` field (``--batch-size`` for ``batch_size``), generated from the field's type, default
and metadata (help text, choices). ``ssmblocks.cli`` adds the flags to its ``train`` subcommand, so errors and exit
statuses are those of every ``ssmblocks`` command; when the run ends, ``summary`` says what it did.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssmblocks.train.loop import TrainConfig

__all__ = ["HelpFormatter", "add_arguments", "build_parser", "config_from_args", "main", "summary"]


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, e.g. '{{\"embed_dim\": 48}}' "
                                         f"(quote it for the shell), got {text!r}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds '(default: ...)' to a flag's help unless the default is None or the help already states it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _value_type(hint: Any) -> Any:
    """The type of a field's value, without ``| None``."""
    args = typing.get_args(hint)
    return next(arg for arg in args if arg is not type(None)) if type(None) in args else hint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per TrainConfig field, with the field's default, help and choices."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else f.default_factory() if f.default is dataclasses.MISSING else f.default
        options = {"help": f.metadata["help"], "required": required, "default": default}
        kind = _value_type(hints[f.name])
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is tuple:          # betas: two floats
            items = typing.get_args(kind)
            parser.add_argument(flag, type=items[0], nargs=len(items), **options)
        elif typing.get_origin(kind) is dict:           # model_kwargs
            parser.add_argument(flag, type=_json_object, **options)
        else:
            parser.add_argument(flag, type=kind, choices=f.metadata.get("choices"), **options)


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``ssmblocks train`` as a parser of their own."""
    parser = argparse.ArgumentParser(prog="ssmblocks train", description="Train a model.",
                                     formatter_class=HelpFormatter)
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed flags (other attributes of ``args`` are ignored)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


def _records(log: Path) -> list[dict[str, Any]]:
    """The lines of log.jsonl (a line cut short by a killed run is skipped)."""
    records = []
    for line in log.read_text().splitlines() if log.is_file() else []:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def summary(config: TrainConfig) -> str:
    """What a finished (or stopped) run did, read back from its output folder: where it wrote, how many steps it
    has trained, its last logged loss and its last validation scores."""
    out = Path(config.out)
    records = _records(out / "log.jsonl")
    step = max((record["step"] for record in records), default=0)
    losses = [record for record in records if "loss" in record]
    scores = [record for record in records if "val_psnr" in record]
    stopped = "" if step >= config.steps else " (stopped early: the same command with --resume continues it)"
    lines = [f"trained {config.model} for {step} of {config.steps} steps{stopped}",
             f"  weights:    {out / 'model.safetensors'}{' (the EMA weights)' if config.ema_decay else ''} and "
             f"config.json; restore with them: ssmblocks restore IMAGES -o OUT --model local-dir:{out}"]
    if losses:
        lines.append(f"  loss:       {losses[-1]['loss']:.4g} at step {losses[-1]['step']} (first logged: "
                     f"{losses[0]['loss']:.4g} at step {losses[0]['step']})")
    if scores:
        last = scores[-1]
        lines.append(f"  validation: PSNR {last['val_psnr']:.2f} dB, SSIM {last['val_ssim']:.4f} at step "
                     f"{last['step']} ({'Y' if config.val_y_channel else 'RGB'}, border = scale)")
    else:
        lines.append("  validation: none (--val-data HELD_OUT_IMAGES measures PSNR/SSIM)")
    lines.append(f"  log:        {out / 'log.jsonl'}; resumable state: {out / 'training_state.pt'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``ssmblocks train`` with ``argv`` (default: sys.argv); returns the exit status (0, or 1 after a one-line
    error)."""
    from ssmblocks.cli import main as ssmblocks_main

    return ssmblocks_main(["train", *(sys.argv[1:] if argv is None else argv)])
