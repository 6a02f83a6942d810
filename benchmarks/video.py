"""MedVSR on CPU: time per frame and peak memory against clip length, chunked SSD scan vs the sequential scan; and
the deformable convolution against the convolutions around it.

    python benchmarks/video.py              # released MedVSR, 64x64 clips of 7, 14 and 28 frames (long)
    python benchmarks/video.py --quick      # test_medvsr, 7 frames
    python benchmarks/video.py --model test_medvsr --frames 4 8 16 --repeats 0   # first forwards only

Each (model, frames, scan backend) runs in a fresh subprocess: one forward in ``torch.inference_mode`` (its wall
time and its peak resident memory above the memory before it, Linux VmHWM), then the median of --repeats more
forwards for the chunked backend. ``reference`` is the sequential SSD loop (``ssd_scan_ref``), the kind of path the
official code falls back to without its Triton kernel. Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _memory import peak_extra_mb


def _probe(model_name: str, frames: int, size: int, backend: str, repeats: int) -> dict:
    """Subprocess side: one model, one clip length, one SSD backend."""
    import torch

    import ssmblocks
    from ssmblocks._timing import median_ms
    from ssmblocks.ops import use_backend

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    clip = torch.rand(1, frames, 3, size, size)
    with torch.inference_mode(), use_backend("ssd_scan", backend):
        start = time.perf_counter()
        peak = peak_extra_mb(lambda: model(clip))
        first_ms = (time.perf_counter() - start) * 1e3
        ms = first_ms if backend == "reference" or repeats == 0 else median_ms(lambda: model(clip), repeats,
                                                                                warmup=False)
    return {"ms_per_frame": ms / frames, "peak_mb": peak}


def _measure(model_name: str, frames: int, size: int, backend: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--probe", model_name, str(frames), str(size), backend, "--repeats",
           str(repeats)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def _deform_vs_convs(mid: int, size: int, repeats: int) -> list[tuple[str, float]]:
    """Times one alignment step's deformable conv and the plain convolutions of the same step (released widths)."""
    import torch
    import torch.nn.functional as F

    from ssmblocks._timing import median_ms
    from ssmblocks.ops import deform_conv2d

    torch.manual_seed(0)
    x = torch.rand(1, 2 * mid, size, size)
    offset = torch.randn(1, 2 * 16 * 9, size, size) * 3
    mask = torch.rand(1, 16 * 9, size, size)
    weight = torch.randn(mid, 2 * mid, 3, 3) * 0.05

    def conv(c_in: int, c_out: int):
        inp, w = torch.rand(1, c_in, size, size), torch.randn(c_out, c_in, 3, 3) * 0.05
        return lambda: F.conv2d(inp, w, padding=1)

    cases = [
        (f"deform_conv2d {2 * mid}->{mid}, 16 offset groups", lambda: deform_conv2d(x, offset, weight, None, 1, 1, 1,
                                                                                    mask)),
        (f"conv {3 * mid + 4}->{mid} (first offset conv)", conv(3 * mid + 4, mid)),
        (f"conv {mid}->{27 * 16} (last offset conv)", conv(mid, 27 * 16)),
        (f"conv {2 * mid}->{mid} (same shape as the deformable conv)", conv(2 * mid, mid)),
        (f"conv {5 * mid}->{mid} (trunk input of forward_2)", conv(5 * mid, mid)),
    ]
    with torch.inference_mode():
        return [(name, median_ms(fn, repeats)) for name, fn in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames", type=int, nargs="+", default=[7, 14, 28])
    parser.add_argument("--model", default="medvsr")
    parser.add_argument("--probe", nargs=4, metavar=("MODEL", "FRAMES", "SIZE", "BACKEND"), help="internal")
    args = parser.parse_args()
    if args.probe:
        name, frames, size, backend = args.probe
        print(json.dumps(_probe(name, int(frames), int(size), backend, args.repeats)))
        return
    import torch

    model, frames_list = ("test_medvsr", [7]) if args.quick else (args.model, args.frames)
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| model | clip | chunked SSD ms/frame | sequential SSD ms/frame | speed-up | chunked peak MB | "
          "sequential peak MB |")
    print("|---|---|---|---|---|---|---|")
    for frames in frames_list:
        chunked = _measure(model, frames, 64, "torch", args.repeats)
        sequential = _measure(model, frames, 64, "reference", 0)
        print(f"| {model} | {frames}x64x64 | {chunked['ms_per_frame']:.0f} | {sequential['ms_per_frame']:.0f} | "
              f"{sequential['ms_per_frame'] / chunked['ms_per_frame']:.2f}x | {chunked['peak_mb']:.0f} | "
              f"{sequential['peak_mb']:.0f} |", flush=True)
    mid = 32 if model.startswith("test_") else 64
    print(f"\n| one alignment step at 64x64, mid {mid} | ms |\n|---|---|")
    for name, ms in _deform_vs_convs(mid, 64, max(args.repeats, 3)):
        print(f"| {name} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
