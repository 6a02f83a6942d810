"""Scan-order benchmark: scan + merge of a (1, 360, 256, 256) map with the 4-path cross-scan vs plain copies.

    python benchmarks/scan_orders.py
    THP_MEM_ALLOC_ENABLE=1 python benchmarks/scan_orders.py    # transparent huge pages: fewer page faults

Side by side in one process, medians of --repeats runs. Baselines: ``x.clone()`` (a contiguous copy of the map,
94 MB) and ``paths.clone()`` (a copy of the (B, K, C, L) path tensor the scan produces, 4x the map: every K-path
order must write that much). Scan and merge are index gathers with cached indices (native kernel on CPU).
"""

from __future__ import annotations

import argparse
import os

import torch

from ssmblocks._timing import median_ms
from ssmblocks.scan_orders import Windowed, bidirectional, cross_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, nargs=4, default=(1, 360, 256, 256), metavar=("B", "C", "H", "W"))
    args = parser.parse_args()
    x = torch.randn(*args.size)
    shape = tuple(args.size[2:])
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, map "
          f"{tuple(args.size)} = {x.numel() * 4 / 2**20:.0f} MB, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    copy_ms = median_ms(lambda: x.clone(), args.repeats)
    print("| order | scan ms | merge ms | merge_sum ms | scan+merge_sum ms | / map copy | / paths copy |")
    print("|---|---|---|---|---|---|---|")
    for name, order in (("cross_scan(4)", cross_scan(4)), ("w8 + w8_flip", bidirectional(Windowed(8)))):
        paths = order.scan(x)
        paths_copy_ms = median_ms(lambda p=paths: p.clone(), args.repeats)
        scan_ms = median_ms(lambda o=order: o.scan(x), args.repeats)
        merge_ms = median_ms(lambda o=order, p=paths: o.merge(p, shape), args.repeats)
        sum_ms = median_ms(lambda o=order, p=paths: o.merge_sum(p, shape), args.repeats)
        both = scan_ms + sum_ms
        print(f"| {name} | {scan_ms:.1f} | {merge_ms:.1f} | {sum_ms:.1f} | {both:.1f} | {both / copy_ms:.1f}x | "
              f"{both / paths_copy_ms:.1f}x |")
    print(f"baselines: map copy {copy_ms:.1f} ms; the paths tensor of K paths is K x the map")


if __name__ == "__main__":
    main()
