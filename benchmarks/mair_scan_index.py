"""Building MaIR's scan indices: the official approach (a Python loop enumeration on every forward at a new size)
against ssmblocks' closed-form order with its cache.

    python benchmarks/mair_scan_index.py                       # sizes 32, 64, 128, 256; scan_len 8
    python benchmarks/mair_scan_index.py --sizes 64 --repeats 1

The loop enumeration is written here from the rule in shared/reference/mair.md (stripes of ``scan_len`` columns, rows
snaking inside each stripe, stripes alternately top->bottom and bottom->top; four sequences: the map, its 180 deg
rotation, the transpose, the rotated transpose; the plain and the shifted variant, as every forward of the official
``MaIR`` at a size other than ``img_size`` regenerates both), not copied from the official code. It is checked equal
to the cached order before timing. Reported per size: the loop enumeration (the cost the official model pays on
each forward whose size differs from ``img_size``), ssmblocks' first build (closed form, then cached), and a cached
lookup (what every later forward at that size pays).
"""

from __future__ import annotations

import argparse
import time

import torch
from _machine import cpu_model


def _loop_nss(rows: int, cols: int, stripe: int, shift: int) -> list[int]:
    """One NSS path over a rows x cols map as row-major ids, by Python loops over stripes, rows and columns."""
    if shift and cols < shift:
        return list(range(rows * cols))
    bands, start = [], 0
    if shift:
        bands.append((0, shift))
        start = shift
    while start < cols:
        bands.append((start, min(start + stripe, cols)))
        start += stripe
    ids = []
    for j, (a, b) in enumerate(bands):
        order = range(rows) if j % 2 == 0 else range(rows - 1, -1, -1)
        for u, r in enumerate(order):
            columns = range(a, b) if u % 2 == 0 else range(b - 1, a - 1, -1)
            ids.extend(r * cols + c for c in columns)
    return ids


def loop_enumeration(h: int, w: int, stripe: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The four sequences and their inverses (argsort), as tensors, the way a per-forward regeneration makes them."""
    n = h * w
    k0 = _loop_nss(h, w, stripe, shift)
    k2 = [(q % h) * w + q // h for q in _loop_nss(w, h, stripe, shift)]
    ids = torch.tensor([k0, [n - 1 - p for p in k0], k2, [n - 1 - p for p in k2]])
    return ids, torch.argsort(ids, dim=1)


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--scan-len", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from ssmblocks.scan_orders import index_cache, nested_s_scan

    s = args.scan_len
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; scan_len {s}; plain + "
          f"shifted orders (4 sequences each) with their inverses; median of {args.repeats}")
    print("| map | official-style loop enumeration ms | ssmblocks first build ms | ssmblocks cached ms | "
          "loop / build |")
    print("|---|---|---|---|---|")
    orders = (nested_s_scan(s), nested_s_scan(s, shifted=True))
    for size in args.sizes:
        shape = (size, size + size // 4)                   # non-square, with a leftover stripe
        for order, shift in zip(orders, (0, s // 2), strict=True):
            ids, inverse = loop_enumeration(*shape, s, shift)
            assert torch.equal(order.paths(shape, "cpu"), ids) and torch.equal(order.inverse(shape, "cpu"), inverse)

        def loops(shape=shape):
            for shift in (0, s // 2):
                loop_enumeration(*shape, s, shift)

        def build(shape=shape):
            index_cache.clear()
            for order in orders:
                order.inverse(shape, "cpu")

        def cached(shape=shape):
            for order in orders:
                order.inverse(shape, "cpu")

        t_loop, t_build = _median(loops, args.repeats), _median(build, args.repeats)
        cached()
        t_cached = _median(cached, max(args.repeats, 20))
        print(f"| {shape[0]}x{shape[1]} | {t_loop * 1e3:.2f} | {t_build * 1e3:.2f} | {t_cached * 1e3:.4f} | "
              f"{t_loop / t_build:.0f}x |")


if __name__ == "__main__":
    main()
