"""Full-model CPU benchmark of MambaCSR (Final and wo): native scan vs the sequential-loop scan, peak memory.

    python benchmarks/mambacsr.py            # 128x128 and 256x256: long, the sequential runs are slow
    python benchmarks/mambacsr.py --quick    # the Final model at 64x64 only

Same method as benchmarks/models.py (and its subprocess probe): batch 1, random weights, torch.inference_mode,
float32; the baseline is the same model with the ``reference`` scan backend (mamba_ssm's sequential
``selective_scan_ref``, what the official code falls back to without CUDA).
"""

from __future__ import annotations

import argparse
import os

from models import _measure

CASES = [("mambacsr", 128), ("mambacsr_wo", 128), ("mambacsr", 256), ("mambacsr_wo", 256)]
QUICK = [("mambacsr", 64)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1")
    print("| model | input | native scan ms | sequential scan ms | speed-up | native peak MB | sequential peak MB |")
    print("|---|---|---|---|---|---|---|")
    for name, size in QUICK if args.quick else CASES:
        native = _measure(name, size, "native", args.repeats)
        sequential = _measure(name, size, "reference", args.repeats)
        print(f"| {name} | {size}x{size} | {native['ms']:.0f} | {sequential['ms']:.0f} | "
              f"{sequential['ms'] / native['ms']:.1f}x | {native['peak_mb']:.0f} | {sequential['peak_mb']:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
