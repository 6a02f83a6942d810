"""restore() under a memory budget: the tile size chosen, wall time and peak resident memory (CPU).

    python benchmarks/restore.py                          # mambair_light_x4, 1024x1024 -> 4096x4096, budget 2GB
    python benchmarks/restore.py --size 256 --budget 500MB   # a quick run
    python benchmarks/restore.py --calibrate 64 128 192      # live-tensor estimate vs measured peak, per size

Random weights (memory and speed do not depend on them), float32, ``torch.inference_mode``. Peak = the process's
peak resident memory during the restore above the memory before it (Linux VmHWM), in a fresh process; the model's
own weights are resident before and not counted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import torch
from _memory import peak_extra_mb

import ssmblocks
from ssmblocks.inference import parse_bytes
from ssmblocks.inference.restore import _budget_tile, _forward_fn, model_info


def _calibration_point(model_name: str, side: int) -> None:
    """Subprocess side: one forward at side x side; measured peak first (a fresh process), then the estimate."""
    from ssmblocks.profiling import LiveBytes, run_without_arithmetic

    model = ssmblocks.create_model(model_name).eval()
    x = torch.rand(1, 3, side, side)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    peak = peak_extra_mb(forward)
    live = LiveBytes()
    run_without_arithmetic(model, tuple(x.shape), live)
    estimate = live.peak / 2**20
    print(f"| {side}x{side} | {estimate:.0f} | {peak:.0f} | {peak / estimate:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mambair_light_x4")
    parser.add_argument("--size", type=int, default=1024, help="input side")
    parser.add_argument("--budget", default="2GB")
    parser.add_argument("--calibrate", type=int, nargs="*", help="input sides: estimate vs measured peak")
    parser.add_argument("--point", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        _calibration_point(args.model, args.point)
        return
    if args.calibrate:
        print("| input | live-tensor estimate MB | measured peak MB | ratio |\n|---|---|---|---|")
        for side in args.calibrate:
            subprocess.run([sys.executable, __file__, "--model", args.model, "--point", str(side)], check=True)
        return

    torch.manual_seed(0)
    model = ssmblocks.create_model(args.model).eval()
    x = torch.rand(1, 3, args.size, args.size)
    start = time.perf_counter()
    tile = _budget_tile(_forward_fn(model, model_info(model)), x, model_info(model), parse_bytes(args.budget))
    choose_s = time.perf_counter() - start
    result = {}

    def run() -> None:
        begin = time.perf_counter()
        result["out"] = ssmblocks.restore(model, x, memory_budget=args.budget, progress=False)
        result["seconds"] = time.perf_counter() - begin

    peak = peak_extra_mb(run)
    out = result["out"]
    print(f"{args.model}, input {args.size}x{args.size} -> {tuple(out.shape[-2:])}, budget {args.budget} "
          f"({parse_bytes(args.budget) / 2**20:.0f} MiB), {torch.get_num_threads()} threads")
    print(f"tile chosen: {tile or 'whole image'} (choice {choose_s:.1f} s); restore {result['seconds']:.1f} s; "
          f"peak resident memory above the start: {peak:.0f} MB")


if __name__ == "__main__":
    main()
