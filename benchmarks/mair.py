"""MaIR-T light x4 beside MambaIR light x4 on CPU: time per pixel and peak memory at 128x128 and 256x256.

    python benchmarks/mair.py                            # mair_light_t_x4 vs mambair_light_x4, 128 and 256, 3 runs
    python benchmarks/mair.py --sizes 64 --repeats 1     # a quick check of the script
    python benchmarks/mair.py --threads 1                # one thread (a shared machine: no oversubscription)

Each (model, size) runs in a fresh subprocess (random weights, eval, batch 1, float32, torch.inference_mode): one
warm-up forward (it also builds and caches the scan tables), then the median of ``--repeats`` forwards; the peak
resident memory of the first forward above the memory before it (``_memory.peak_extra_mb``). Time per pixel is
the median forward time divided by the input's H x W.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _machine import cpu_model
from _memory import peak_extra_mb

MODELS = ("mambair_light_x4", "mair_light_t_x4")


def _measure(name: str, size: int, repeats: int, threads: int | None) -> dict:
    import torch

    import ssmblocks

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ssmblocks.create_model(name).eval()
    x = torch.rand(1, 3, size, size)
    with torch.inference_mode():
        peak = peak_extra_mb(lambda: model(x))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    return {"ms": median * 1e3, "ns_per_px": median * 1e9 / size**2, "peak_mb": peak,
            "params": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)       # subprocess: model size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one[0], int(args.one[1]), args.repeats, args.threads)))
        return
    rows = []
    for size in args.sizes:
        for name in MODELS:
            out = subprocess.run([sys.executable, __file__, "--one", name, str(size), "--repeats", str(args.repeats),
                                  "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
            rows.append((name, size, json.loads(out.stdout.strip().splitlines()[-1])))
    info = rows[0][2]
    print(f"CPU: {cpu_model()}; torch {info['torch']}, {info['threads']} threads; fp32, batch 1, median of "
          f"{args.repeats} after a warm-up")
    print("| model | params | input | ms per forward | ns per input pixel | peak extra MB |")
    print("|---|---|---|---|---|---|")
    for name, size, r in rows:
        print(f"| {name} | {r['params']:,} | {size}x{size} | {r['ms']:.0f} | {r['ns_per_px']:.0f} | "
              f"{r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
