"""Training and validation pairs: from a folder of high-quality images degraded on the fly (bicubic downscaling,
JPEG, Gaussian noise), or from paired LQ/GT folders; clips of consecutive frames from frame folders for video models.

A sample is (lq, gt): images (C, h, w) and (C, H, W), clips (T, C, h, w) and (T, C, H, W), float32 in [0, 1]
(noisy inputs are not clipped). 16-bit images are read at their range (65535 is 1.0), not clipped to 8 bits;
hidden files (the temporaries of an interrupted write) are not data. Every random choice of a sample (crop, flips,
rotation, noise) comes from a generator seeded by (seed, epoch, index), so a sample does not depend on the worker
or the process that makes it, and a resumed run sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from ssmblocks.train.frame_cache import FrameCache, decode_frame

__all__ = ["TASKS", "Degradation", "PairedFrames", "ShardedBatchSampler", "list_clips", "list_images"]

TASKS = ("sr", "jpeg", "denoise")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Degradation:
    """How a low-quality input is made from a high-quality frame.

    task 'sr': bicubic downscaling by ``scale`` (PIL's antialiased bicubic on uint8, then rounded to uint8 as a saved
    LR image would be), followed by JPEG at ``jpeg_quality`` when set (compressed SR). 'jpeg': JPEG at
    ``jpeg_quality`` (scale 1). 'denoise': additive Gaussian noise of standard deviation ``noise_sigma`` / 255,
    not clipped (scale 1).
    """

    task: str = "sr"
    scale: int = 1
    jpeg_quality: int | None = None
    noise_sigma: float = 25.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task != "sr" and self.scale != 1:
            raise ValueError(f"task {self.task!r} keeps the size: scale must be 1, got {self.scale}")
        if self.task == "jpeg" and self.jpeg_quality is None:
            raise ValueError("task 'jpeg' needs a JPEG quality (--jpeg-quality, 1-95)")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"JPEG quality must be in 1..95, got {self.jpeg_quality}")

    def __call__(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """frame: uint8 or uint16 (H, W) or (H, W, C); returns float32 in [0, 1] (noise may leave it),
        (H/s, W/s[, C])."""
        out = self._degrade_16_bit(frame) if frame.dtype == np.uint16 else self._degrade_8_bit(frame)
        if self.task == "denoise":
            out = out + rng.normal(0.0, self.noise_sigma / 255.0, out.shape).astype(np.float32)
        return out

    def _degrade_16_bit(self, frame: np.ndarray) -> np.ndarray:
        """A 16-bit frame: downscaled per channel in float (Pillow's "F" mode, the same antialiased bicubic), rounded
        to 16 bits as a saved 16-bit LR image would be; JPEG (8 bits by nature) on the 8-bit rounding."""
        if self.jpeg_quality is not None:
            return self._degrade_8_bit(np.round(frame / 257.0).astype(np.uint8))
        out = frame.astype(np.float32) / 65535.0
        if self.scale > 1:
            height, width = frame.shape[:2]
            size = (width // self.scale, height // self.scale)
            planes = out[..., None] if out.ndim == 2 else out
            resized = [np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c])).resize(
                size, Image.Resampling.BICUBIC)) for c in range(planes.shape[-1])]
            out = np.stack(resized, -1) if out.ndim == 3 else resized[0]
            out = (np.round(np.clip(out, 0, 1) * 65535.0) / 65535.0).astype(np.float32)
        return out

    def _degrade_8_bit(self, frame: np.ndarray) -> np.ndarray:
        image = Image.fromarray(frame)
        if self.scale > 1:
            width, height = image.size
            image = image.resize((width // self.scale, height // self.scale), Image.Resampling.BICUBIC)
        if self.jpeg_quality is not None:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=self.jpeg_quality)
            image = Image.open(buffer)
        return np.asarray(image, dtype=np.float32) / 255.0


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; hidden files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def list_clips(folder: str | Path, frames: int) -> list[tuple[Path, ...]]:
    """Every run of ``frames`` consecutive frames in the frame folders (one sub-folder per video) of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    videos = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    clips = []
    for video in videos:
        names = list_images(video)
        clips.extend(tuple(names[i:i + frames]) for i in range(len(names) - frames + 1))
    if not clips:
        raise FileNotFoundError(f"{folder} has no sub-folder with at least {frames} frames")
    return clips


def _to_tensor(frames: list[np.ndarray], video: bool) -> Tensor:
    stacked = np.stack([f[..., None] if f.ndim == 2 else f for f in frames])       # (T, H, W, C)
    if stacked.dtype == np.uint16:
        stacked = stacked.astype(np.float32) / 65535.0
    tensor = torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))  # (T, C, H, W)
    tensor = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
    return tensor if video else tensor[0]


def _augment(frames: list[np.ndarray], hflip: bool, vflip: bool, transpose: bool) -> list[np.ndarray]:
    """The eight dihedral transforms (BasicSR's ``augment``: flips and a 90-degree rotation as a transpose)."""
    out = []
    for f in frames:
        f = f[:, ::-1] if hflip else f
        f = f[::-1] if vflip else f
        out.append(np.swapaxes(f, 0, 1) if transpose else f)
    return out


class PairedFrames(Dataset):
    """(lq, gt) pairs from high-quality frames: random patches for training, whole frames for validation.

    Args:
        gt_dir: a folder of images, or (``frames`` > 0) a folder of frame folders.
        degradation: makes the input from a ground-truth crop; its ``scale`` is the size ratio of the pair.
        lq_dir: a folder of ready-made inputs with the same file names (and sub-folders) as ``gt_dir``; then the
            degradation only gives the scale.
        patch_size: side of the ground-truth patch (a multiple of the scale); None: whole frames, cropped to a
            multiple of the scale, and no augmentation.
        channels: 1 (grey) or 3 (RGB), the model's input channels.
        frames: 0 for images, T for clips of T frames.
        augment: random flips and 90-degree rotations of training patches.
        seed: the data seed; item ``key = (index, epoch)`` is reproducible from (seed, epoch, index).
        cache_dir: keep every decoded frame (ground truth and ``lq_dir`` inputs) in this folder as an uncompressed
            ``.npy`` file and read patches from it through a memory map instead of decoding the whole image for
            every patch (``ssmblocks.train.frame_cache``: disk cost, invalidation, concurrency). Samples are
            identical with and without it.
    """

    def __init__(self, gt_dir: str | Path, degradation: Degradation, *, lq_dir: str | Path | None = None,
                 patch_size: int | None = None, channels: int = 3, frames: int = 0, augment: bool = True,
                 seed: int = 0, cache_dir: str | Path | None = None) -> None:
        scale = degradation.scale
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
        if patch_size is not None and (patch_size <= 0 or patch_size % scale):
            raise ValueError(f"patch size {patch_size} must be a positive multiple of the scale {scale}")
        self.items = list_clips(gt_dir, frames) if frames else [(p,) for p in list_images(gt_dir)]
        self.gt_dir, self.lq_dir = Path(gt_dir), Path(lq_dir) if lq_dir is not None else None
        if self.lq_dir is not None:
            missing = [p for item in self.items for p in item if not self._lq_path(p).is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} inputs missing from {self.lq_dir}, e.g. "
                                        f"{self._lq_path(missing[0])}")
        self.degradation, self.patch_size, self.channels = degradation, patch_size, channels
        self.video, self.augment, self.seed = frames > 0, augment and patch_size is not None, seed
        self.cache = FrameCache(cache_dir, channels) if cache_dir is not None else None

    def _read(self, path: Path) -> np.ndarray:
        """The frame at ``path``, uint8 / uint16 (H, W) or (H, W, 3): decoded, or memory-mapped from the cache."""
        return self.cache.read(path) if self.cache is not None else decode_frame(path, self.channels)

    def _lq_path(self, gt_path: Path) -> Path:
        return self.lq_dir / gt_path.relative_to(self.gt_dir)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        item, scale = self.items[index], self.degradation.scale
        gt = [self._read(p) for p in item]
        lq = [self._read(self._lq_path(p)) for p in item] if self.lq_dir is not None else None
        height, width = gt[0].shape[:2]
        if lq is not None and lq[0].shape[:2] != (height // scale, width // scale):
            raise ValueError(f"{self._lq_path(item[0])} is {lq[0].shape[1]}x{lq[0].shape[0]}, expected "
                             f"{width // scale}x{height // scale} (its ground truth {width}x{height} / {scale})")
        size = self.patch_size
        if size is None:
            top, left, crop_h, crop_w = 0, 0, height - height % scale, width - width % scale
        else:
            if height < size or width < size:
                raise ValueError(f"{item[0]} is {width}x{height}, smaller than the patch size {size}")
            top = int(rng.integers(0, (height - size) // scale + 1)) * scale
            left = int(rng.integers(0, (width - size) // scale + 1)) * scale
            crop_h = crop_w = size
        gt = [f[top:top + crop_h, left:left + crop_w] for f in gt]
        if lq is not None:
            lq = [f[top // scale:(top + crop_h) // scale, left // scale:(left + crop_w) // scale] for f in lq]
        else:
            lq = [self.degradation(np.ascontiguousarray(f), rng) for f in gt]
        if self.augment:
            flips = tuple(bool(b) for b in rng.integers(0, 2, size=3))
            gt, lq = _augment(gt, *flips), _augment(lq, *flips)
        return _to_tensor(lq, self.video), _to_tensor(gt, self.video)


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """The batches of one rank, as keys ``(index, epoch)``, for steps ``start_step`` to ``steps - 1``.

    Each epoch is a permutation of the data set seeded by (seed, epoch), padded by repetition to a multiple of
    ``world_size`` and dealt round-robin to the ranks, as torch's ``DistributedSampler`` shards; a rank reads its
    share as one endless stream, ``batch_size`` keys a step. The batch of a step therefore depends only on
    (seed, step, rank, world_size): resuming at a step needs no sampler state.
    """

    def __init__(self, size: int, batch_size: int, steps: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start_step: int = 0) -> None:
        if size <= 0:
            raise ValueError("the data set is empty")
        self.size, self.batch_size, self.steps, self.start_step = size, batch_size, steps, start_step
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.per_rank = math.ceil(size / world_size)

    def _epoch(self, epoch: int) -> list[int]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        padded = order.repeat(math.ceil(self.per_rank * self.world_size / self.size))[:self.per_rank * self.world_size]
        return padded[self.rank::self.world_size].tolist()

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, indices = -1, []
        for step in range(self.start_step, self.steps):
            batch = []
            for position in range(step * self.batch_size, (step + 1) * self.batch_size):
                if position // self.per_rank != epoch:
                    epoch = position // self.per_rank
                    indices = self._epoch(epoch)
                batch.append((indices[position % self.per_rank], epoch))
            yield batch
