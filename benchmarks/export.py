"""ONNX export: export time, file size, and onnxruntime CPU latency against the same model in PyTorch (eager).

    python benchmarks/export.py                               # dvmsr (bundled weights) and test_mambair_sr at 64x64
    python benchmarks/export.py --models dvmsr --size 128 --repeats 5

Each model is exported with ``ssmblocks.export.export_onnx`` (scans decomposed into standard operators) at a fixed
size; both runtimes use the machine's threads; latency is the median of --repeats runs after one warm-up, and the
largest absolute difference between the two outputs is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from _machine import cpu_model

import ssmblocks
from ssmblocks._timing import median_ms
from ssmblocks.export import export_onnx


def _model(name: str) -> torch.nn.Module:
    cfg = ssmblocks.get_pretrained_cfg(name)
    return ssmblocks.create_model(name, pretrained=cfg.has_weights).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["dvmsr", "test_mambair_sr"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads; "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; input {args.size}x{args.size}")
    print("| model | export s | ONNX MB | onnxruntime ms | PyTorch eager ms | ratio | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        model = _model(name)
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(1, ssmblocks.contract_of(model).in_chans, args.size, args.size, generator=generator)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            path = export_onnx(model, Path(tmp) / f"{name}.onnx", x)
            export_s = time.perf_counter() - start
            size_mb = path.stat().st_size / 1e6
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        ort_out = session.run(["output"], feed)[0]
        ort_ms = median_ms(lambda s=session, f=feed: s.run(["output"], f), args.repeats)
        with torch.inference_mode():
            torch_out = model(x).numpy()
            torch_ms = median_ms(lambda m=model, inp=x: m(inp), args.repeats)
        diff = float(np.abs(ort_out - torch_out).max())
        print(f"| {name} | {export_s:.1f} | {size_mb:.1f} | {ort_ms:.1f} | {torch_ms:.1f} | {ort_ms / torch_ms:.2f} | "
              f"{diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
