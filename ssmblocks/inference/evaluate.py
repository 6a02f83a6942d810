"""``evaluate``: PSNR/SSIM of a model on a folder of low-quality inputs paired with a folder of ground truths, as
the papers' test scripts measure (``ssmblocks.metrics``, BasicSR's definitions).

    report = evaluate(model, lq="Set5/LRx4", gt="Set5/HR", baseline="bicubic")
    print(report.psnr, report.baseline_psnr, report.y_channel, report.crop_border)

- Pairs: by file stem; an LQ stem may carry the scale (``babyx4.png``, ``baby_x4.png`` pair with ``baby.png``).
- Sizes: the ground truth must be the input's size times the scale, or larger by less than the scale, in which case
  it is cropped at the bottom/right to a multiple of the scale (BasicSR's ``modcrop``). An input made by
  downscaling the whole, uncropped ground truth is then misaligned with that crop (its pixel grid is stretched by
  up to one input pixel), and every score would be too low: such a pair is recognised by its content (the input is
  much closer to a bicubic downscale of the whole ground truth than to one of the crop) and refused with the fix.
  Every pair is checked before the model runs.
- Colour space and border: by default the model's own test protocol's — the prose of its pretrained cfg
  (``test_protocol``: "PSNR on RGB with a border of 4 px" for DVMSR, "PSNR/SSIM on Y (BT.601), crop_border =
  scale" for MambaIR SR) read by ``metric_defaults``; where it says nothing, BasicSR's convention: Y channel and a
  border of the scale for super-resolution, RGB and no border at x1.
- ``baseline="bicubic"``: the input upscaled with Pillow's bicubic filter, scored the same way, beside the model.
- Under ``torchrun`` each process evaluates every ``world_size``-th pair and the scores are gathered (gloo).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ssmblocks.inference.images import errors_about, list_images, read_image, warnings_about
from ssmblocks.inference.progress import Progress
from ssmblocks.inference.restore import model_info, resolve_protocol, restore
from ssmblocks.metrics import calculate_psnr, calculate_ssim

__all__ = ["BASELINES", "EvalReport", "EvalRow", "MetricDefaults", "check_pair", "evaluate", "metric_defaults",
           "pair_images"]

BASELINES = ("bicubic",)
# A pair whose input is this many times closer (in MSE) to a downscale of the whole ground truth than to a downscale
# of its modcrop was made from the uncropped image
_MISALIGNED_RATIO = 2.0


@dataclass(frozen=True)
class EvalRow:
    """The scores of one pair (the baseline's are None without a baseline)."""

    name: str
    psnr: float
    ssim: float
    baseline_psnr: float | None = None
    baseline_ssim: float | None = None


@dataclass(frozen=True)
class EvalReport:
    """Every pair's scores (sorted by input name) and how they were measured: Y channel or RGB, the border cropped,
    the way the model was run (``"protocol mambair"``, ``"tiled"``...), where the metric settings came from, the
    model's name and the baseline."""

    rows: tuple[EvalRow, ...]
    y_channel: bool
    crop_border: int
    run: str
    settings_from: str
    model: str
    baseline: str | None = None

    @property
    def colour_space(self) -> str:
        return "Y" if self.y_channel else "RGB"

    def _mean(self, field: str) -> float | None:
        values = [getattr(row, field) for row in self.rows]
        return None if not values or None in values else float(np.mean(values))

    @property
    def psnr(self) -> float:
        return self._mean("psnr")

    @property
    def ssim(self) -> float:
        return self._mean("ssim")

    @property
    def baseline_psnr(self) -> float | None:
        return self._mean("baseline_psnr")

    @property
    def baseline_ssim(self) -> float | None:
        return self._mean("baseline_ssim")


@dataclass(frozen=True)
class MetricDefaults:
    """The colour space and border a model's scores are measured with, and where each was read ("from the model's
    test protocol", or "by the x4 convention" where the protocol does not say)."""

    y_channel: bool
    crop_border: int
    y_channel_from: str
    crop_border_from: str

    @property
    def source(self) -> str:
        return _settings_source(self.y_channel_from, self.crop_border_from)


def _settings_source(space_from: str, border_from: str) -> str:
    if space_from == border_from:
        return f"colour space and border {space_from}"
    return f"colour space {space_from}, border {border_from}"


def _stated_colour_space(text: str) -> bool | None:
    """True (Y), False (RGB, or grey images measured as they are) or None (not stated) in protocol prose."""
    if re.search(r"\b(?:on|the) Y\b|\bY channel\b", text):
        return True
    if re.search(r"\bRGB\b|\bgrey\b|\bgray\b", text):
        return False
    return None


def _stated_border(text: str, scale: int) -> int | None:
    """The border stated in protocol prose ('crop_border 4', 'border of 4 px', 'crop_border = scale'), or None."""
    match = re.search(r"border(?: of)?\s*(=\s*scale|\d+)", text)
    if match is None:
        return None
    return scale if "scale" in match.group(1) else int(match.group(1))


def metric_defaults(model: nn.Module) -> MetricDefaults:
    """The colour space and border the model's own test protocol measures with (see the module docstring)."""
    scale = model_info(model).scale
    cfg = getattr(model, "pretrained_cfg", None)
    text = getattr(cfg, "test_protocol", "") or ""
    y_channel, border = _stated_colour_space(text), _stated_border(text, scale)
    stated, convention = "from the model's test protocol", f"by the x{scale} convention"
    return MetricDefaults(scale > 1 if y_channel is None else y_channel,
                          (scale if scale > 1 else 0) if border is None else border,
                          convention if y_channel is None else stated, convention if border is None else stated)


def pair_images(lq_dir: str | Path, gt_dir: str | Path, scale: int) -> list[tuple[Path, Path]]:
    """(input, ground truth) pairs by file stem, sorted by input name; an input's stem may end in the scale
    ('babyx4', 'baby_x4', 'babyX4'). Every input needs its ground truth."""
    lq_dir, gt_dir = Path(lq_dir), Path(gt_dir)
    for folder in (lq_dir, gt_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"no such folder: {folder}")
    gts = {path.stem: path for path in list_images(gt_dir)}
    lqs = list_images(lq_dir)
    if not lqs:
        raise FileNotFoundError(f"{lq_dir} holds no images")
    pairs, missing = [], []
    for lq in lqs:
        stems = [lq.stem] + [lq.stem[: -len(s)] for s in (f"x{scale}", f"_x{scale}", f"X{scale}")
                             if lq.stem.endswith(s)]
        gt = next((gts[stem] for stem in stems if stem in gts), None)
        if gt is None:
            missing.append(lq.name)
        else:
            pairs.append((lq, gt))
    if missing:
        raise FileNotFoundError(f"no ground truth in {gt_dir} for {len(missing)} of the {len(lqs)} inputs: "
                                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return pairs


def _mse(a: Any, b: Any) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def check_pair(lq: Path, gt: Path, scale: int) -> None:
    """Refuses a pair whose ground truth is not the input's size times ``scale`` (up to a modcrop), or whose input
    was made from the uncropped ground truth (see the module docstring)."""
    from PIL import Image

    lr_image, gt_image = read_image(lq), read_image(gt)
    (w, h), (gt_w, gt_h) = lr_image.size, gt_image.size
    extra_w, extra_h = gt_w - scale * w, gt_h - scale * h
    if not (0 <= extra_w < scale and 0 <= extra_h < scale):
        raise ValueError(f"{gt.name} is {gt_w}x{gt_h}, but {lq.name} ({w}x{h}) x{scale} is {scale * w}x{scale * h}: "
                         f"the ground truth must be the input's size times the scale (larger by less than the scale "
                         f"at most); check the folders and the model's scale")
    if extra_w == extra_h == 0:
        return
    lr, truth = lr_image.convert("L"), gt_image.convert("L")
    from_crop = _mse(lr, truth.crop((0, 0, scale * w, scale * h)).resize((w, h), Image.BICUBIC))
    from_whole = _mse(lr, truth.resize((w, h), Image.BICUBIC))
    if from_whole * _MISALIGNED_RATIO < from_crop:
        raise ValueError(f"{lq.name} was made from the whole {gt_w}x{gt_h} {gt.name}, which is not a multiple of the "
                         f"scale x{scale}: evaluation compares with the ground truth cropped to "
                         f"{scale * w}x{scale * h} (BasicSR's modcrop), and against that crop the input is misaligned "
                         f"(its pixel grid is stretched), so every score would be too low. Crop the ground truth to "
                         f"{scale * w}x{scale * h} first, then downscale it by {scale} to make the input")


def _bicubic(lq: Path, scale: int) -> np.ndarray:
    from PIL import Image

    image = read_image(lq)
    return np.asarray(image.resize((image.width * scale, image.height * scale), Image.BICUBIC))


def _gather(rows: list[EvalRow], world_size: int) -> list[EvalRow]:
    """Every process's rows, on every process (gloo; a process group is made for the call if none exists)."""
    if world_size == 1:
        return rows
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("gloo")
    gathered: list[Any] = [None] * world_size
    try:
        dist.all_gather_object(gathered, rows)
    finally:
        if owned:
            dist.destroy_process_group()
    return [row for part in gathered for row in part]


def evaluate(
    model: nn.Module,
    lq: str | Path,
    gt: str | Path,
    *,
    crop_border: int | None = None,
    y_channel: bool | None = None,
    baseline: str | None = None,
    protocol: str | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    memory_budget: int | str | None = None,
    device: Any = None,
    dtype: Any = None,
    rank: int = 0,
    world_size: int = 1,
    progress: bool | None = None,
    unclipped: bool = False,
) -> EvalReport:
    """Scores ``model`` on the images of folder ``lq`` against their ground truths in folder ``gt`` (see the module
    docstring for pairing, size checks and defaults).

    Args:
        crop_border, y_channel: pixels cropped from each side and Y channel (True) or RGB (False); default: the
            model's test protocol's (``metric_defaults``).
        baseline: 'bicubic' adds the scores of bicubic upscaling of the same inputs.
        protocol, tile, tile_overlap, memory_budget, device, dtype: how the model runs (``ssmblocks.restore``;
            default: its official protocol).
        rank, world_size: this process's share (every ``world_size``-th pair from ``rank``); the returned report
            holds every process's rows.
        progress: a bar over the pairs (default: when stderr is a terminal).
        unclipped: accept float inputs (float TIFFs) outside [0, 1] (``ssmblocks.restore``).

    16-bit images are scored at their range (``ssmblocks.metrics`` scales uint16 to 0-255); an output with NaN or
    Inf values is an error naming the file, never a score.
    """
    if baseline is not None and baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    info = model_info(model)
    defaults = metric_defaults(model)
    crop = defaults.crop_border if crop_border is None else crop_border
    y = defaults.y_channel if y_channel is None else y_channel
    tiled = tile is not None or memory_budget is not None
    run = "tiled" if tiled else f"protocol {resolve_protocol(info, protocol, tiled=False) or 'none'}"
    pairs = pair_images(lq, gt, info.scale)[rank::world_size]
    for lq_path, gt_path in pairs:
        check_pair(lq_path, gt_path, info.scale)

    def score(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
        return (calculate_psnr(image, truth, crop, test_y_channel=y),
                calculate_ssim(image, truth, crop, test_y_channel=y))

    rows = []
    for lq_path, gt_path in Progress("evaluating", enabled=progress)(pairs):
        with warnings_about(lq_path), errors_about(lq_path):
            sr = restore(model, np.asarray(read_image(lq_path)), protocol=protocol, tile=tile,
                         tile_overlap=tile_overlap, memory_budget=memory_budget, device=device, dtype=dtype,
                         progress=progress, unclipped=unclipped)
        truth = np.asarray(read_image(gt_path))[: sr.shape[0], : sr.shape[1]]   # modcrop
        if truth.shape != sr.shape:
            raise ValueError(f"{gt_path.name} has shape {truth.shape} but the restored {lq_path.name} has "
                             f"{sr.shape}: ground truth and model output differ in channels")
        base = score(_bicubic(lq_path, info.scale), truth) if baseline else (None, None)
        rows.append(EvalRow(lq_path.name, *score(sr, truth), *base))
    cfg = getattr(model, "pretrained_cfg", None)
    return EvalReport(tuple(sorted(_gather(rows, world_size), key=lambda row: row.name)), y, crop, run,
                      _settings_source("as given" if y_channel is not None else defaults.y_channel_from,
                                       "as given" if crop_border is not None else defaults.crop_border_from),
                      getattr(cfg, "name", "") or type(model).__name__, baseline)
