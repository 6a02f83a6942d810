"""Multi-head multi-scan (EAMamba's MHSSM) against the same eight orders run as eight full-width scans, and the
EAMamba light SR model beside MambaIR's, on CPU.

    python benchmarks/multihead_scan.py                  # the table in docs/benchmarks.md
    python benchmarks/multihead_scan.py --sizes 32       # a quick check of the script
    python benchmarks/multihead_scan.py --repeats 5

Mixers (width 64, d_state 16, expand 1, batch 1, float32, random weights, ``torch.inference_mode``):
- ``MHSSM``: ``eamamba_scan()`` splits the 64 channels into eight heads of 8, each read in its own order
  (diagonal, anti-diagonal, row, column, each forward and reverse): one selective scan over 64 channels.
- ``SS2D x8``: the same eight orders as an eight-path order (``concat`` of them) in SS2D: every path scans all 64
  channels (one scan over 8 x 64 channels) and the paths are summed — the copy-and-sum design of VMamba/MambaIR
  with eight directions.
Models: ``eamamba_light_x4`` and ``mambair_light_x4`` (random weights), x4 SR of a square input.

Every case runs in a fresh subprocess with one thread (``--threads``): the median CPU time of the forward
(``time.thread_time``: on a machine shared with other jobs, wall time with several threads measures the contention)
over ``--repeats`` runs after a warm-up, also per input pixel, and the peak resident memory the first forward adds
(VmHWM after /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _machine import cpu_model
from _memory import peak_extra_mb

MIXERS = ("MHSSM", "SS2D x8")
MODELS = ("eamamba_light_x4", "mambair_light_x4")


def _build(name: str):
    import torch

    import ssmblocks
    from ssmblocks.blocks import MHSSM, SS2D
    from ssmblocks.scan_orders import concat, eamamba_scan

    torch.manual_seed(0)
    if name == "MHSSM":
        return MHSSM(64, d_state=16, expand=1).eval(), "tokens"
    if name == "SS2D x8":
        return SS2D(64, d_state=16, expand=1, scan_order=concat(*eamamba_scan().orders)).eval(), "tokens"
    return ssmblocks.create_model(name).eval(), "image"


def _child(name: str, size: int, repeats: int, threads: int) -> dict:
    import torch

    from ssmblocks._timing import median_ms

    torch.set_num_threads(threads)
    model, kind = _build(name)
    x = torch.rand(1, size, size, 64) if kind == "tokens" else torch.rand(1, 3, size, size)

    def forward():
        with torch.inference_mode():
            model(x)

    peak = peak_extra_mb(forward)
    ms = median_ms(forward, repeats, warmup=False, cpu_time=threads == 1)
    return {"ms": ms, "us_per_pixel": ms * 1e3 / (size * size), "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="1: CPU time of the thread; more: wall time")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]), args.repeats, args.threads)))
        return
    import torch

    clock = "thread CPU time" if args.threads == 1 else "wall time"
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, {args.threads} thread(s) ({clock}), "
          f"median of {args.repeats}\n")
    for title, names in (("mixer (64 channels)", MIXERS), ("model (x4 SR)", MODELS)):
        print(f"| {title} | input | ms | us per input pixel | peak MB | vs first row |")
        print("|---|---|---|---|---|---|")
        for size in args.sizes:
            base = None
            for name in names:
                command = [sys.executable, __file__, "--child", name, str(size), "--repeats", str(args.repeats),
                           "--threads", str(args.threads)]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                base = base or row["ms"]
                print(f"| {name} | {size}x{size} | {row['ms']:.1f} | {row['us_per_pixel']:.2f} | "
                      f"{row['peak_mb']:.0f} | {row['ms'] / base:.2f}x |", flush=True)
        print()


if __name__ == "__main__":
    main()
