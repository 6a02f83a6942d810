"""Video files: decoding to RGB frames and atomic encoding, through the optional PyAV package (``pip install av``,
whose wheels ship the FFmpeg libraries). PyAV is imported only when a video file is read or written.

Frames are numpy arrays (H, W, 3) uint8, RGB. Only the first video stream is read; audio and subtitles are not
copied to the output. Outputs are written to a temporary file beside the target and renamed over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ssmblocks._atomic import atomic_path

__all__ = ["VIDEO_SUFFIXES", "MissingVideoBackendError", "VideoInfo", "is_video_file", "open_video", "write_video"]

# container format and encoders in order of preference for each suffix
_CONTAINERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".mp4": ("mp4", ("libx264", "mpeg4")),
    ".mkv": ("matroska", ("libx264", "mpeg4")),
    ".mov": ("mov", ("libx264", "mpeg4")),
    ".avi": ("avi", ("libx264", "mpeg4")),
    ".webm": ("webm", ("libvpx-vp9", "libvpx")),
}
VIDEO_SUFFIXES = tuple(_CONTAINERS)
# visually transparent quality settings per encoder (x264 / VP9 constant quality; mpeg4 a fixed quantiser)
_ENCODER_OPTIONS = {
    "libx264": {"crf": "16", "preset": "medium"},
    "libvpx-vp9": {"crf": "20", "b": "0"},
    "libvpx": {"crf": "10", "b": "1M"},
    "mpeg4": {"qscale": "2"},
}


class MissingVideoBackendError(ImportError):
    """PyAV is not installed."""


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingVideoBackendError("reading video files needs the optional PyAV package: "
                                       "pip install 'ssmblocks[video]'") from None
    return av


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix (``VIDEO_SUFFIXES``)."""
    return Path(path).suffix.lower() in _CONTAINERS


@dataclass(frozen=True)
class VideoInfo:
    """A video stream: frame size, frame rate (frames per second), frame count (0 if the container does not
    say), and codec name."""

    width: int
    height: int
    fps: Fraction
    frames: int
    codec: str


class VideoReader:
    """Decodes the first video stream of a file; iterate for (H, W, 3) uint8 RGB frames. Use as a context
    manager (or call ``close``)."""

    def __init__(self, path: Path, container: Any) -> None:
        self.path = path
        self._container = container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        self.info = VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(fps),
                              stream.frames, stream.codec_context.name)

    def __iter__(self) -> Iterator[np.ndarray]:
        av = _av()
        try:
            for frame in self._container.decode(self._stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as err:
            raise ValueError(f"cannot decode {self.path} ({type(err).__name__}: {err})") from err

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | Path) -> VideoReader:
    """Opens a video file for reading. FileNotFoundError / ValueError (not a video, no video stream) name the
    file; MissingVideoBackendError when PyAV is not installed."""
    path = Path(path)
    av = _av()
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise ValueError(f"cannot read {path} as a video ({type(err).__name__}: {err})") from err
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} holds no video stream")
    return VideoReader(path, container)


def _encoder(av: Any, suffix: str) -> tuple[str, str]:
    """(container format, encoder name) for an output suffix: the first encoder this FFmpeg build has."""
    if suffix not in _CONTAINERS:
        raise ValueError(f"cannot write a video with suffix {suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
    fmt, encoders = _CONTAINERS[suffix]
    for name in encoders:
        if name in av.codecs_available:
            return fmt, name
    raise ValueError(f"this FFmpeg build (PyAV) has none of the encoders {', '.join(encoders)} for {suffix} files")


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: Fraction | float) -> int:
    """Encodes (H, W, 3) uint8 RGB frames into ``path`` atomically: the container follows the suffix; H.264
    (libx264) where the container takes it and PyAV has it, else MPEG-4 Part 2; VP9 for .webm; 4:2:0 chroma (even
    sides needed). Returns the number of frames written; no file appears under ``path`` if anything fails."""
    av = _av()
    path = Path(path)
    fmt, encoder = _encoder(av, path.suffix.lower())
    fps = Fraction(fps).limit_denominator(1001000)
    count = 0
    with atomic_path(path, suffix=f"{path.suffix}.part") as tmp, av.open(str(tmp), mode="w", format=fmt) as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = _add_stream(container, encoder, fps, frame.shape, path)
            if frame.shape[:2] != (stream.height, stream.width) or frame.dtype != np.uint8:
                raise ValueError(f"video frames must all be ({stream.height}, {stream.width}, 3) uint8, frame "
                                 f"{count} is {frame.shape} {frame.dtype}")
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = count
            container.mux(stream.encode(picture))
            count += 1
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        container.mux(stream.encode(None))
    return count


def _add_stream(container: Any, encoder: str, fps: Fraction, shape: tuple[int, ...], path: Path) -> Any:
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"video frames are (H, W, 3) RGB arrays, got shape {shape}")
    height, width = shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"cannot write {path}: {width}x{height} frames; 4:2:0 video needs even sides")
    stream = container.add_stream(encoder, rate=fps, options=dict(_ENCODER_OPTIONS.get(encoder, {})))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.time_base = 1 / fps
    return stream
