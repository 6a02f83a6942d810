"""The ``ssmblocks`` command: list, info, restore, eval, convert, bench (and train, provided by ssmblocks.train).

    ssmblocks list 'mambair*' --pretrained
    ssmblocks info mambair_light_x4
    ssmblocks restore photo.png frames/ -o out/ --model mambair_light_x4 --checkpoint MambaIR_light_x4.pth
    ssmblocks eval --checkpoint MambaIR_SR_x4.pth --lq Urban100/LR_bicubic/X4 --gt Urban100/HR
    ssmblocks convert MambaIR_SR_x4.pth hub/mambair_sr_x4
    ssmblocks bench --model mambair_light_x4 --size 128

Errors are printed as one line (``ssmblocks: error: ...``, exit status 1). Outputs are written atomically. Under
``torchrun``, ``restore`` and ``eval`` split their inputs across the processes (``eval`` gathers the scores).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import ssmblocks
from ssmblocks._atomic import _umask
from ssmblocks._checkpoint import CheckpointError
from ssmblocks._contract import ModelContract, contract_of
from ssmblocks._timing import median_ms
from ssmblocks._weights import PretrainedUnavailableError, drive_page
from ssmblocks.app import serve as app_serve
from ssmblocks.export import MissingExportBackendError, export_onnx
from ssmblocks.inference import (
    PROTOCOLS,
    expand_inputs,
    list_images,
    model_info,
    read_image,
    resolve_protocol,
    restore,
    write_image,
)
from ssmblocks.inference.images import IMAGE_SUFFIXES
from ssmblocks.inference.video_io import (
    VIDEO_SUFFIXES,
    MissingVideoBackendError,
    is_video_file,
    open_video,
    write_video,
)
from ssmblocks.metrics import calculate_psnr, calculate_ssim
from ssmblocks.ops import get_backend
from ssmblocks.profiling import profile

__all__ = ["DEFAULT_MODEL", "main"]

# The model `restore`, `eval` and `info` use when neither --model nor --checkpoint is given (None: ask for one).
DEFAULT_MODEL: str | None = "dvmsr"     # bundled with the package: works offline
BENCH_MODEL = "mambair_light_x4"
# Frames of the clip `info`, `bench` and `export` run a video model on (at least the model's min_frames)
_CLIP_FRAMES = 3
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_ERRORS = (FileNotFoundError, ValueError, TypeError, CheckpointError, PretrainedUnavailableError, OSError,
           MissingVideoBackendError, MissingExportBackendError)


class CommandError(Exception):
    """A user error the command reports in one line."""


# ---- helpers -----------------------------------------------------------------------------------------------------
def _load_model(name: str | None, checkpoint: str | None) -> nn.Module:
    """--checkpoint alone: family detected from the file; --model alone: its published weights; both: that
    architecture with that file (a checkpoint of another family is an error)."""
    name = name or (None if checkpoint else DEFAULT_MODEL)
    if name is None and checkpoint is None:
        raise CommandError("pass --model NAME or --checkpoint PATH (see `ssmblocks list --pretrained`)")
    if name is None:
        return ssmblocks.load_checkpoint(checkpoint)
    if checkpoint is not None:
        return ssmblocks.create_model(name, checkpoint_path=checkpoint).eval()
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


def _progress(items: Iterable[Any], description: str, total: int | None = None, unit: str = "image") -> Any:
    total = len(items) if total is None else total  # type: ignore[arg-type]
    if not sys.stderr.isatty() or total == 1:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=description, unit=unit, total=total or None)


def _restore_kwargs(args: argparse.Namespace, protocol: str | None) -> dict[str, Any]:
    return {"tile": args.tile, "tile_overlap": args.tile_overlap, "protocol": protocol,
            "memory_budget": args.memory_budget, "device": _device(args.device), "dtype": _DTYPES[args.dtype],
            "progress": sys.stderr.isatty()}


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


def _example_shape(contract: ModelContract, height: int, width: int, frames: int | None = None) -> tuple[int, ...]:
    """The input shape to profile, time or export a model on: (1, C, H, W) images, or for a video model
    (1, T, C, H, W) with T = ``frames`` or max(``contract.min_frames``, _CLIP_FRAMES)."""
    return contract.example_shape(height, width, frames or (max(contract.min_frames, _CLIP_FRAMES)
                                                            if contract.is_video else None))


def _cmd_info(args: argparse.Namespace) -> None:
    name = args.model or DEFAULT_MODEL
    if name is None:
        raise CommandError("name a model: ssmblocks info MODEL")
    cfg = ssmblocks.get_pretrained_cfg(name)
    with torch.device("meta"):                         # the contract only: no memory, no initialisation
        contract = contract_of(ssmblocks.create_model(name))
    where = {"file": cfg.file, "hf-hub": f"{cfg.hf_hub_id}/{cfg.hf_hub_filename}", "url": cfg.url,
             "gdrive": f"{cfg.manual_filename or 'the file'} at {drive_page(cfg)} (Google Drive, through gdown)",
             "manual": f"{cfg.manual_url} (download by hand)", None: "no published weights"}[cfg.source]
    lines = [f"{cfg.name}: {cfg.task or 'image restoration'}", f"  paper:     {cfg.paper or '-'}",
             f"  source:    {cfg.origin_url or '-'}", f"  licence:   {cfg.license or '-'}", f"  weights:   {where}",
             f"  protocol:  {getattr(cfg, 'protocol', '') or 'whole image'}"
             + (f" ({cfg.test_protocol})" if cfg.test_protocol else ""),
             f"  size:      x{contract.scale}, {contract.in_chans} -> {contract.out_chans} channels"
             + (f" per frame, clips of at least {contract.min_frames} frames" if contract.is_video else "")
             + f", at least {contract.min_size}px, multiple of {contract.multiple_of}; "
             f"fp16 {'yes' if contract.supports_fp16 else 'no'}, bf16 {'yes' if contract.supports_bf16 else 'no'}"]
    lines += [f"  published: {benchmark} {value}" for benchmark, value in cfg.metrics.items()]
    if cfg.notes:
        lines.append(f"  notes:     {cfg.notes}")
    print("\n".join(lines))
    if not args.no_flops:
        scale = contract.scale
        height, width = args.size or (max(720 // scale, contract.min_size), max(1280 // scale, contract.min_size))
        model = ssmblocks.create_model(name)
        shape = _example_shape(contract, height, width)
        notes = ([f"a clip of {shape[1]} frames"] if len(shape) == 5 else []) + \
            ([] if args.size else [f"output {height * scale}x{width * scale}"])
        print(f"  cost:      {profile(model, shape)}" + (f" ({', '.join(notes)})" if notes else ""))


# ---- restore -----------------------------------------------------------------------------------------------------
def _output_path(args: argparse.Namespace, relative: Path, single: bool) -> Path:
    out = Path(args.output)
    if single and out.suffix:
        return out
    return out / relative.with_suffix(f".{args.ext}")


def _video_output(args: argparse.Namespace, relative: Path, single: bool) -> Path:
    """A video file (-o names one, or --ext is a video suffix) or a folder for the restored frames."""
    out = Path(args.output)
    if single and out.suffix:
        if not is_video_file(out):
            raise CommandError(f"{relative} is a video: name a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder "
                               f"for its frames with -o, not {out}")
        return out
    if is_video_file(f"x.{args.ext}"):
        return out / relative.with_suffix(f".{args.ext}")
    return out / relative.with_suffix("")


def _check_targets(args: argparse.Namespace, files: list[tuple[Path, Path]], single: bool) -> None:
    """Refuses inputs that would be written to the same output (photo.png and photo.jpg -> photo.png) or over
    themselves (-o naming the input, or its folder with the same format)."""
    seen: dict[Path, Path] = {}
    for path, relative in files:
        target = _video_output(args, relative, single) if is_video_file(path) else _output_path(args, relative, single)
        if target.resolve() == path.resolve():
            raise CommandError(f"the output {target} would replace its input: choose another -o (or --ext)")
        if target in seen:
            raise CommandError(f"{seen[target]} and {path} would both be written to {target}: restore them "
                               f"separately or rename one")
        seen[target] = path


def _restore_video(model: nn.Module, video_model: bool, path: Path, target: Path, args: argparse.Namespace,
                   kwargs: dict[str, Any]) -> int:
    """Restores a video file (a video model: the whole clip, in --temporal-chunk chunks; an image model: frame by
    frame, streamed) into a video file or a folder of frames; returns the frame count."""
    with open_video(path) as reader:
        if video_model:
            frames: Iterable[np.ndarray] = restore(model, np.stack(list(reader)), **kwargs)
        else:
            decoded = _progress(reader, path.name, total=reader.info.frames, unit="frame")
            frames = (restore(model, frame, **kwargs) for frame in decoded)
        if is_video_file(target):
            return write_video(frames, target, reader.info.fps)
        count = 0
        for count, frame in enumerate(frames, 1):
            write_image(_to_pil(frame), target / f"{count - 1:06d}.{args.ext}")
        return count


def _check_output_is_a_folder(args: argparse.Namespace) -> None:
    """Several inputs (or a folder) are written into the folder -o names: refuse a file name there."""
    several = len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if several and (Path(args.output).suffix.lower() in IMAGE_SUFFIXES or is_video_file(args.output)):
        raise CommandError(f"-o {args.output} names a file, but several inputs are written into a folder: give -o "
                           f"a folder (without an image or video suffix)")


def _cmd_restore(args: argparse.Namespace) -> None:
    _check_output_is_a_folder(args)
    files = expand_inputs(args.inputs)
    single = len(files) == 1 and Path(args.inputs[0]).is_file()
    _check_targets(args, files, single)
    rank, world = _rank_world()
    model = _load_model(args.model, args.checkpoint)
    info = model_info(model)
    kwargs = _restore_kwargs(args, args.protocol)
    if info.video:
        kwargs.update(temporal_chunk=args.temporal_chunk, temporal_overlap=args.temporal_overlap)
    elif args.temporal_chunk is not None:
        raise CommandError(f"--temporal-chunk applies to video models; {type(model).__name__} is an image model, "
                           f"which restores videos frame by frame: drop --temporal-chunk")
    videos = [item for item in files if is_video_file(item[0])][rank::world]
    images = [item for item in files if not is_video_file(item[0])]
    clips: dict[Path, list[tuple[Path, Path]]] = {}
    if info.video:  # frames of one folder form one clip; processes share out whole clips
        for item in images:
            clips.setdefault(item[0].parent, []).append(item)
        mine = [item for clip in list(clips.values())[rank::world] for item in clip]
    else:
        mine = images[rank::world]
    start = time.perf_counter()
    frame_count = sum(_restore_video(model, info.video, path, _video_output(args, relative, single), args, kwargs)
                      for path, relative in videos)
    if info.video:
        for clip in _progress(list(clips.values())[rank::world], "clips"):
            frames = np.stack([np.asarray(read_image(path)) for path, _ in clip])
            restored = restore(model, frames, **kwargs)
            for (_, relative), frame in zip(clip, restored, strict=True):
                write_image(_to_pil(frame), _output_path(args, relative, single))
    else:
        for path, relative in _progress(mine, "restoring"):
            write_image(restore(model, read_image(path), **kwargs), _output_path(args, relative, single))
    seconds = time.perf_counter() - start
    share = f" (process {rank + 1} of {world})" if world > 1 else ""
    done = [f"{len(mine)} image{'s' if len(mine) != 1 else ''}"] if mine or not videos else []
    if videos:
        done.append(f"{len(videos)} video{'s' if len(videos) != 1 else ''} ({frame_count} frames)")
    print(f"restored {' and '.join(done)}{share} in {seconds:.1f} s "
          f"with {getattr(model, 'architecture', type(model).__name__)} -> {args.output}")


def _to_pil(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(array)


# ---- eval --------------------------------------------------------------------------------------------------------
def _pair(lq_dir: Path, gt_dir: Path, scale: int) -> list[tuple[Path, Path]]:
    """(lq, gt) pairs by file stem; an LQ stem may carry a scale suffix ('babyx4', 'baby_x4')."""
    gts = {p.stem: p for p in list_images(gt_dir)}
    lqs = list_images(lq_dir)
    if not lqs:
        raise CommandError(f"{lq_dir} holds no images")
    pairs, missing = [], []
    for lq in lqs:
        stem = lq.stem
        candidates = [stem] + [stem[: -len(s)] for s in (f"x{scale}", f"_x{scale}", f"X{scale}") if stem.endswith(s)]
        gt = next((gts[c] for c in candidates if c in gts), None)
        if gt is None:
            missing.append(lq.name)
        else:
            pairs.append((lq, gt))
    if missing:
        raise CommandError(f"no ground truth in {gt_dir} for {len(missing)} LQ images: {', '.join(missing[:5])}")
    return pairs


def _gather(rows: list[tuple[str, float, float]], world: int) -> list[tuple[str, float, float]]:
    if world == 1:
        return rows
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("gloo")
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, rows)
    if owned:
        dist.destroy_process_group()
    return sorted(row for part in gathered for row in part)


def _cmd_eval(args: argparse.Namespace) -> None:
    model = _load_model(args.model, args.checkpoint)
    cfg = getattr(model, "pretrained_cfg", None)
    info = model_info(model)
    tiled = args.tile is not None or args.memory_budget is not None
    protocol = resolve_protocol(info, args.protocol, tiled=tiled)
    run = "tiled" if tiled else f"protocol {protocol or 'none'}"
    crop = args.crop_border if args.crop_border is not None else (info.scale if info.scale > 1 else 0)
    y_channel = args.y_channel if args.y_channel is not None else info.scale > 1
    pairs = _pair(Path(args.lq), Path(args.gt), info.scale)
    rank, world = _rank_world()
    kwargs = _restore_kwargs(args, protocol)
    rows = []
    for lq, gt in _progress(pairs[rank::world], "evaluating"):
        sr = restore(model, np.asarray(read_image(lq)), **kwargs)
        hr = np.asarray(read_image(gt))
        excess = hr.shape[0] - sr.shape[0], hr.shape[1] - sr.shape[1]
        if min(excess) >= 0 and max(excess) < info.scale:  # BasicSR crops the GT to a multiple of the scale
            hr = hr[: sr.shape[0], : sr.shape[1]]
        if hr.shape != sr.shape:
            raise CommandError(f"{gt.name} is {hr.shape} but the restored {lq.name} is {sr.shape}")
        rows.append((lq.name, calculate_psnr(sr, hr, crop, test_y_channel=y_channel),
                     calculate_ssim(sr, hr, crop, test_y_channel=y_channel)))
    rows = _gather(rows, world)
    if rank != 0:
        return
    for name, psnr, ssim in rows:
        print(f"{name:30s} PSNR {psnr:7.3f} dB  SSIM {ssim:.4f}")
    space = "Y" if y_channel else "RGB"
    print(f"mean over {len(rows)} images: PSNR {np.mean([r[1] for r in rows]):.3f} dB  SSIM "
          f"{np.mean([r[2] for r in rows]):.4f}  ({space}, crop {crop}, {run}, "
          f"{(cfg.name if cfg else '') or type(model).__name__})")


# ---- convert / bench / train -------------------------------------------------------------------------------------
def _cmd_convert(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    if out.exists() and any(out.iterdir()):
        raise CommandError(f"{out} exists and is not empty")
    model = ssmblocks.load_checkpoint(args.checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    os.chmod(staging, 0o777 & ~_umask())   # mkdtemp makes it 0700; renamed to `out`, it must be as mkdir makes it
    try:
        ssmblocks.save_for_hub(model, staging)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"{args.checkpoint}: {model.pretrained_cfg.notes}\nwrote {out}/ (model.safetensors, config.json, README.md); "
          f"load it with ssmblocks.create_model('local-dir:{out}')")


def _cmd_bench(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = _device(args.device), _DTYPES[args.dtype]
    model = ssmblocks.create_model(args.model).eval().to(device, dtype)
    height, width = args.size
    x = torch.rand(_example_shape(contract_of(model), height, width), device=device, dtype=dtype)
    with torch.inference_mode():
        ms = median_ms(lambda: model(x), args.repeats)
    frames = x.shape[1] if x.dim() == 5 else 1
    clip = f"{frames} frames of " if x.dim() == 5 else ""
    print(f"{args.model} on {clip}{height}x{width} ({args.dtype}, {x.device}, {torch.get_num_threads()} threads, "
          f"scan backend {get_backend('selective_scan', x.device, x.dtype)}): {ms:.1f} ms, "
          f"{frames * height * width / ms / 1e3:.3f} input megapixels/s")


def _cmd_train(argv: list[str]) -> None:
    try:
        train = importlib.import_module("ssmblocks.train")
    except ModuleNotFoundError as err:
        if err.name != "ssmblocks.train":
            raise
        raise CommandError("training is not part of this installation of ssmblocks") from err
    train.main(argv)


def _cmd_demo(args: argparse.Namespace) -> None:
    from ssmblocks.demo import main as demo

    demo(args.out)


def _cmd_export(args: argparse.Namespace) -> None:
    model = _load_model(args.model, args.checkpoint)
    example = torch.rand(_example_shape(contract_of(model), *args.size, frames=args.frames))
    path = export_onnx(model, args.output, example)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) for inputs {tuple(example.shape)}")


# ---- parser ------------------------------------------------------------------------------------------------------
def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="registered name, 'local-dir:FOLDER' or 'hf-hub:ORG/REPO'"
                        + (f" (default {DEFAULT_MODEL})" if DEFAULT_MODEL else ""))
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssmblocks", description="State-space (Mamba) image and video restoration.")
    parser.add_argument("--version", action="version", version=f"ssmblocks {ssmblocks.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="registered models")
    p.add_argument("pattern", nargs="?", help="fnmatch pattern, e.g. 'mambair*'")
    p.add_argument("--pretrained", action="store_true", help="only names with published weights, with their source")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("info", help="a model's cfg, weights, licence, published numbers, protocol, params/FLOPs")
    p.add_argument("model", nargs="?", help="a registered name" + (f" (default: {DEFAULT_MODEL}, the bundled model)"
                                                                    if DEFAULT_MODEL else ""))
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
    p.add_argument("--crop-border", type=int, help="pixels cropped from each side (default: the scale; 0 at x1)")
    p.add_argument("--y-channel", dest="y_channel", action="store_true", default=None, help="measure on Y (default "
                   "for SR)")
    p.add_argument("--rgb", dest="y_channel", action="store_false", help="measure on RGB (default at x1)")
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

    sub.add_parser("train", help="train a model (ssmblocks.train)", add_help=False)

    p = sub.add_parser("app", help="a local web page to restore images (needs: pip install 'ssmblocks[app]')")
    app_serve.add_arguments(p)
    p.set_defaults(run=app_serve.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0, or 1 after a one-line error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["train"]:
            _cmd_train(argv[1:])
            return 0
        args = _parser().parse_args(argv)
        args.run(args)
    except (CommandError, *_ERRORS) as err:
        message = " ".join(str(err).split())
        print(f"ssmblocks: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
