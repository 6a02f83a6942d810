"""Restoring files and folders: image files, folders of images, folders of frame folders and video files, into an
output folder that mirrors the inputs (or into one output file), shared out across processes.

    plan = plan_restore(["photos/", "clip.mp4"], "out/")   # names and checks every output; needs no model
    report = restore_paths(model, plan, tile=256)            # out/<image>.png ..., out/clip/000000.png ...

``plan_restore`` refuses, before any model is built or run, what would fail or lose data later: an output name
with an unknown suffix (an existing folder is a folder, whatever its name), a file name as the output of several
inputs, a video written to an image name, two inputs written to one output, an output replacing its input. Every
file is written under a hidden temporary name and renamed when complete; hidden input files are skipped.
Under ``torchrun`` each process restores every ``world_size``-th file (a video model: every ``world_size``-th
clip, the frames of one folder being one clip).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ssmblocks.inference.images import (
    IMAGE_SUFFIXES,
    errors_about,
    expand_inputs,
    image_format,
    read_image,
    warnings_about,
    write_image,
)
from ssmblocks.inference.progress import Progress
from ssmblocks.inference.restore import model_info, restore
from ssmblocks.inference.video_io import VIDEO_SUFFIXES, is_video_file, open_video, write_video

__all__ = ["RestoreJob", "RestorePlan", "RestoreReport", "plan_restore", "restore_paths"]


@dataclass(frozen=True)
class RestoreJob:
    """One input file and where its result goes: an image file, a video file, or a folder for a video's frames."""

    source: Path
    target: Path

    @property
    def video(self) -> bool:
        return is_video_file(self.source)


@dataclass(frozen=True)
class RestorePlan:
    """Every input file and its output, checked; ``ext`` is the format of frames written into folders."""

    jobs: tuple[RestoreJob, ...]
    output: Path
    ext: str


@dataclass(frozen=True)
class RestoreReport:
    """What one process restored: image files, video files and their frames, and the seconds it took."""

    images: int
    videos: int
    frames: int
    seconds: float


def _target(source: Path, relative: Path, output: Path, ext: str, single: bool) -> Path:
    single = single and not output.is_dir()    # an existing folder is a folder, dots in its name or not
    if is_video_file(source):
        if single and output.suffix:
            if not is_video_file(output):
                raise ValueError(f"{relative} is a video: name a video file ({', '.join(VIDEO_SUFFIXES)}) or a "
                                 f"folder for its frames as the output, not {output}")
            return output
        return output / relative.with_suffix(f".{ext}" if is_video_file(f"x.{ext}") else "")  # a frame folder
    target = output if single and output.suffix else output / relative.with_suffix(f".{ext}")
    image_format(target)   # an unknown suffix is refused now, not after the restore
    return target


def plan_restore(inputs: Sequence[str | Path], output: str | Path, *, ext: str = "png") -> RestorePlan:
    """Lists the files of ``inputs`` (files, folders, folders of frame folders; see ``expand_inputs``) and names
    each output. One input file may be written to a file name (``output`` with a suffix); otherwise ``output`` is a
    folder mirroring the inputs, images written as ``ext`` (an image suffix), videos as their frames
    (``OUT/<name>/000000.<ext>``) or, when ``ext`` is a video suffix, as video files. ValueError /
    FileNotFoundError name the problem."""
    output, ext = Path(output), ext.lstrip(".").lower()
    if not is_video_file(f"x.{ext}") and f".{ext}" not in IMAGE_SUFFIXES:
        raise ValueError(f"unknown output format {ext!r}: use an image suffix ({', '.join(IMAGE_SUFFIXES)}) or a "
                         f"video suffix ({', '.join(VIDEO_SUFFIXES)})")
    several = len(inputs) != 1 or Path(inputs[0]).is_dir()
    if several and (output.suffix.lower() in IMAGE_SUFFIXES or is_video_file(output)):
        raise ValueError(f"{output} names a file, but several inputs are written into a folder: name a folder "
                         f"(without an image or video suffix) for the outputs")
    jobs = [RestoreJob(source, _target(source, relative, output, ext, not several))
            for source, relative in expand_inputs(inputs)]
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.target.resolve() == job.source.resolve():
            raise ValueError(f"the output {job.target} would replace its input: choose another output (or format)")
        if job.target in seen:
            raise ValueError(f"{seen[job.target]} and {job.source} would both be written to {job.target}: restore "
                             f"them separately or rename one")
        seen[job.target] = job.source
    return RestorePlan(tuple(jobs), output, ext)


def _to_pil(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(array)


def _restore_video(model: nn.Module, video_model: bool, job: RestoreJob, ext: str, progress: bool | None,
                   kwargs: dict[str, Any]) -> int:
    """A video file -> a video file or a folder of frames (a video model: the whole clip at once; an image model:
    frame by frame as they are decoded). Returns the frame count."""
    with open_video(job.source) as reader, warnings_about(job.source), errors_about(job.source):
        if video_model:
            frames: Iterable[np.ndarray] = restore(model, np.stack(list(reader)), **kwargs)
        else:
            decoded = Progress(job.source.name, unit="frame", enabled=progress)(reader, reader.info.frames or None)
            frames = (restore(model, frame, **kwargs) for frame in decoded)
        if is_video_file(job.target):
            return write_video(frames, job.target, reader.info.fps)
        count = 0
        for count, frame in enumerate(frames, 1):
            write_image(_to_pil(frame), job.target / f"{count - 1:06d}.{ext}")
        return count


def restore_paths(model: nn.Module, plan: RestorePlan, *, rank: int = 0, world_size: int = 1,
                  progress: bool | None = None, temporal_chunk: int | None = None, temporal_overlap: int = 2,
                  **restore_kwargs: Any) -> RestoreReport:
    """Restores this process's share of ``plan`` (every ``world_size``-th file or clip, from ``rank``) with
    ``ssmblocks.restore`` (``restore_kwargs``: tile, tile_overlap, protocol, memory_budget, device, dtype) and
    writes the outputs. Image models restore images one by one and videos frame by frame; a video model restores
    the frames of each folder as one clip and each video whole (``temporal_chunk`` / ``temporal_overlap``: in
    overlapping chunks). Warnings name the file they concern. ``progress``: bars (default: when stderr is a
    terminal)."""
    video_model = model_info(model).video
    if temporal_chunk is not None and not video_model:
        raise ValueError(f"temporal_chunk applies to video models; {type(model).__name__} is an image model, which "
                         f"restores videos frame by frame: leave temporal_chunk unset")
    kwargs = {**restore_kwargs, "progress": progress}
    if video_model:
        kwargs.update(temporal_chunk=temporal_chunk, temporal_overlap=temporal_overlap)
    videos = [job for job in plan.jobs if job.video][rank::world_size]
    images = [job for job in plan.jobs if not job.video]
    if video_model:   # the frames of one folder form one clip; processes share out whole clips
        clips: dict[Path, list[RestoreJob]] = {}
        for job in images:
            clips.setdefault(job.source.parent, []).append(job)
        groups = list(clips.values())[rank::world_size]
    else:
        groups = [[job] for job in images[rank::world_size]]
    start = time.perf_counter()
    frames = sum(_restore_video(model, video_model, job, plan.ext, progress, kwargs) for job in videos)
    for group in Progress("restoring", unit="clip" if video_model else "image", enabled=progress)(groups):
        where = group[0].source.parent if video_model else group[0].source
        with warnings_about(where), errors_about(where):
            if video_model:
                restored = restore(model, np.stack([np.asarray(read_image(job.source)) for job in group]), **kwargs)
                for job, frame in zip(group, restored, strict=True):
                    write_image(_to_pil(frame), job.target)
            else:
                write_image(restore(model, read_image(group[0].source), **kwargs), group[0].target)
    return RestoreReport(images=sum(map(len, groups)), videos=len(videos), frames=frames,
                         seconds=time.perf_counter() - start)
