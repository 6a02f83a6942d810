"""VSRM CPU benchmark: time per frame and peak memory against clip length, native vs sequential selective scan.

    python benchmarks/video_vsrm.py                         # vsrm_ablation, 32x32 frames, clips of 3, 6, 12
    python benchmarks/video_vsrm.py --model vsrm --size 64 --frames 3 6 --skip-sequential

The sequential baseline runs the same model with the ``reference`` selective-scan backend (the loop of mamba_ssm's
``selective_scan_ref``, what a machine without CUDA would otherwise run) in every S2T/T2S mixer; DCA's Mamba-2
scan keeps its automatic backend in both. Each (clip length, backend) runs in a fresh subprocess: forward in
``torch.inference_mode``, the peak resident memory of the first forward above the memory before it (Linux VmHWM),
then the median of --repeats forwards (the native backend) or the first forward alone (the sequential one).
Random weights: speed does not depend on them. To be folded into benchmarks/video.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _memory import peak_extra_mb


def _probe(model_name: str, size: int, frames: int, backend: str, repeats: int) -> dict:
    """Subprocess side: one model, one clip (1, frames, 3, size, size), one selective-scan backend."""
    import torch

    import ssmblocks
    from ssmblocks._timing import median_ms
    from ssmblocks.ops import use_backend

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    clip = torch.rand(1, frames, 3, size, size)
    with torch.inference_mode(), use_backend("selective_scan", backend):
        start = time.perf_counter()
        peak = peak_extra_mb(lambda: model(clip))
        first_ms = (time.perf_counter() - start) * 1e3
        ms = first_ms if backend == "reference" else median_ms(lambda: model(clip), repeats, warmup=False)
    return {"ms_per_frame": ms / frames, "peak_mb": peak}


def _measure(model_name: str, size: int, frames: int, backend: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--probe", model_name, str(size), str(frames), backend, "--repeats",
           str(repeats)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vsrm_ablation")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--frames", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--probe", nargs=4, metavar=("MODEL", "SIZE", "FRAMES", "BACKEND"), help="internal")
    args = parser.parse_args()
    if args.probe:
        name, size, frames, backend = args.probe
        print(json.dumps(_probe(name, int(size), int(frames), backend, args.repeats)))
        return
    import torch

    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1, "
          f"{args.model}, {args.size}x{args.size} frames")
    print("| frames | native ms/frame | sequential ms/frame | speed-up | native peak MB | sequential peak MB |")
    print("|---|---|---|---|---|---|")
    for frames in args.frames:
        native = _measure(args.model, args.size, frames, "native", args.repeats)
        if args.skip_sequential:
            print(f"| {frames} | {native['ms_per_frame']:.0f} | - | - | {native['peak_mb']:.0f} | - |", flush=True)
            continue
        seq = _measure(args.model, args.size, frames, "reference", args.repeats)
        print(f"| {frames} | {native['ms_per_frame']:.0f} | {seq['ms_per_frame']:.0f} | "
              f"{seq['ms_per_frame'] / native['ms_per_frame']:.1f}x | {native['peak_mb']:.0f} | "
              f"{seq['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
