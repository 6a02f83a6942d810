"""SSD-scan (Mamba-2) benchmark at MedVSR's shapes: backend x {forward ms, forward+backward ms}, one thread, CPU time.

    python benchmarks/ssd_scan.py             # MedVSR's two mixers on a 64x64 frame
    python benchmarks/ssd_scan.py --quick     # fewer repeats, to check the script

MedVSR (released, mid_channels 64) scans 16x16 windows, one sequence of L = 256 tokens each: a 64x64 frame is a
batch of 16 windows. Its CSSB cross mixer scans x (16, 256, 4 heads, headdim 16) and its ISSR Mamba-2 mixer
(output 'cat', half the width) x (16, 256, 2, 16); both with one group of B, C (d_state 16), D per head, dt_bias
and softplus, no z. Backends: ``native`` (the SSD as one selective scan on the C++ kernel), ``torch`` (chunked SSD,
chunk 256 as MedVSR), ``reference`` (the sequential loop). The row ``kernel alone`` is the native selective scan
called on inputs already in its (batch, heads*headdim, L) layout: the difference to ``native`` is the cost of the
layout conversion around the kernel.

Everything runs in this one process on one thread and times the calling thread's CPU time (``time.thread_time``,
median of --repeats calls after a warm-up), so a shared, loaded machine still gives comparable ratios.
"""

from __future__ import annotations

import argparse
import os

import torch
from _machine import cpu_model

from ssmblocks._timing import median_ms
from ssmblocks.ops import selective_scan_fn, ssd_scan, use_backend

SHAPES = {"CSSB cross mixer": (16, 256, 4, 16, 1, 16), "ISSR Mamba-2 mixer": (16, 256, 2, 16, 1, 16)}
CHUNK = 256
BACKENDS = ("native", "torch", "reference")


def _ssd_inputs(batch, length, heads, headdim, groups, dstate) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(batch, length, heads, headdim, generator=g),
        "dt": torch.randn(batch, length, heads, generator=g) * 0.5,
        "A": -torch.arange(1, heads + 1.0),
        "B": torch.randn(batch, length, groups, dstate, generator=g),
        "C": torch.randn(batch, length, groups, dstate, generator=g),
        "D": torch.ones(heads),
        "dt_bias": torch.full((heads,), -1.0),
    }


def _scan_inputs(batch, length, heads, headdim, groups, dstate) -> dict[str, torch.Tensor]:
    """The same problem in the selective scan's layouts (channels = heads * headdim)."""
    g = torch.Generator().manual_seed(0)
    dim = heads * headdim
    return {
        "u": torch.randn(batch, dim, length, generator=g),
        "delta": torch.randn(batch, dim, length, generator=g) * 0.5,
        "A": -torch.arange(1, heads + 1.0).repeat_interleave(headdim)[:, None].expand(dim, dstate).contiguous(),
        "B": torch.randn(batch, groups, dstate, length, generator=g),
        "C": torch.randn(batch, groups, dstate, length, generator=g),
        "D": torch.ones(dim),
        "delta_bias": torch.full((dim,), -1.0),
    }


def _timings(fn, kwargs, grad, repeats: int, with_backward: bool) -> tuple[float, float | None]:
    with torch.no_grad():
        fwd = median_ms(lambda: fn(**kwargs), repeats, cpu_time=True)
    if not with_backward:
        return fwd, None

    def forward_backward():
        leaves = {k: v.clone().requires_grad_() for k, v in kwargs.items()}
        fn(**leaves).backward(grad)

    return fwd, median_ms(forward_backward, max(1, repeats // 2), cpu_time=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (checks that the script runs)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    torch.set_num_threads(1)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread, fp32, "
          f"CPU time of the calling thread, median of {repeats}")
    print("| mixer (batch, L, heads, headdim, groups, N) | backend | forward ms | fwd+bwd ms | forward vs torch | "
          "fwd+bwd vs torch |")
    print("|---|---|---|---|---|---|")
    for name, shape in SHAPES.items():
        grad = torch.randn(shape[:4])
        rows = {}
        for backend in BACKENDS:
            def run(backend=backend, **kw):
                with use_backend("ssd_scan", backend):
                    return ssd_scan(**kw, chunk_size=CHUNK, dt_softplus=True)

            # autograd through the sequential loop is slow and not a baseline anyone trains with
            rows[backend] = _timings(run, _ssd_inputs(*shape), grad, repeats, backend != "reference")
        with use_backend("selective_scan", "native"):
            rows["kernel alone"] = _timings(lambda **kw: selective_scan_fn(**kw, delta_softplus=True),
                                            _scan_inputs(*shape), grad.flatten(2).transpose(1, 2), repeats, True)
        torch_fwd, torch_fb = rows["torch"]
        for backend, (fwd, fb) in rows.items():
            fb_text = "-" if fb is None else f"{fb:.2f}"
            fb_ratio = "-" if fb is None else f"{torch_fb / fb:.2f}x"
            print(f"| {name} {shape} | {backend} | {fwd:.2f} | {fb_text} | {torch_fwd / fwd:.2f}x | {fb_ratio} |",
                  flush=True)


if __name__ == "__main__":
    main()
