"""The ``ssmblocks`` command: list, info, restore, eval, convert, bench, demo, export, train.

    ssmblocks list 'mambair*' --pretrained
    ssmblocks info mambair_light_x4
    ssmblocks restore photo.png frames/ -o out/ --model mambair_light_x4 --checkpoint MambaIR_light_x4.pth
    ssmblocks eval --checkpoint MambaIR_SR_x4.pth --lq Urban100/LR_bicubic/X4 --gt Urban100/HR --baseline bicubic
    ssmblocks convert MambaIR_SR_x4.pth hub/mambair_sr_x4
    ssmblocks bench --model mambair_light_x4 --size 128
    ssmblocks train --model test_mambair_sr --data hq_images/ --out runs/tiny --steps 100

The command parses, calls the library and prints: restoring files is ``ssmblocks.inference.restore_paths``,
evaluation ``ssmblocks.inference.evaluate``, training ``ssmblocks.train.train``. What it can check before a model
is built or run (output names, devices, model names) it checks first. Errors are one line (``ssmblocks: error:
...``, exit status 1; mistakes in the arguments themselves: argparse's usage message, exit status 2). Outputs are
written atomically. Under ``torchrun``, ``restore`` and ``eval`` split their inputs across the processes (``eval``
gathers the scores) and ``train`` trains with DDP.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ssmblocks
from ssmblocks._atomic import atomic_dir
from ssmblocks._checkpoint import CHECKPOINT_SUFFIXES, CheckpointError
from ssmblocks._contract import ModelContract, contract_of
from ssmblocks._timing import median_ms
from ssmblocks._weights import PretrainedUnavailableError, drive_page
from ssmblocks.app import serve as app_serve
from ssmblocks.demo import DEFAULT_MODEL
from ssmblocks.export import MissingExportBackendError, export_onnx
from ssmblocks.inference import PROTOCOLS, EvalReport, evaluate, metric_defaults, plan_restore, restore_paths
from ssmblocks.inference.evaluate import BASELINES
from ssmblocks.inference.tiling import parse_bytes
from ssmblocks.inference.video_io import MissingVideoBackendError
from ssmblocks.ops import get_backend
from ssmblocks.profiling import profile
from ssmblocks.train import train
from ssmblocks.train.cli import HelpFormatter, add_arguments, config_from_args, summary

__all__ = ["DEFAULT_MODEL", "main"]

BENCH_MODEL = "mambair_light_x4"
# Frames of the clip `info`, `bench` and `export` run a video model on (at least the model's min_frames)
_CLIP_FRAMES = 3
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_ERRORS = (FileNotFoundError, ValueError, TypeError, CheckpointError, PretrainedUnavailableError, OSError,
           MissingVideoBackendError, MissingExportBackendError)
# Library messages written for Python callers, and what a command-line user does instead
_CLI_WAY = (
    ("use ssmblocks.load_checkpoint(path) to build the right model", "drop --model to build the model the file "
     "belongs to"),
    ("load it with ssmblocks.create_model(name, checkpoint_path=...) naming the architecture", "name the "
     "architecture with --model"),
    ("build it with pretrained=False", "pass a weight file for it with --checkpoint"),
    ("unclipped=True (command line: --unclipped)", "--unclipped"),
)
# What a command does when memory runs out
_OUT_OF_MEMORY_WAY = {
    "restore": "restore in tiles that fit with --memory-budget (e.g. 2GB) or --tile (e.g. 256), or a smaller "
               "--temporal-chunk for video models",
    "eval": "run in tiles that fit with --memory-budget (e.g. 2GB) or --tile (e.g. 256)",
    "train": "use a smaller --batch-size or --patch-size (or fewer --frames)",
}


class CommandError(Exception):
    """A user error the command reports in one line."""


# ---- helpers -----------------------------------------------------------------------------------------------------
def _model_cfg(name: str) -> ssmblocks.PretrainedCfg | None:
    """The cfg of a registered name (None for 'local-dir:' / 'hf-hub:' names); an unknown name is an error that
    suggests close names and points to `ssmblocks list`."""
    if name.startswith(("hf-hub:", "local-dir:")):
        return None
    if "/" in name or Path(name).suffix in CHECKPOINT_SUFFIXES:
        raise CommandError(f"{name!r} looks like a weight file, not a model name: weight files go to --checkpoint "
                           f"(`ssmblocks list` shows the model names)")
    if not ssmblocks.is_model(name.partition(".")[0]):
        names = ssmblocks.list_models() + ssmblocks.list_pretrained()
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CommandError(f"unknown model {name!r}{hint} (`ssmblocks list` shows every name)")
    return ssmblocks.get_pretrained_cfg(name)   # an unknown tag: its error lists the tags


def _load_model(name: str | None, checkpoint: str | None) -> nn.Module:
    """--checkpoint alone: family detected from the file; --model alone: its published weights; both: that
    architecture with that file (a checkpoint of another family is an error); neither: DEFAULT_MODEL."""
    if name is None and checkpoint is not None:
        return ssmblocks.load_checkpoint(checkpoint)
    name = name or DEFAULT_MODEL
    cfg = _model_cfg(name)
    if checkpoint is not None:
        return ssmblocks.create_model(name, checkpoint_path=checkpoint).eval()
    if cfg is not None and not cfg.has_weights:
        raise CommandError(f"{cfg.name} has no published weights: pass a weight file for it with --checkpoint "
                           f"(`ssmblocks list --pretrained` lists the models with weights)")
    return ssmblocks.create_model(name, pretrained=True).eval()


def _rank_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _available_devices() -> list[str]:
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *cuda, *(["mps"] if torch.backends.mps.is_available() else [])]


def _device(requested: str | None) -> str:
    """--device, checked (one-line error naming the devices this machine has); default: cuda if available."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            device = None
        available = _available_devices()
        if device is None or (device.type in ("cuda", "mps") and str(device) not in available
                              and f"{device}:0" not in available):
            what = ("is not a device name" if device is None
                    else f"is not available on this machine (torch {torch.__version__})")
            raise CommandError(f"--device {requested} {what}; available: {', '.join(available)}")
        return requested
    if torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
    return "cpu"


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """How `restore` and `eval` run the model (``ssmblocks.restore``'s arguments), checked before any model is
    built: the device, the memory budget, an overlap only with tiles."""
    if args.memory_budget is not None:
        parse_bytes(args.memory_budget)
    if args.tile_overlap is not None and args.tile is None and args.memory_budget is None:
        raise CommandError("--tile-overlap is the overlap of tiles, and there are none: give --tile (or "
                           "--memory-budget) with it, or leave it out")
    return {"tile": args.tile, "tile_overlap": args.tile_overlap, "protocol": args.protocol,
            "memory_budget": args.memory_budget, "device": _device(args.device), "dtype": _DTYPES[args.dtype],
            "unclipped": args.unclipped}


def _digits(value: float) -> str:
    """At least three significant digits, without an exponent (0.000123, 12.3, 1234)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def _example_shape(contract: ModelContract, height: int, width: int, frames: int | None = None) -> tuple[int, ...]:
    """The input shape to profile, time or export a model on: (1, C, H, W) images, or for a video model
    (1, T, C, H, W) with T = ``frames`` or max(``contract.min_frames``, _CLIP_FRAMES)."""
    return contract.example_shape(height, width, frames or (max(contract.min_frames, _CLIP_FRAMES)
                                                            if contract.is_video else None))


# ---- list / info -------------------------------------------------------------------------------------------------
def _cmd_list(args: argparse.Namespace) -> None:
    names = ssmblocks.list_models(args.pattern or "", pretrained=args.pretrained)
    if not names:
        raise CommandError(f"no {'pretrained ' if args.pretrained else ''}model matches {args.pattern!r}")
    for name in names:
        if args.pretrained:
            cfg = ssmblocks.get_pretrained_cfg(name)
            print(f"{name:40s} {cfg.source:8s} {cfg.task}")
        else:
            print(name)


def _parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W); 'N' -> (N, N); both at least 1."""
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"sizes are HEIGHTxWIDTH or N (NxN), each at least 1 pixel, e.g. 180x320, "
                                         f"got {text!r}")
    height, width = sides * (3 - len(sides))
    return height, width


def _cmd_info(args: argparse.Namespace) -> None:
    name = args.model or DEFAULT_MODEL
    cfg = _model_cfg(name)
    if cfg is None:
        raise CommandError("info takes a registered model name (`ssmblocks list` shows them)")
    if args.no_flops:   # the contract only: built without memory or initialisation
        with torch.device("meta"):
            model = ssmblocks.create_model(name)
    else:
        model = ssmblocks.create_model(name)
    contract, metrics = contract_of(model), metric_defaults(model)
    where = {"file": cfg.file, "hf-hub": f"{cfg.hf_hub_id}/{cfg.hf_hub_filename}", "url": cfg.url,
             "gdrive": f"{cfg.manual_filename or 'the file'} at {drive_page(cfg)} (Google Drive, through gdown)",
             "manual": f"{cfg.manual_url} (download by hand)", None: "no published weights"}[cfg.source]
    lines = [f"{cfg.name}: {cfg.task or 'image restoration'}", f"  paper:     {cfg.paper or '-'}",
             f"  source:    {cfg.origin_url or '-'}", f"  licence:   {cfg.license or '-'}", f"  weights:   {where}",
             f"  protocol:  {cfg.protocol or 'whole image'}" + (f" ({cfg.test_protocol})" if cfg.test_protocol else ""),
             f"  eval:      {'Y' if metrics.y_channel else 'RGB'}, border {metrics.crop_border} ({metrics.source})",
             f"  size:      x{contract.scale}, {contract.in_chans} -> {contract.out_chans} channels, at least "
             f"{contract.min_size}px, multiple of {contract.multiple_of}"
             + (f", clips of at least {contract.min_frames} frames" if contract.is_video else "")
             + f"; fp16 {'yes' if contract.supports_fp16 else 'no'}, bf16 {'yes' if contract.supports_bf16 else 'no'}"]
    lines += [f"  published: {benchmark} {value}" for benchmark, value in cfg.metrics.items()]
    if cfg.notes:
        lines.append(f"  notes:     {cfg.notes}")
    print("\n".join(lines))
    if not args.no_flops:
        scale, least = contract.scale, contract.min_size
        height, width = args.size or (max(720 // scale, least), max(1280 // scale, least))
        shape = _example_shape(contract, height, width)
        notes = ([f"a clip of {shape[1]} frames"] if len(shape) == 5 else []) + \
            ([] if args.size else [f"output {height * scale}x{width * scale}"])
        print(f"  cost:      {profile(model, shape)}" + (f" ({', '.join(notes)})" if notes else ""))


# ---- restore / eval ----------------------------------------------------------------------------------------------
def _cmd_restore(args: argparse.Namespace) -> None:
    plan = plan_restore(args.inputs, args.output, ext=args.ext)   # every output name checked before the model
    options = _run_options(args)
    model = _load_model(args.model, args.checkpoint)
    rank, world = _rank_world()
    report = restore_paths(model, plan, rank=rank, world_size=world, temporal_chunk=args.temporal_chunk,
                           temporal_overlap=args.temporal_overlap, **options)
    share = f" (process {rank + 1} of {world})" if world > 1 else ""
    done = [f"{report.images} image{'s' if report.images != 1 else ''}"] if report.images or not report.videos else []
    if report.videos:
        done.append(f"{report.videos} video{'s' if report.videos != 1 else ''} ({report.frames} frames)")
    print(f"restored {' and '.join(done)}{share} in {report.seconds:.1f} s "
          f"with {getattr(model, 'architecture', type(model).__name__)} -> {args.output}")


def _print_report(report: EvalReport) -> None:
    def scores(psnr: float | None, ssim: float | None, label: str = "") -> str:
        return "" if psnr is None else f"  {label}PSNR {psnr:7.3f} dB  SSIM {ssim:.4f}"

    for row in report.rows:
        print(f"{row.name:30s}{scores(row.psnr, row.ssim)}{scores(row.baseline_psnr, row.baseline_ssim, 'bicubic ')}")
    gain = f"  ({report.psnr - report.baseline_psnr:+.3f} dB over bicubic)" if report.baseline else ""
    print(f"mean over {len(report.rows)} images:{scores(report.psnr, report.ssim)}"
          f"{scores(report.baseline_psnr, report.baseline_ssim, 'bicubic ')}{gain}  ({report.colour_space}, crop "
          f"{report.crop_border}: {report.settings_from}; {report.run}; {report.model})")


def _cmd_eval(args: argparse.Namespace) -> None:
    options = _run_options(args)
    model = _load_model(args.model, args.checkpoint)
    rank, world = _rank_world()
    report = evaluate(model, args.lq, args.gt, crop_border=args.crop_border, y_channel=args.y_channel,
                      baseline=args.baseline, rank=rank, world_size=world, **options)
    if rank == 0:
        _print_report(report)


# ---- convert / bench / demo / export / train ---------------------------------------------------------------------
def _cmd_convert(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandError(f"{out} exists and is not empty: name a new (or an empty) folder")
    model = ssmblocks.load_checkpoint(args.checkpoint)
    with atomic_dir(out) as staging:
        ssmblocks.save_for_hub(model, staging)
    print(f"{args.checkpoint}: {model.pretrained_cfg.notes}\nwrote {out}/ (model.safetensors, config.json, README.md); "
          f"use it with --model local-dir:{out} (Python: ssmblocks.create_model('local-dir:{out}'))")


def _cmd_bench(args: argparse.Namespace) -> None:
    _model_cfg(args.model)
    device, dtype = _device(args.device), _DTYPES[args.dtype]
    if args.threads:
        torch.set_num_threads(args.threads)
    model = ssmblocks.create_model(args.model).eval().to(device, dtype)
    height, width = args.size
    x = torch.rand(_example_shape(contract_of(model), height, width), device=device, dtype=dtype)
    with torch.inference_mode():
        ms = median_ms(lambda: model(x), args.repeats)
    frames = x.shape[1] if x.dim() == 5 else 1
    clip = f"{frames} frames of " if x.dim() == 5 else ""
    print(f"{args.model} on {clip}{height}x{width} ({args.dtype}, {x.device}, {torch.get_num_threads()} threads, "
          f"scan backend {get_backend('selective_scan', x.device, x.dtype)}): {_digits(ms)} ms, "
          f"{_digits(frames * height * width / ms / 1e3)} input megapixels/s")


def _cmd_demo(args: argparse.Namespace) -> None:
    from ssmblocks.demo import main as demo

    demo(args.out)


def _cmd_export(args: argparse.Namespace) -> None:
    model = _load_model(args.model, args.checkpoint)
    example = torch.rand(_example_shape(contract_of(model), *args.size, frames=args.frames))
    path = export_onnx(model, args.output, example)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) for inputs {tuple(example.shape)}")


def _cmd_train(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    _model_cfg(config.model)
    train(config)
    if _rank_world()[0] == 0:
        print(summary(config))


# ---- parser ------------------------------------------------------------------------------------------------------
def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help=f"registered name, 'local-dir:FOLDER' or 'hf-hub:ORG/REPO' (default "
                        f"{DEFAULT_MODEL}, the bundled model, unless --checkpoint is given)")
    parser.add_argument("--checkpoint", help="a weight file (official or ssmblocks); its family is detected")


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=int, help="tile side in input pixels (blended overlapping tiles)")
    parser.add_argument("--tile-overlap", type=int, help="tile overlap in input pixels, at most half the tile "
                        "(default 32, or half the tile if smaller)")
    parser.add_argument("--memory-budget", help="pick the tile size to fit, e.g. 2GB")
    parser.add_argument("--protocol", choices=[p for p in PROTOCOLS if p],
                        help="an official test procedure, or 'none' for the whole image (default: the model's own, "
                        "unless --tile or --memory-budget is given)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--dtype", choices=list(_DTYPES), default="float32")
    parser.add_argument("--unclipped", action="store_true", help="accept float images (float TIFFs) with values "
                        "outside [0, 1], such as noisy inputs of a denoising model (default: refused)")


def _import_plugins(modules: Sequence[str]) -> None:
    """Imports the modules named by --import (custom models register themselves when imported)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise CommandError(f"--import {module}: cannot import it ({type(err).__name__}: {err}); it must be "
                               f"importable from this Python (installed, or on PYTHONPATH)") from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssmblocks", description="State-space (Mamba) image and video restoration.")
    parser.add_argument("--version", action="version", version=f"ssmblocks {ssmblocks.__version__}")
    importing = argparse.ArgumentParser(add_help=False)   # every command takes it, before or after its name
    importing.add_argument("--import", dest="imports", action="append", metavar="MODULE", default=argparse.SUPPRESS,
                           help="import MODULE first: a package of your own that registers models (repeatable)")
    parser.add_argument("--import", dest="imports", action="append", metavar="MODULE", default=[],
                        help="import MODULE first: a package of your own that registers models (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **k: add_parser(*a, parents=[importing, *k.pop("parents", [])], **k)

    p = sub.add_parser("list", help="registered models")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'mambair*'")
    p.add_argument("--pretrained", action="store_true", help="only names with published weights, with their source")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="a model's cfg, weights, licence, published numbers, protocol, params/FLOPs")
    p.add_argument("model", nargs="?", help=f"a registered name (default: {DEFAULT_MODEL}, the bundled model)")
    p.add_argument("--size", type=_parse_size, help="input HEIGHTxWIDTH (or N for NxN) for FLOPs (default: "
                   "output 1280x720)")
    p.add_argument("--no-flops", action="store_true", help="skip the parameter/FLOP count")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("restore", help="restore image files, video files (needs PyAV: pip install "
                       "'ssmblocks[video]'), folders and folders of frames")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("-o", "--output", required=True, help="output folder (or a file name for one input image or "
                   "video; a folder receives a video's frames)")
    p.add_argument("--ext", default="png", help="output format for folders (default png); a video suffix (mp4, mkv, "
                   "mov, avi, webm) writes videos as video files in the folder")
    p.add_argument("--temporal-chunk", type=int, help="video models: restore clips in chunks of N frames (default: "
                   "the whole clip)")
    p.add_argument("--temporal-overlap", type=int, default=2, help="frames shared by neighbouring chunks, blended "
                   "(default 2)")
    _add_model_args(p)
    _add_run_args(p)
    p.set_defaults(run=_cmd_restore)

    p = sub.add_parser("eval", help="PSNR/SSIM (BasicSR) of a model on a folder of LQ/GT pairs")
    _add_model_args(p)
    p.add_argument("--lq", required=True, help="folder of low-quality inputs")
    p.add_argument("--gt", required=True, help="folder of ground-truth images (same names, or LQ names + x<scale>)")
    p.add_argument("--crop-border", type=int, help="pixels cropped from each side (default: the model's test "
                   "protocol's, else the scale, 0 at x1)")
    p.add_argument("--y-channel", dest="y_channel", action="store_true", default=None, help="measure on Y (default: "
                   "as the model's test protocol measures, else Y for SR)")
    p.add_argument("--rgb", dest="y_channel", action="store_false", help="measure on RGB (default: as the model's "
                   "test protocol measures, else RGB at x1)")
    p.add_argument("--baseline", choices=BASELINES, help="also score bicubic upscaling of the same inputs")
    _add_run_args(p)
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("convert", help="an official checkpoint -> a hub-ready folder")
    p.add_argument("checkpoint", help="an official (or ssmblocks) weight file; its family is detected")
    p.add_argument("out_dir", help="a new folder (or an empty one) for model.safetensors, config.json, README.md")
    p.set_defaults(run=_cmd_convert)

    p = sub.add_parser("bench", help="time a model's forward pass")
    p.add_argument("--model", default=BENCH_MODEL, help=f"a registered name (default: {BENCH_MODEL})")
    p.add_argument("--size", type=_parse_size, default=(64, 64), help="input HEIGHTxWIDTH, or N for NxN (default 64)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default: 3)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", choices=list(_DTYPES), default="float32")
    p.set_defaults(run=_cmd_bench)

    p = sub.add_parser("demo", help="restore the bundled sample with the bundled default model (offline)")
    p.add_argument("--out", default="ssmblocks-demo", help="output folder (default ./ssmblocks-demo)")
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("export", help="a model -> ONNX (scans decomposed into standard operators), fixed size")
    _add_model_args(p)
    p.add_argument("output", help="the .onnx file")
    p.add_argument("--size", type=_parse_size, default=(64, 64), help="input HEIGHTxWIDTH, or N for NxN (default "
                   "64x64)")
    p.add_argument("--frames", type=int, help=f"frames per clip for video models (default: {_CLIP_FRAMES}, or the "
                   "model's minimum if larger)")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("train", help="train a model (one CPU, or many GPUs under torchrun)",
                       description="Train a model; every flag is a field of ssmblocks.train.TrainConfig.",
                       formatter_class=HelpFormatter)
    add_arguments(p)
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("app", help="a local web page to restore images (needs: pip install 'ssmblocks[app]')")
    app_serve.add_arguments(p)
    p.set_defaults(run=app_serve.run)
    return parser


def _cli_way(message: str) -> str:
    """A library message with its Python advice replaced by the command-line way (``_CLI_WAY``)."""
    for python, command_line in _CLI_WAY:
        message = message.replace(python, command_line)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0, or 1 after a one-line error)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        _import_plugins(args.imports)
        args.run(args)
    except (CommandError, *_ERRORS) as err:
        print(f"ssmblocks: error: {_cli_way(' '.join(str(err).split()))}", file=sys.stderr)
        return 1
    except RuntimeError as err:
        if not _out_of_memory(err):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        way = _OUT_OF_MEMORY_WAY.get(args.command, "use smaller inputs")
        print(f"ssmblocks: error: out of memory ({first}); {way}", file=sys.stderr)
        return 1
    return 0


def _out_of_memory(err: RuntimeError) -> bool:
    """Whether ``err`` is an allocation failure (CUDA's OutOfMemoryError, the CPU allocator's message)."""
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


if __name__ == "__main__":
    sys.exit(main())
