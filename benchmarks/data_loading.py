"""Training patches per CPU-second from large PNGs, with and without the decoded-frame cache (``--data-cache``).

    python benchmarks/data_loading.py                     # 4 images 2040x1356, 400 patches 64x64, sr x4
    python benchmarks/data_loading.py --patches 1000 --folder /tmp/big_pngs

One process, one thread. The images are scikit-image's bundled sample photos (astronaut, coffee, chelsea, rocket)
resized to DIV2K's 2040x1356 with PIL bicubic and saved as PNG (PIL's default compression), in a temporary folder.
Each sample is what training reads: a random 64x64 ground-truth crop, its bicubic x4 input and a random flip or
rotation (``PairedFrames`` with task sr). Rows: no cache (every patch decodes its whole PNG); filling the cache (the
first read of each image: decode + write of the .npy); a warm cache (patches read through the memory map; a new
dataset object, as a new worker would be). Times are CPU time of this process (``time.process_time``: user +
system), so waiting for a disk is not counted and a shared machine disturbs them little; the cache files were just
written, so they are in the page cache, as they are from the second epoch of a run on a machine with enough memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def make_images(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` PNGs of width x height from scikit-image's sample photos (bundled with it: no download)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        name = SAMPLES[i % len(SAMPLES)]
        path = folder / f"{i:03d}_{name}.png"
        if not path.exists():
            image = Image.fromarray(getattr(data, name)()).convert("RGB")
            image.resize((width, height), Image.Resampling.BICUBIC).save(path)
        paths.append(path)
    return paths


def cpu_seconds(read, keys: list[tuple[int, int]]) -> float:
    start = time.process_time()
    for key in keys:
        read(key)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--width", type=int, default=2040)
    parser.add_argument("--height", type=int, default=1356)
    parser.add_argument("--patches", type=int, default=400)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--folder", help="where the PNGs are made (kept); default: a temporary folder")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from benchmarks._machine import cpu_model
    from ssmblocks.train import Degradation, PairedFrames

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp) / "hq"
        paths = make_images(folder, args.images, args.width, args.height)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        options = {"degradation": Degradation("sr", args.scale), "patch_size": args.patch_size}
        keys = [(i % args.images, i // args.images) for i in range(args.patches)]
        plain = PairedFrames(folder, **options)
        filling = PairedFrames(folder, **options, cache_dir=Path(tmp) / "cache")
        warm = PairedFrames(folder, **options, cache_dir=Path(tmp) / "cache")
        rows = [("no cache (decode the PNG per patch)", cpu_seconds(plain.__getitem__, keys), len(keys)),
                ("filling the cache (first read of each image)", cpu_seconds(filling.__getitem__, keys[:args.images]),
                 args.images),
                ("warm cache (memory-mapped .npy)", cpu_seconds(warm.__getitem__, keys), len(keys))]
        for key in keys[:args.images]:   # the same samples either way
            assert all(torch.equal(a, b) for a, b in zip(plain[key], warm[key], strict=True))
        cache_mb = sum(p.stat().st_size for p in (Path(tmp) / "cache").iterdir()) / 2**20
    print(f"{cpu_model()}, torch {torch.__version__}, 1 thread; {args.images} PNGs {args.width}x{args.height} "
          f"({megabytes:.1f} MB, cache {cache_mb:.1f} MB), {args.patch_size}x{args.patch_size} patches, "
          f"sr x{args.scale}")
    print("| reading | samples | CPU ms per sample | samples per CPU-second |\n|---|---|---|---|")
    for name, seconds, count in rows:
        print(f"| {name} | {count} | {1000 * seconds / count:.2f} | {count / seconds:.0f} |")


if __name__ == "__main__":
    main()
