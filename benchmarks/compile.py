"""torch.compile on whole models: compile time, and compiled vs eager forward time.

    python benchmarks/compile.py              # mambair_light_x4 at 64x64 and mambair_sr_x4 at 48x48
    python benchmarks/compile.py --quick      # test_mambair_light at 32x32

Each model runs in a fresh subprocess with an empty inductor cache (a cold compile): eager forward, median of
--repeats runs after a warm-up; ``torch.compile(model, fullgraph=True)`` (inductor, static shapes); the first
compiled call (compile time: tracing, lowering and C++ code generation); then the compiled forward, median of
--repeats. Batch 1, random weights, ``torch.no_grad``, float32. The scan and the path gathers are custom ops
(``ssmblocks::selective_scan``, ``ssmblocks::path_gather``) that inductor calls as they are; it fuses the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))        # this checkout's ssmblocks

CASES = [("mambair_light_x4", 64), ("mambair_sr_x4", 48)]
QUICK = [("test_mambair_light", 32)]


def _probe(model_name: str, size: int, repeats: int) -> dict:
    """Subprocess side: eager time, cold compile time, compiled time and the largest difference of the outputs."""
    import torch

    import ssmblocks
    from ssmblocks._timing import median_ms

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        eager_ms = median_ms(lambda: model(x), repeats)
        compiled = torch.compile(model, fullgraph=True)
        start = time.perf_counter()
        out = compiled(x)
        compile_s = time.perf_counter() - start
        compiled_ms = median_ms(lambda: compiled(x), repeats)
    return {"eager_ms": eager_ms, "compile_s": compile_s, "compiled_ms": compiled_ms,
            "max_diff": (out - expected).abs().max().item()}


def _measure(model_name: str, size: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        cmd = [sys.executable, __file__, "--probe", model_name, str(size), "--repeats", str(repeats)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "SIZE"), help="internal")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(_probe(args.probe[0], int(args.probe[1]), args.repeats)))
        return
    import torch

    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, batch 1")
    print("| model | input | eager ms | compile s (cold) | compiled ms | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, size in QUICK if args.quick else CASES:
        r = _measure(name, size, args.repeats)
        print(f"| {name} | {size}x{size} | {r['eager_ms']:.0f} | {r['compile_s']:.0f} | {r['compiled_ms']:.0f} | "
              f"{r['eager_ms'] / r['compiled_ms']:.2f}x | {r['max_diff']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
