"""What the page does with the files a person drops: check them, restore them with ``ssmblocks.restore``, and write
the results for download and for the before/after view.

Every problem with an input becomes a one-line message for the page (never a stack trace): a file that is not an
image or a video, an image above the page's pixel limit (``--max-pixels``), a grey image given to a colour model
(restored, with a note saying how), a video too long for the page. The other files of a batch are still restored.

No Gradio here; ``run_batch`` takes a plain progress callback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ssmblocks.app.models import ModelFacts, model_facts
from ssmblocks.inference import restore
from ssmblocks.inference.images import write_image
from ssmblocks.inference.video_io import MissingVideoBackendError, is_video_file, open_video, write_video

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_VIDEO_FRAMES", "TILING_MODES", "InputError", "Outcome", "RunSettings",
           "run_batch"]

_log = logging.getLogger(__name__)
#: The largest image (input pixels) the page restores unless ``--max-pixels`` says otherwise: 4096 x 4096.
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Above this many input pixels, "Automatic" tiling restores in tiles that fit the memory budget.
AUTO_TILE_PIXELS = 1024 * 1024
#: The longest video (frames) the page restores: it is meant for short clips.
MAX_VIDEO_FRAMES = 300
#: The longer side of the before/after view; larger results are shown downscaled (the downloads are full size).
PREVIEW_MAX_SIDE = 4096
# Formats a result is also offered in when its original came in them (PNG is always offered).
_ORIGINAL_FORMATS = (".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

TILING_MODES = {
    "auto": "Automatic: the model's own test procedure; tiles fitting the memory budget for large images",
    "whole": "Whole image at once",
    "tiles": "Tiles of a fixed size (overlapping, blended)",
    "budget": "Tiles that fit the memory budget",
}


class InputError(ValueError):
    """An input the page cannot restore; the message is shown in the page."""


@dataclass(frozen=True)
class RunSettings:
    """The page's options: tiling (a key of ``TILING_MODES``) and its sizes, device, and for video models the
    temporal chunk (frames per chunk; None = the whole clip). (The precision is the model's: ``ModelLoader``.)"""

    tiling: str = "auto"
    tile: int = 256
    tile_overlap: int = 32
    memory_budget: str = "4GB"
    device: str = "cpu"
    temporal_chunk: int | None = None

    def restore_kwargs(self, pixels: int, facts: ModelFacts) -> tuple[dict[str, Any], str]:
        """``restore`` keyword arguments for an input of ``pixels`` (per frame), and a note saying what tiling does
        ('' when nothing needs saying)."""
        if self.tiling not in TILING_MODES:
            raise InputError(f"unknown tiling {self.tiling!r}; choose one of {', '.join(TILING_MODES)}")
        kwargs: dict[str, Any] = {"device": self.device, "progress": True}
        if facts.video and self.temporal_chunk:
            chunk = int(self.temporal_chunk)
            kwargs.update(temporal_chunk=chunk, temporal_overlap=min(2, chunk - 1))
        note = ""
        if self.tiling == "whole":
            kwargs["protocol"] = "none"
        elif self.tiling == "tiles":
            kwargs.update(tile=int(self.tile), tile_overlap=min(int(self.tile_overlap), int(self.tile) // 2))
            note = f"tiles of {int(self.tile)} px overlapping by {kwargs['tile_overlap']} px, blended"
        elif self.tiling == "budget" or pixels > AUTO_TILE_PIXELS:
            kwargs["memory_budget"] = self.memory_budget
            note = (f"large image ({pixels / 1e6:.1f} MP): " if self.tiling == "auto" else "") + (
                f"overlapping blended tiles sized to fit {self.memory_budget} of memory (the whole image at once "
                f"if it fits); pick 'Whole image at once' to avoid tiles")
        return kwargs, note


@dataclass
class Outcome:
    """One restored input (or one refused): a line for the page, the before/after pair, the files to download,
    and for a video its restored video file."""

    name: str
    message: str
    ok: bool
    before: Path | None = None
    after: Path | None = None
    downloads: list[Path] = field(default_factory=list)
    video: Path | None = None


def _megapixels(width: int, height: int) -> str:
    return f"{width}x{height} ({width * height / 1e6:.1f} MP)"


def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(f"{name} is {_megapixels(width, height)}, above this page's limit of "
                         f"{max_pixels / 1e6:.1f} MP: downscale it, or start the app with a larger --max-pixels")


def _open_image(path: Path, name: str, max_pixels: int) -> Any:
    """The image, upright and fully loaded, after checking its size from the header (before decoding it)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_pixels(name, *image.size, max_pixels)
            image.load()
            return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as err:
        raise InputError(f"{name} is too large to open ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{name} is not an image this page can read (PNG, JPEG, WebP, BMP, TIFF, ...)"
                         + (", nor a video (mp4, mkv, mov, avi, webm)" if not is_video_file(path) else "")) from err


def _preview_pair(before: Any, after: Any, folder: Path, stem: str) -> tuple[Path, Path]:
    """The input enlarged to the result's size (bicubic) beside the result, both RGB PNG, longer side at most
    ``PREVIEW_MAX_SIDE``: the pair the before/after view compares."""
    from PIL import Image

    size = after.size
    if max(size) > PREVIEW_MAX_SIDE:
        factor = PREVIEW_MAX_SIDE / max(size)
        size = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
    pair = []
    for which, image in (("before", before), ("after", after)):
        image = image if image.mode == "RGB" else image.convert("RGB")
        if image.size != size:
            image = image.resize(size, Image.BICUBIC)
        pair.append(write_image(image, folder / "preview" / f"{stem}_{which}.png"))
    return pair[0], pair[1]


def _result_stem(name: str, facts: ModelFacts) -> str:
    return f"{Path(name).stem}_{f'x{facts.scale}' if facts.scale > 1 else 'restored'}"


def _restore_image(model: nn.Module, path: Path, name: str, settings: RunSettings, folder: Path,
                   max_pixels: int) -> Outcome:
    facts = model_facts(model)
    image = _open_image(path, name, max_pixels)
    kwargs, note = settings.restore_kwargs(image.width * image.height, facts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = restore(model, image, **kwargs)
        stem = _result_stem(name, facts)
        downloads = [write_image(restored, folder / f"{stem}.png")]
        suffix = Path(name).suffix.lower()
        if suffix in _ORIGINAL_FORMATS:
            downloads.append(write_image(restored, folder / f"{stem}{suffix}"))
    before, after = _preview_pair(image, restored, folder, stem)
    notes = [note, *(str(w.message) for w in caught)]
    message = f"{name}: {_megapixels(*image.size)} -> {restored.width}x{restored.height}"
    return Outcome(name, "; ".join([message, *filter(None, notes)]), True, before, after, downloads)


def _restore_clip(model: nn.Module, frames: np.ndarray, name: str, settings: RunSettings) -> tuple[np.ndarray, str]:
    """(T, H, W, 3) uint8 -> restored frames, and the notes (tiling, warnings) for the page."""
    facts = model_facts(model)
    if facts.video and len(frames) < facts.min_frames:
        raise InputError(f"{name}: the model needs at least {facts.min_frames} frames, got {len(frames)}")
    kwargs, note = settings.restore_kwargs(frames.shape[1] * frames.shape[2], facts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = restore(model, frames, **kwargs)
    return restored, "; ".join(filter(None, [note, *(str(w.message) for w in caught)]))


def _restore_video(model: nn.Module, path: Path, name: str, settings: RunSettings, folder: Path,
                   max_pixels: int) -> Outcome:
    from PIL import Image

    try:
        reader = open_video(path)
    except MissingVideoBackendError as err:
        raise InputError(f"{name}: {err}") from err
    with reader:
        _check_pixels(name, reader.info.width, reader.info.height, max_pixels)
        if reader.info.frames > MAX_VIDEO_FRAMES:
            raise InputError(f"{name} has {reader.info.frames} frames; this page restores short clips of at most "
                             f"{MAX_VIDEO_FRAMES} frames (use `ssmblocks restore` for long videos)")
        frames = []
        for frame in reader:
            if len(frames) == MAX_VIDEO_FRAMES:
                raise InputError(f"{name} has more than {MAX_VIDEO_FRAMES} frames; this page restores short "
                                 f"clips (use `ssmblocks restore` for long videos)")
            frames.append(frame)
        fps = reader.info.fps
    if not frames:
        raise InputError(f"{name} holds no frames")
    restored, notes = _restore_clip(model, np.stack(frames), name, settings)
    stem = _result_stem(name, model_facts(model))
    video = folder / f"{stem}.mp4"
    write_video(restored, video, fps)
    before, after = _preview_pair(Image.fromarray(frames[0]), Image.fromarray(restored[0]), folder, stem)
    message = f"{name}: {len(frames)} frames of {reader.info.width}x{reader.info.height} -> " \
              f"{restored.shape[2]}x{restored.shape[1]}"
    return Outcome(name, "; ".join(filter(None, [message, notes])), True, before, after, [video], video)


def _restore_frames(model: nn.Module, items: Sequence[tuple[Path, str]], settings: RunSettings, folder: Path,
                    max_pixels: int) -> list[Outcome]:
    """Images given to a video model: the frames of one clip, in name order."""
    from PIL import Image

    items = sorted(items, key=lambda item: item[1])
    images = [_open_image(path, name, max_pixels) for path, name in items]
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise InputError(f"the images are the frames of one clip for this video model and must have one size; got "
                         f"{', '.join(f'{w}x{h}' for w, h in sorted(sizes))}")
    frames = np.stack([np.asarray(image.convert("RGB")) for image in images])
    restored, notes = _restore_clip(model, frames, f"the {len(images)} frames", settings)
    outcomes = []
    for (_, name), image, frame in zip(items, images, restored, strict=True):
        result = Image.fromarray(frame)
        stem = _result_stem(name, model_facts(model))
        download = write_image(result, folder / f"{stem}.png")
        before, after = _preview_pair(image, result, folder, stem)
        message = f"{name}: frame of a {len(images)}-frame clip, {_megapixels(*image.size)} -> " \
                  f"{result.width}x{result.height}"
        outcomes.append(Outcome(name, "; ".join(filter(None, [message, notes])), True, before, after, [download]))
    return outcomes


def _unique_names(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(path, display name): the file names, made unique (two uploads may share a name)."""
    seen: dict[str, int] = {}
    named = []
    for path in map(Path, paths):
        count = seen.get(path.name, 0)
        seen[path.name] = count + 1
        named.append((path, path.name if not count else f"{path.stem}-{count + 1}{path.suffix}"))
    return named


def _failure(name: str, err: Exception) -> Outcome:
    if isinstance(err, (InputError, MissingVideoBackendError)):
        return Outcome(name, str(err), False)
    _log.info("restoring %s failed", name, exc_info=err)          # the server's log keeps the traceback
    # restore's own messages (channels, sizes, budgets, devices) are written for people too
    return Outcome(name, f"{name}: {' '.join(str(err).split()) or type(err).__name__}", False)


def run_batch(model: nn.Module, paths: Sequence[str | Path], settings: RunSettings, folder: Path, *,
              max_pixels: int = DEFAULT_MAX_PIXELS,
              progress: Callable[[float, str], None] | None = None) -> list[Outcome]:
    """Restores the files at ``paths`` with ``model`` into ``folder``: each image alone (a video model: the images
    together, as the frames of one clip), each video file as a clip. A file that cannot be restored gives an
    Outcome with ``ok=False`` and its message; the others are still restored."""
    if not paths:
        return [Outcome("", "drop one or more images (or a video) first", False)]
    named = _unique_names(paths)
    videos = [item for item in named if is_video_file(item[0])]
    images = [item for item in named if not is_video_file(item[0])]
    video_model = model_facts(model).video
    jobs: list[tuple[str, Callable[[], list[Outcome]]]] = []
    for path, name in videos:
        jobs.append((name, lambda p=path, n=name: [_restore_video(model, p, n, settings, folder, max_pixels)]))
    if video_model and images:
        jobs.append((f"{len(images)} frames", lambda: _restore_frames(model, images, settings, folder, max_pixels)))
    elif images:
        for path, name in images:
            jobs.append((name, lambda p=path, n=name: [_restore_image(model, p, n, settings, folder, max_pixels)]))
    outcomes: list[Outcome] = []
    for index, (name, job) in enumerate(jobs):
        if progress:
            progress(index / len(jobs), f"restoring {name} ({index + 1} of {len(jobs)})")
        try:
            outcomes.extend(job())
        except Exception as err:          # every failure is reported in the page; the batch goes on
            outcomes.append(_failure(name, err))
    return outcomes
