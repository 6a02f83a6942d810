"""Video models on CPU (MedVSR, VSRM): time per frame and peak memory against clip length, the library's scan
against the sequential scan.

    python benchmarks/video.py                                   # released MedVSR, 64x64 clips of 7, 14, 28 frames
    python benchmarks/video.py --model vsrm_ablation --size 32 --frames 3 6 12
    python benchmarks/video.py --model vsrm --frames 3 6 --skip-sequential
    python benchmarks/video.py --quick                           # test_medvsr, one 3-frame 32x32 clip
    python benchmarks/video.py --quick --model test_vsrm
    python benchmarks/video.py --frames 7 --no-scan-bound          # also the model with a scan that costs nothing

The scan compared is the one the family's state-space mixers run (``SCANS``): MedVSR's Mamba-2 mixers run
``ssd_scan`` (library: the ``native`` backend, the SSD on the native selective-scan kernel; sequential:
``ssd_scan_ref``, the kind of loop the official code falls back to without its Triton kernel); VSRM's S2T/T2S mixers
run ``selective_scan`` (library: the ``native`` kernel; sequential: the ``reference`` loop of mamba_ssm's
``selective_scan_ref``), while DCA's Mamba-2 scan keeps its automatic backend in both. Each (clip length, scan) runs
in a fresh subprocess: one forward in ``torch.inference_mode`` (its wall time and its peak resident memory above the
memory before it, Linux VmHWM), then, for the library's scan, the median of --repeats more forwards (0: the first
forward alone). Random weights: speed does not depend on them. The deformable convolution is
timed by benchmarks/deform_conv.py.

--no-scan-bound adds a third run in which the scan op returns zeros at no cost: the model's time without any scan,
so sequential / no-scan is the largest speed-up that any scan implementation can give this model.
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

# family -> (scan op, the library's backend, the sequential backend)
SCANS = {"MedVSR": ("ssd_scan", "native", "reference"), "VSRM": ("selective_scan", "native", "reference")}


def _free_scan(op: str) -> None:
    """Makes the sequential backend of ``op`` return zeros of its output's shape without computing anything."""
    import importlib

    import torch

    module = importlib.import_module(f"ssmblocks.ops.{op}")  # the module (the package exports the function)
    if op == "ssd_scan":  # (x, dt, A, B, C, chunk_size, D, z, dt_bias, softplus, initial_states, dtype) -> (y, final)
        module._IMPLS["reference"] = lambda x, *args: (torch.zeros_like(x), None)
    else:  # (u, delta, A, B, C, D, z, delta_bias, softplus, dtype) -> (out, last state)
        module._TORCH_IMPLS["reference"] = lambda u, delta, A, *args: (
            torch.zeros_like(u), u.new_zeros(u.shape[0], u.shape[1], A.shape[1]))


def _probe(model_name: str, frames: int, size: int, scan: str, repeats: int) -> dict:
    """Subprocess side: one model, one clip (1, frames, 3, size, size), its scan run by the library or sequentially."""
    import torch

    import ssmblocks
    from ssmblocks._timing import median_ms
    from ssmblocks.ops import use_backend

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    op, library, sequential = SCANS[model.family]
    if scan == "free":
        _free_scan(op)
    clip = torch.rand(1, frames, 3, size, size)
    with torch.inference_mode(), use_backend(op, library if scan == "library" else sequential):
        start = time.perf_counter()
        peak = peak_extra_mb(lambda: model(clip))
        first_ms = (time.perf_counter() - start) * 1e3
        timed = scan != "sequential" and repeats > 0
        ms = median_ms(lambda: model(clip), repeats, warmup=False) if timed else first_ms
    return {"ms_per_frame": ms / frames, "peak_mb": peak, "op": op}


def _measure(model_name: str, frames: int, size: int, scan: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--probe", model_name, str(frames), str(size), scan, "--repeats", str(repeats)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a MedVSR or VSRM model (default medvsr; test_medvsr with --quick)")
    parser.add_argument("--quick", action="store_true", help="one 3-frame 32x32 clip, first forwards only")
    parser.add_argument("--size", type=int, default=64, help="LR frame side (default 64)")
    parser.add_argument("--frames", type=int, nargs="+", default=[7, 14, 28])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--no-scan-bound", action="store_true", help="also time the model with a zero-cost scan")
    parser.add_argument("--probe", nargs=4, metavar=("MODEL", "FRAMES", "SIZE", "SCAN"), help="internal")
    args = parser.parse_args()
    if args.probe:
        name, frames, size, scan = args.probe
        print(json.dumps(_probe(name, int(frames), int(size), scan, args.repeats)))
        return
    import torch

    if args.quick:
        model, frames_list, size, repeats = args.model or "test_medvsr", [3], 32, 0
    else:
        model, frames_list, size, repeats = args.model or "medvsr", args.frames, args.size, args.repeats
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, fp32, batch 1, load average {os.getloadavg()[0]:.1f}")
    bound = args.no_scan_bound and not args.skip_sequential
    extra = (" no-scan ms/frame | largest possible speed-up |", "---|---|") if bound else ("", "")
    print("| model | clip | scan | library ms/frame | sequential ms/frame | speed-up | library peak MB | "
          f"sequential peak MB |{extra[0]}")
    print(f"|---|---|---|---|---|---|---|---|{extra[1]}")
    for frames in frames_list:
        library = _measure(model, frames, size, "library", repeats)
        row = f"| {model} | {frames}x{size}x{size} | {library['op']} | {library['ms_per_frame']:.0f} |"
        if args.skip_sequential:
            print(f"{row} - | - | {library['peak_mb']:.0f} | - |", flush=True)
            continue
        sequential = _measure(model, frames, size, "sequential", 0)
        row += (f" {sequential['ms_per_frame']:.0f} | {sequential['ms_per_frame'] / library['ms_per_frame']:.2f}x |"
                f" {library['peak_mb']:.0f} | {sequential['peak_mb']:.0f} |")
        if bound:
            free = _measure(model, frames, size, "free", repeats)
            row += f" {free['ms_per_frame']:.0f} | {sequential['ms_per_frame'] / free['ms_per_frame']:.2f}x |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
