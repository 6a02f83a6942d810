"""``python -m ssmblocks``: run an SSM layer's scan on the default device and compare with the sequential reference.

Until the model zoo lands this is the smoke test of an install: it prints which scan backend was chosen, how
fast it is against the sequential loop that mamba_ssm's ``selective_scan_ref`` (and the official code on CPU) uses,
and how far apart their outputs are.
"""

from __future__ import annotations

import argparse

import torch

from ssmblocks._timing import median_ms
from ssmblocks.ops import get_backend, selective_scan_fn, selective_scan_ref


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48, help="feature map side; the scan length is size * size")
    parser.add_argument("--channels", type=int, default=96, help="SSM channels per path (d_inner)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    paths, dstate, length = 4, 16, args.size * args.size
    dim = paths * args.channels
    # an SS2D-shaped call: 4 scan paths stacked on the channel axis, B/C grouped per path
    u = torch.randn(1, dim, length)
    delta = torch.randn(1, dim, length) * 0.5
    A = -torch.arange(1, dstate + 1.0).repeat(dim, 1)
    B, C = torch.randn(1, paths, dstate, length), torch.randn(1, paths, dstate, length)
    D, bias = torch.ones(dim), torch.full((dim,), -2.0)
    inputs = (u, delta, A, B, C, D, None, bias)

    with torch.inference_mode():
        out = selective_scan_fn(*inputs, delta_softplus=True)
        ref = selective_scan_ref(*inputs, delta_softplus=True)
        fast_ms = median_ms(lambda: selective_scan_fn(*inputs, delta_softplus=True), args.repeats)
        ref_ms = median_ms(lambda: selective_scan_ref(*inputs, delta_softplus=True), max(1, args.repeats // 2))

    print(f"ssmblocks selective scan, batch 1, dim {dim} ({paths} paths x {args.channels}), N {dstate}, L {length}")
    print(f"backend: {get_backend('selective_scan', u.device)}   threads: {torch.get_num_threads()}")
    print(f"time: {fast_ms:.1f} ms   sequential reference: {ref_ms:.1f} ms   speed-up: {ref_ms / fast_ms:.0f}x")
    print(f"max |out - reference|: {(out - ref).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
