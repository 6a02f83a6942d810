"""Full-model CPU benchmark: forward time, model GFLOP/s against this machine's sgemm, page faults, memory, compile.

    python benchmarks/models.py                   # the table in docs/benchmarks.md
    python benchmarks/models.py --quick           # the light model at 32x32 only, to check the script
    python benchmarks/models.py --no-compile      # eager only
    python benchmarks/models.py --no-compile --no-train --cases mambair_light_x4:128 dvmsr:128   # chosen rows

For each (model, input) a fresh subprocess builds the model (random weights, eval, batch 1, float32) and measures:
the FLOPs of one forward (torch.utils.flop_counter.FlopCounterMode: convolutions and matmuls; the selective scan
is not counted), the median forward time in torch.inference_mode after a warm-up, hence GFLOP/s and its ratio to
the 2048x2048 sgemm measured by the parent process in the same run; the share of the forward's CPU time spent in
the kernel (``sys``: page faults of fresh buffers, ``docs/benchmarks.md``) and the minor page faults per forward;
the peak resident memory of the process after the eager runs (VmHWM); then the same forward under torch.compile
(a compile error is printed in the table, not raised). A training step (forward + L1 loss + backward + Adam) of
the light model at 64x64, batch 4, is measured the same way. ``SSMBLOCKS_KEEP_FREED_MB`` reaches the subprocesses
(``0`` measures the default glibc malloc behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _machine import cpu_model
from _memory import status_kb

CASES = [("mambair_sr_x4", 64), ("mambair_light_x4", 128), ("mambair_light_x4", 256), ("mambair_light_x4", 384)]
QUICK = [("mambair_light_x4", 32)]
TRAIN = ("mambair_light_x4", 64, 4)  # model, input size, batch
SGEMM_N = 2048


def _cpu_seconds() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def _timed(fn, repeats: int) -> dict:
    """Median wall ms of ``repeats`` calls of fn (after one warm-up call) with the sys share and faults per call."""
    from ssmblocks._timing import median_ms

    fn()
    user0, sys0, faults0 = _cpu_seconds()
    ms = median_ms(fn, repeats, warmup=False)
    user1, sys1, faults1 = _cpu_seconds()
    cpu = (user1 - user0) + (sys1 - sys0)
    return {"ms": ms, "sys_share": (sys1 - sys0) / cpu if cpu else 0.0, "faults": (faults1 - faults0) / repeats}


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _compiled(fn_factory, repeats: int) -> dict:
    """Times the compiled forward; on failure returns the error's first line instead."""
    start = time.perf_counter()
    try:
        fn = fn_factory()
        fn()
        compile_s = time.perf_counter() - start
        return {**_timed(fn, repeats), "compile_s": compile_s}
    except Exception as err:  # any compile failure is reported in the table, not raised
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return {"error": f"{type(err).__name__}: {first[:80]}"}


def _probe_forward(name: str, size: int, repeats: int, compile_: bool) -> dict:
    import torch

    import ssmblocks

    torch.manual_seed(0)
    model = ssmblocks.create_model(name).eval()
    x = torch.rand(1, 3, size, size)

    def forward():
        with torch.inference_mode():
            model(x)

    result = {"flops": _flops(forward), **_timed(forward, repeats), "peak_mb": status_kb("VmHWM") / 1024}
    if compile_:
        def factory():
            compiled = torch.compile(model)

            def run():
                with torch.inference_mode():
                    compiled(x)
            return run
        result["compiled"] = _compiled(factory, repeats)
    return result


def _probe_train(name: str, size: int, batch: int, repeats: int) -> dict:
    import torch

    import ssmblocks

    torch.manual_seed(0)
    model = ssmblocks.create_model(name).train()
    x = torch.rand(batch, 3, size, size)
    target = torch.rand(batch, 3, size * model.upscale, size * model.upscale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(x), target)
        loss.backward()
        optimizer.step()

    def forward_backward():
        torch.nn.functional.l1_loss(model(x), target).backward()

    return {"flops": _flops(forward_backward), **_timed(step, repeats), "peak_mb": status_kb("VmHWM") / 1024}


def _subprocess(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:100]}
    return json.loads(out.stdout.splitlines()[-1])


def _sgemm_gflops(repeats: int) -> float:
    import torch

    from ssmblocks._timing import median_ms

    a, b = torch.rand(SGEMM_N, SGEMM_N), torch.rand(SGEMM_N, SGEMM_N)
    ms = median_ms(lambda: torch.mm(a, b), max(repeats, 5))
    return 2 * SGEMM_N**3 / (ms * 1e-3) / 1e9


def _row_cells(res: dict, sgemm: float, pixels: int) -> list[str]:
    gflops = res["flops"] / (res["ms"] * 1e-3) / 1e9
    return [f"{res['ms']:.0f}", f"{res['ms'] * 1e3 / pixels:.2f}", f"{res['flops'] / 1e9:.1f}", f"{gflops:.1f}",
            f"{100 * gflops / sgemm:.0f}%", f"{100 * res['sys_share']:.0f}%", f"{res['faults']:.0f}",
            f"{res['peak_mb']:.0f}"]


def _case(text: str) -> tuple[str, int]:
    """'MODEL:SIZE' -> (MODEL, SIZE)."""
    name, _, size = text.rpartition(":")
    if not name or not size.isdigit():
        raise argparse.ArgumentTypeError(f"a case is MODEL:SIZE, e.g. mambair_light_x4:128, got {text!r}")
    return name, int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the light model at 32x32 only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--cases", nargs="+", type=_case, metavar="MODEL:SIZE",
                        help="the (model, square input side) rows to measure instead of the default table")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step measurement")
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "SIZE"), help="internal")
    parser.add_argument("--probe-train", nargs=3, metavar=("MODEL", "SIZE", "BATCH"), help="internal")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(_probe_forward(args.probe[0], int(args.probe[1]), args.repeats, not args.no_compile)))
        return
    if args.probe_train:
        name, size, batch = args.probe_train
        print(json.dumps(_probe_train(name, int(size), int(batch), args.repeats)))
        return
    import torch

    sgemm = _sgemm_gflops(args.repeats)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}; float32; SSMBLOCKS_KEEP_FREED_MB="
          f"{os.environ.get('SSMBLOCKS_KEEP_FREED_MB', 'unset (default 1024)')}; "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    print(f"sgemm {SGEMM_N}x{SGEMM_N}: {sgemm:.1f} GFLOP/s (median of {max(args.repeats, 5)}, this run)\n")
    print("| model | input | forward ms | us / pixel | GFLOP | GFLOP/s | of sgemm | sys share | faults / fwd | "
          "peak RSS MB | compiled ms | compiled of sgemm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    per_pixel = {}
    for name, size in QUICK if args.quick else args.cases or CASES:
        flags = ["--repeats", str(args.repeats)] + (["--no-compile"] if args.no_compile else [])
        res = _subprocess(["--probe", name, str(size), *flags])
        if "error" in res:
            print(f"| {name} | {size}x{size} | failed: {res['error']} |" + " |" * 9, flush=True)
            continue
        cells = _row_cells(res, sgemm, size * size)
        per_pixel[(name, size)] = res["ms"] / (size * size)
        comp = res.get("compiled")
        if comp is None:
            cells += ["not run", "-"]
        elif "error" in comp:
            cells += [f"failed: {comp['error']}", "-"]
        else:
            gflops = res["flops"] / (comp["ms"] * 1e-3) / 1e9
            cells += [f"{comp['ms']:.0f} ({comp['compile_s']:.0f} s compile)", f"{100 * gflops / sgemm:.0f}%"]
        print(f"| {name} | {size}x{size} | " + " | ".join(cells) + " |", flush=True)

    if not (args.quick or args.no_train):
        name, size, batch = TRAIN
        res = _subprocess(["--probe-train", name, str(size), str(batch), "--repeats", str(args.repeats)])
        print(f"\nTraining step ({name}, {batch}x3x{size}x{size}, forward + L1 + backward + Adam; FLOPs of forward "
              "and backward):\n")
        print("| step ms | GFLOP | GFLOP/s | of sgemm | sys share | faults / step | peak RSS MB |")
        print("|---|---|---|---|---|---|---|")
        if "error" in res:
            print(f"| failed: {res['error']} | | | | | | |")
        else:
            cells = _row_cells(res, sgemm, batch * size * size)
            print("| " + " | ".join(cells[:1] + cells[2:]) + " |")
        light = "mambair_light_x4"
        if (light, 384) in per_pixel and (light, 128) in per_pixel:
            ratio = per_pixel[(light, 384)] / per_pixel[(light, 128)]
            print(f"\n{light}: time per pixel at 384x384 / at 128x128 = {ratio:.2f}")


if __name__ == "__main__":
    main()
