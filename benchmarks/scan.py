"""Selective-scan benchmark: backend x size x {forward ms, forward+backward ms, peak extra memory}.

    python benchmarks/scan.py                 # the sizes recorded in docs/benchmarks.md
    python benchmarks/scan.py --quick         # a small size only, to check the script
    python benchmarks/scan.py --cpu-time      # one thread, the calling thread's CPU time (for a shared machine)

Every backend runs in this one process, side by side, on the same inputs. The baseline is the sequential loop
(``selective_scan_ref``: mamba_ssm's ``selective_scan_ref`` semantics, what the official code runs without CUDA).
Times are medians of --repeats runs after a warm-up. Peak extra memory is measured in a fresh subprocess per
(backend, size) doing one forward: its peak resident set (Linux VmHWM) minus the resident set just before the
call, so it counts every allocation: output, workspaces, intermediates (a fresh process, because freed heap memory
stays resident and would hide the next call's allocations).
Configuration as in SS2D: one group, D, delta_bias, softplus.
Run it on a quiet machine: another busy process on 2 cores slows threaded kernels several-fold. On a shared
machine, ``--cpu-time`` runs one thread and measures that thread's CPU time (``time.thread_time``: time the
process was descheduled does not count), which compares kernels fairly while the wall clock cannot.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys

import torch
from _machine import cpu_model
from _memory import peak_extra_mb

from ssmblocks._timing import median_ms
from ssmblocks.ops import selective_scan_fn, selective_scan_ref, use_backend

SIZES = [(4, 360, 16, 4096), (4, 120, 16, 16384), (4, 120, 16, 65536)]
QUICK_SIZES = [(2, 64, 16, 1024)]
# Runs skipped on purpose, with the reason printed in the table.
SKIP = {
    ("sequential", "fwd+bwd"): "autograd through the loop is O(L^2): > 5 min at the smallest size",
}
MAX_TORCH_BACKWARD_ELEMENTS = 1 << 27  # batch*dim*L*N above which the PyTorch path's saved tensors exceed ~16 GB


def _memory_probe(backend: str, size: tuple[int, ...]) -> None:
    """Subprocess side: one forward, print the peak resident set above the one before the call, in MB."""
    kwargs = _inputs(*size)
    if backend == "native":
        from ssmblocks.ops._native import native_library

        native_library()  # load the library before measuring
    print(peak_extra_mb(lambda: _forward(backend, kwargs)))


def _peak_extra_mb(backend: str, size: tuple[int, ...]) -> float:
    cmd = [sys.executable, __file__, "--memory-probe", backend, *map(str, size)]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()[-1])


def _inputs(batch, dim, dstate, length):
    g = torch.Generator().manual_seed(0)
    return {
        "u": torch.randn(batch, dim, length, generator=g),
        "delta": torch.randn(batch, dim, length, generator=g) * 0.5,
        "A": -torch.arange(1, dstate + 1.0).repeat(dim, 1),
        "B": torch.randn(batch, 1, dstate, length, generator=g),
        "C": torch.randn(batch, 1, dstate, length, generator=g),
        "D": torch.ones(dim),
        "delta_bias": torch.full((dim,), -1.0),
    }


def _forward(backend, kwargs):
    fn = selective_scan_ref if backend == "sequential" else selective_scan_fn
    with torch.no_grad(), use_backend("selective_scan", "auto" if backend == "sequential" else backend):
        fn(**kwargs, delta_softplus=True)


def _forward_backward(backend, kwargs, grad):
    leaves = {k: v.clone().requires_grad_() for k, v in kwargs.items()}
    fn = selective_scan_ref if backend == "sequential" else selective_scan_fn
    with use_backend("selective_scan", "auto" if backend == "sequential" else backend):
        fn(**leaves, delta_softplus=True).backward(grad)


def _skip_reason(backend, mode, size):
    if (backend, mode) in SKIP:
        return SKIP[(backend, mode)]
    batch, dim, dstate, length = size
    if backend == "torch" and mode == "fwd+bwd" and batch * dim * length * dstate > MAX_TORCH_BACKWARD_ELEMENTS:
        return "saved tensors of the PyTorch path exceed this machine's memory"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size (checks that the script runs)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default="sequential,torch,native")
    parser.add_argument("--cpu-time", action="store_true", help="one thread, its CPU time instead of wall time")
    parser.add_argument("--memory-probe", nargs=5, metavar=("BACKEND", "BATCH", "DIM", "N", "L"), help="internal")
    args = parser.parse_args()
    if args.memory_probe:
        backend, *size = args.memory_probe
        _memory_probe(backend, tuple(int(v) for v in size))
        return
    backends = args.backends.split(",")
    if args.cpu_time:
        torch.set_num_threads(1)

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}, "
          f"{'CPU time of the calling thread' if args.cpu_time else 'wall time'}")
    print(f"SSMBLOCKS_KEEP_FREED_MB={os.environ.get('SSMBLOCKS_KEEP_FREED_MB', 'unset (default 1024)')}")
    print("| size (batch, dim, N, L) | backend | forward ms | fwd+bwd ms | fwd peak extra MB | fwd speed-up vs "
          "sequential | fwd+bwd speed-up vs torch | fwd+bwd page faults / call |")
    print("|---|---|---|---|---|---|---|---|")
    for size in QUICK_SIZES if args.quick else SIZES:
        batch, dim, dstate, length = size
        kwargs = _inputs(batch, dim, dstate, length)
        grad = torch.randn(batch, dim, length)
        results = {}
        for backend in backends:
            repeats = max(1, args.repeats // 3) if backend == "sequential" else args.repeats
            fwd = median_ms(lambda b=backend, kw=kwargs: _forward(b, kw), repeats, cpu_time=args.cpu_time)
            mem = _peak_extra_mb(backend, size)
            reason = _skip_reason(backend, "fwd+bwd", size)
            fwdbwd, faults = None, None
            if reason is None:
                n_fb = max(1, repeats // 2)
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                fwdbwd = median_ms(lambda b=backend, kw=kwargs, g=grad: _forward_backward(b, kw, g), n_fb,
                                   cpu_time=args.cpu_time)
                faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (n_fb + 1)
            results[backend] = (fwd, fwdbwd, mem, reason, faults)
        for backend, (fwd, fwdbwd, mem, reason, faults) in results.items():
            seq = results.get("sequential", (None,))[0]
            torch_fb = results.get("torch", (None, None))[1]
            speed = f"{seq / fwd:.0f}x" if seq else "-"
            speed_fb = f"{torch_fb / fwdbwd:.1f}x" if torch_fb and fwdbwd else "-"
            fb = f"{fwdbwd:.1f}" if fwdbwd is not None else f"not run ({reason})"
            fl = f"{faults:.0f}" if faults is not None else "-"
            print(f"| {size} | {backend} | {fwd:.1f} | {fb} | {mem:.0f} | {speed} | {speed_fb} | {fl} |")
        out_mb = batch * dim * length * 4 / 2**20
        print(f"|  | (output tensor size: {out_mb:.0f} MB) | | | | | | |")


if __name__ == "__main__":
    main()
