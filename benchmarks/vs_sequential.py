"""Every image family on CPU with the library's scan against the same model with the sequential-loop scan.

    python benchmarks/vs_sequential.py                       # long: the sequential runs are slow
    python benchmarks/vs_sequential.py --models dvmsr mambacsr --sizes 128 256
    python benchmarks/vs_sequential.py --quick               # the light model at 32x32 only

The sequential baseline runs the same model with the ``reference`` scan backend: the loop of mamba_ssm's
``selective_scan_ref``, which is what the official code falls back to on a machine without CUDA. Each (model,
input, backend) is measured in a fresh subprocess: forward in ``torch.inference_mode``, median of --repeats runs
after a warm-up (the single first run for the sequential backend), and the peak resident memory of the first
forward above the memory before it (Linux VmHWM). Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _machine import cpu_model
from _memory import peak_extra_mb

MODELS = ["mambair_sr_x4", "mambair_light_x4", "dvmsr", "mambacsr", "mambacsr_wo"]
SIZES = [128, 256]
QUICK = [("mambair_light_x4", 32)]


def _probe(model_name: str, size: int, backend: str, repeats: int) -> dict:
    """Subprocess side: build, time, and measure one model on one input size with one scan backend."""
    import torch

    import ssmblocks
    from ssmblocks._timing import median_ms
    from ssmblocks.ops import use_backend

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    x = torch.rand(1, ssmblocks.contract_of(model).in_chans, size, size)
    if backend == "native":
        from ssmblocks.ops._native import native_library

        native_library()  # load (or build) the kernel before measuring
    with torch.inference_mode(), use_backend("selective_scan", backend):
        # the first forward: its peak memory (later runs reuse the freed heap, hiding their allocations)
        start = time.perf_counter()
        peak = peak_extra_mb(lambda: model(x))
        first_ms = (time.perf_counter() - start) * 1e3
        # the first run is the sequential backend's only run, and the native backend's warm-up
        ms = first_ms if backend == "reference" else median_ms(lambda: model(x), repeats, warmup=False)
    return {"ms": ms, "peak_mb": peak}


def _measure(model_name: str, size: int, backend: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--probe", model_name, str(size), backend, "--repeats", str(repeats)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", nargs=3, metavar=("MODEL", "SIZE", "BACKEND"), help="internal")
    args = parser.parse_args()
    if args.probe:
        name, size, backend = args.probe
        print(json.dumps(_probe(name, int(size), backend, args.repeats)))
        return
    import torch

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, fp32, batch 1")
    print("| model | input | native scan ms | sequential scan ms | speed-up | native peak MB | sequential peak MB |")
    print("|---|---|---|---|---|---|---|")
    cases = QUICK if args.quick else [(name, size) for name in args.models for size in args.sizes]
    for name, size in cases:
        native = _measure(name, size, "native", args.repeats)
        sequential = _measure(name, size, "reference", args.repeats)
        print(f"| {name} | {size}x{size} | {native['ms']:.0f} | {sequential['ms']:.0f} | "
              f"{sequential['ms'] / native['ms']:.1f}x | {native['peak_mb']:.0f} | {sequential['peak_mb']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
