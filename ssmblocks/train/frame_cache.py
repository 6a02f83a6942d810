"""Decoded training frames on disk: each image decoded once, then read a patch at a time through a memory map.

Decoding a DIV2K-size PNG (2040x1356) takes tens of milliseconds; cropping a 64x64 training patch out of it needs
a few kilobytes. ``FrameCache`` writes each decoded frame once as an uncompressed ``.npy`` file (uint8, or uint16
for 16-bit sources; (H, W) grey or (H, W, 3) RGB, exactly the array the decoder returns) and later reads it with
a read-only memory map, so a crop touches only the pages of its rows.

Why a folder on disk and not an in-memory LRU: the files live in the OS page cache, which every DataLoader worker
and every rank on the machine share (an LRU would hold one copy per worker, and a dataset larger than its bound
would thrash it at every epoch, since each epoch visits every image); the cache survives restarts and resumed
runs; the first pass pays the decode once per frame for all workers instead of once per worker. The cost is disk:
the uncompressed size (about 8.3 MB per 2040x1356 RGB frame, 6.6 GB for DIV2K's 800 training images).

Entries are keyed by the source file's absolute path, size and modification time (ns) and by the channel
conversion ('L' or 'RGB'): editing or replacing a source file, or reading it as grey instead of RGB, makes a new
entry (old ones stay until the folder is deleted). An edit that keeps both the size and the nanosecond mtime is
not seen. Entries are written under a temporary name and renamed (``os.replace``), so concurrent workers and ranks
never read a half-written file (two that miss at once both decode and write the same bytes). An entry that is not
a readable uint8 / uint16 ``.npy`` array of the source's size and channels (truncated, overwritten, foreign) is
decoded and written again, with a warning naming it; it is never used.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ssmblocks._atomic import atomic_path

__all__ = ["FrameCache", "decode_frame"]

_FORMAT = "ssmblocks-frame-cache-v2"   # v2: 16-bit sources are kept at 16 bits (v1 clipped them to 8)
# Pillow's modes of 16-bit (and 32-bit integer) grey images, read at their range instead of clipped by convert()
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I")   # part of every key: a new layout of the entries would change it


def _mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def decode_frame(path: Path, channels: int) -> np.ndarray:
    """The image at ``path`` converted to grey (``channels`` 1) or RGB: uint8 (H, W) or (H, W, 3); a 16-bit grey
    image stays uint16 (repeated on 3 channels for RGB): ``convert`` would clip it to 8 bits. A 16-bit colour image,
    which Pillow decodes at 8 bits, is read so with a warning."""
    with Image.open(path) as image:
        if image.mode in ("RGB", "RGBA") and any(";16" in str(tile.args) for tile in image.tile):
            warnings.warn(f"{path}: a 16-bit colour image is read at 8 bits per channel (Pillow decodes 16-bit colour "
                          f"at 8 bits): the low 8 bits are dropped", stacklevel=2)
        if image.mode not in _WIDE_GREY:
            return np.asarray(image.convert(_mode(channels)))
        grey = np.asarray(image)
    if grey.dtype != np.uint16:
        if grey.min() < 0 or grey.max() > 65535:
            raise ValueError(f"{path}: a Pillow {image.mode!r} image with values outside [0, 65535] is not a 16-bit "
                             f"image")
        grey = grey.astype(np.uint16)
    return grey if channels == 1 else np.repeat(grey[..., None], 3, axis=-1)


class FrameCache:
    """Decoded frames of source images as ``.npy`` files in ``folder`` (see the module docstring).

    Args:
        folder: the cache folder (created when needed); one folder can serve several datasets and channel counts.
        channels: 1 (grey) or 3 (RGB), the conversion applied before caching.
    """

    def __init__(self, folder: str | Path, channels: int) -> None:
        self.folder, self.channels = Path(folder), channels
        self._shapes: dict[Path, tuple[int, ...]] = {}   # shape of each entry's frame, known in this process

    def entry(self, source: Path) -> Path:
        """The cache file of ``source`` in its current version (size, mtime) and this cache's channel conversion."""
        stat = os.stat(source)
        key = "\0".join((_FORMAT, os.path.abspath(source), str(stat.st_size), str(stat.st_mtime_ns),
                         _mode(self.channels)))
        return self.folder / f"{Path(source).stem}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"

    def read(self, source: Path) -> np.ndarray:
        """The decoded frame of ``source``, uint8 (H, W) or (H, W, 3): a read-only memory map of its cache entry, or,
        when the entry is missing or invalid, the freshly decoded array, written to the entry before it is returned."""
        entry = self.entry(source)
        frame = self._load(entry, source)
        if frame is not None:
            return frame
        frame = decode_frame(source, self.channels)
        with atomic_path(entry, suffix=".npy.part") as tmp, open(tmp, "wb") as file:
            np.save(file, frame, allow_pickle=False)
        self._shapes[entry] = frame.shape
        return frame

    def _load(self, entry: Path, source: Path) -> np.ndarray | None:
        """The memory-mapped entry; None when it does not exist, or (with a warning) is not a valid frame of
        ``source``."""
        try:
            frame = np.lib.format.open_memmap(entry, mode="r")
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError) as err:
            problem = f"unreadable as .npy ({err})"
        else:
            problem = self._mismatch(frame, entry, source)
            if problem is None:
                return frame
        warnings.warn(f"frame cache entry {entry} of {source} is {problem}; decoding the source again",
                      RuntimeWarning, stacklevel=3)
        return None

    def _mismatch(self, frame: np.ndarray, entry: Path, source: Path) -> str | None:
        if frame.dtype not in (np.uint8, np.uint16):
            return f"of dtype {frame.dtype}, not uint8 or uint16"
        expected = self._shapes.get(entry)
        if expected is None:
            with Image.open(source) as image:   # reads the header only
                width, height = image.size
            expected = self._shapes[entry] = (height, width) if self.channels == 1 else (height, width, 3)
        return None if frame.shape == expected else f"of shape {frame.shape}, not {expected}"
