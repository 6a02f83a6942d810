"""Where a model's forward spends its CPU time: torch.profiler's table of one forward, one thread.

    python benchmarks/profile_model.py mambair_light_x4 --size 128
    python benchmarks/profile_model.py medvsr --size 64 --frames 7 --ssd-backend torch

Random weights, batch 1, float32, ``torch.inference_mode``; one warm-up forward, then the process CPU time of one
forward and the profiler's table of a third (ops sorted by their own CPU time). The profiler adds overhead, so
read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

import ssmblocks
from ssmblocks.ops import use_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=64, help="input side (frames for video models)")
    parser.add_argument("--frames", type=int, default=7, help="clip length for video models")
    parser.add_argument("--ssd-backend", default="auto", help="the ssd_scan backend (video models: MedVSR)")
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = ssmblocks.create_model(args.model).eval()
    x = torch.rand(ssmblocks.contract_of(model).example_shape(args.size, args.size, args.frames))
    with torch.inference_mode(), use_backend("ssd_scan", args.ssd_backend):
        model(x)
        start = time.process_time()
        model(x)
        print(f"{args.model} {tuple(x.shape)}: forward {time.process_time() - start:.3f} s CPU, 1 thread")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
