"""Deformable convolution on CPU at MedVSR's alignment shapes: the native im2col kernel against the pure-PyTorch
path and against a plain ``F.conv2d`` of the same shape (what a deformable conv cannot beat: it does the same
matrix product plus the bilinear sampling).

    python benchmarks/deform_conv.py                      # 64x64 map, mid 64 (released MedVSR), 1 thread
    python benchmarks/deform_conv.py --size 128 --mid 32 --threads 2

One alignment step of ``SecondOrderDeformableAlignment`` (its offset head is timed too): x (1, 2 mid, S, S),
16 offset groups, 3x3 kernel, padding 1, offsets of a few pixels and a sigmoid mask. Times are process CPU time
(``resource.getrusage``, user + system) per call, the median of --repeats calls after one warm-up, so other jobs on
a shared machine do not inflate them; with one thread CPU time is the wall time an idle core would take. Forward in
``torch.inference_mode``; "train step" is forward + backward to every input (x, offset, mask, weight, bias).
"""

from __future__ import annotations

import argparse
import resource
import statistics

import torch
import torch.nn.functional as F
from _machine import cpu_model

from ssmblocks.ops import deform_conv2d, use_backend


def _cpu_ms(fn, repeats: int) -> float:
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    fn()
    times = []
    for _ in range(repeats):
        start = cpu()
        fn()
        times.append((cpu() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--mid", type=int, default=64)
    parser.add_argument("--groups", type=int, default=16, help="offset (deformable) groups")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size, c_in, c_out, taps = args.size, 2 * args.mid, args.mid, 9 * args.groups
    x = torch.rand(1, c_in, size, size)
    offset = torch.randn(1, 2 * taps, size, size) * 3
    mask = torch.sigmoid(torch.randn(1, taps, size, size))
    weight = torch.randn(c_out, c_in, 3, 3) * 0.05
    bias = torch.zeros(c_out)

    def forward(backend: str):
        def run():
            with torch.inference_mode(), use_backend("deform_conv", backend):
                deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)
        return run

    def train_step(backend: str):
        leaves = [t.clone().requires_grad_() for t in (x, offset, mask, weight, bias)]

        def run():
            with use_backend("deform_conv", backend):
                xx, oo, mm, ww, bb = leaves
                deform_conv2d(xx, oo, ww, bb, 1, 1, 1, mm).sum().backward()
        return run

    def conv():
        with torch.inference_mode():
            F.conv2d(x, weight, bias, padding=1)

    def conv_train():
        xx, ww = x.clone().requires_grad_(), weight.clone().requires_grad_()
        F.conv2d(xx, ww, bias, padding=1).sum().backward()

    # the offset head that feeds the deformable conv in the same step (SecondOrderDeformableAlignment.conv_offset)
    mid = args.mid
    head = torch.nn.Sequential(torch.nn.Conv2d(3 * mid + 4, mid, 3, padding=1), torch.nn.LeakyReLU(0.1),
                               torch.nn.Conv2d(mid, mid, 3, padding=1), torch.nn.LeakyReLU(0.1),
                               torch.nn.Conv2d(mid, mid, 3, padding=1), torch.nn.LeakyReLU(0.1),
                               torch.nn.Conv2d(mid, 3 * taps, 3, padding=1))
    head_in = torch.rand(1, 3 * mid + 4, size, size)

    def head_forward():
        with torch.inference_mode():
            head(head_in)

    def head_train():
        head(head_in.clone().requires_grad_()).sum().backward()

    print(f"{cpu_model()}; torch {torch.__version__}; {torch.get_num_threads()} thread(s); fp32; "
          f"x (1, {c_in}, {size}, {size}) -> {c_out} channels, 3x3, {args.groups} offset groups; "
          f"CPU ms per call, median of {args.repeats}")
    print("| op | forward ms | train step ms |\n|---|---|---|")
    rows = [
        ("deform_conv2d, native im2col", forward("native"), train_step("native")),
        ("deform_conv2d, pure PyTorch", forward("torch"), train_step("torch")),
        (f"F.conv2d {c_in}->{c_out} 3x3 (same shape)", conv, conv_train),
        (f"offset head: 4 convs {3 * mid + 4}->{mid}->{mid}->{mid}->{3 * taps}", head_forward, head_train),
    ]
    for name, fwd, step in rows:
        print(f"| {name} | {_cpu_ms(fwd, args.repeats):.1f} | {_cpu_ms(step, args.repeats):.1f} |", flush=True)


if __name__ == "__main__":
    main()
