"""Memory of restoring differently sized images: resident-memory growth over 8 new input sizes near 200x200.

    python benchmarks/index_cache.py                       # mambair_light_x4, 8 sizes from 200x200
    python benchmarks/index_cache.py --repo /path/to/checkout   # the same with another checkout (e.g. before)

One process: a warm-up forward at (size + 8)^2, then one forward per new, smaller size (batch 1, random weights,
``torch.inference_mode``). Reported: resident memory after each forward above the memory after the warm-up, and how
much the peak resident memory (Linux VmHWM) grew over the 8 sizes beyond the warm-up's peak. Every new size builds
index tables for the scan orders; they are kept in the shared bounded ``ssmblocks.scan_orders.index_cache`` (one
table set per distinct order and size). glibc keeps freed heap memory of varied sizes; the environment variable
``MALLOC_MMAP_THRESHOLD_=1048576`` (large buffers from mmap, returned on free) separates that from what is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mambair_light_x4")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--sizes", type=int, default=8)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                        help="the checkout to import ssmblocks from (default: this one)")
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    import torch

    import ssmblocks

    torch.manual_seed(0)
    model = ssmblocks.create_model(args.model).eval()
    # the warm-up is the largest map, so the activations of later forwards fit in memory it already used:
    # what grows is what each new size leaves behind
    sizes = [(args.size + args.sizes, args.size + args.sizes)] + [(args.size + i, args.size + args.sizes - 1 - i)
                                                                   for i in range(args.sizes)]
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1, "
          f"{args.model}, ssmblocks from {Path(ssmblocks.__file__).parent}")
    with torch.inference_mode():
        model(torch.rand(1, 3, *sizes[0]))
        resident, peak = _status_mb("VmRSS"), _status_mb("VmHWM")
        for height, width in sizes[1:]:
            model(torch.rand(1, 3, height, width))
            print(f"{height}x{width}: resident +{_status_mb('VmRSS') - resident:.0f} MB", flush=True)
    print(f"after the warm-up: resident {resident:.0f} MB, peak {peak:.0f} MB; over {args.sizes} new sizes the peak "
          f"grew by {_status_mb('VmHWM') - peak:.0f} MB")
    cache = getattr(ssmblocks.scan_orders, "index_cache", None)
    if cache is not None:
        print(f"index cache: {cache!r}")


if __name__ == "__main__":
    main()
