"""Memory of restoring differently sized images: resident-memory growth over 8 new input sizes near 200x200.

    python benchmarks/index_cache.py                       # mambair_light_x4, 8 sizes from 200x200
    python benchmarks/index_cache.py --repo /path/to/checkout   # the same with another checkout (e.g. before)

One process: a warm-up forward at the first size, then one forward per new size (batch 1, random weights,
``torch.inference_mode``). Reported: resident memory after each forward above the memory after the warm-up, and the
peak (Linux VmHWM) over all 8 sizes above it. Every new size builds index tables for the scan orders; they are
kept in the shared bounded ``ssmblocks.scan_orders.index_cache`` (one table set per distinct order and size).
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
    parser.add_argument("--repo", help="import ssmblocks from this checkout instead of the installed/local one")
    args = parser.parse_args()
    if args.repo:
        sys.path.insert(0, args.repo)
    import torch

    import ssmblocks

    torch.manual_seed(0)
    model = ssmblocks.create_model(args.model).eval()
    sizes = [(args.size + 3 * i, args.size + 5 * i + 1) for i in range(args.sizes + 1)]
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1, "
          f"{args.model}, ssmblocks from {Path(ssmblocks.__file__).parent}")
    with torch.inference_mode():
        model(torch.rand(1, 3, *sizes[0]))
        base = _status_mb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")            # reset the peak (VmHWM) to the current RSS
        for height, width in sizes[1:]:
            model(torch.rand(1, 3, height, width))
            print(f"{height}x{width}: resident +{_status_mb('VmRSS') - base:.0f} MB", flush=True)
    print(f"peak over {args.sizes} new sizes: +{_status_mb('VmHWM') - base:.0f} MB above the warm-up's "
          f"{base:.0f} MB")
    cache = getattr(ssmblocks.scan_orders, "index_cache", None)
    if cache is not None:
        print(f"index cache: {cache!r}")


if __name__ == "__main__":
    main()
