"""Inference with and without keeping freed memory (ssmblocks/ops/_memory.py): user and kernel CPU time and
page faults per forward.

    python benchmarks/keep_freed_memory.py                       # mambair_light_x4 at 128, 256, 384; sr_x4 at 64
    python benchmarks/keep_freed_memory.py --cases mambair_light_x4:256 --threads 2

Each (model, size, setting) runs in a fresh subprocess with SSMBLOCKS_KEEP_FREED_MB=0 (off) or the default (on):
one warm-up forward in
torch.inference_mode, then the median (by CPU time) of --repeats forwards, measured with getrusage. CPU time (user +
system) is less disturbed by other processes on a shared machine than wall time; both are printed. Random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASES = ["mambair_light_x4:128", "mambair_light_x4:256", "mambair_light_x4:384", "mambair_sr_x4:64"]


def _probe(model_name: str, size: int, repeats: int) -> dict:
    import resource
    import time

    import torch

    import ssmblocks

    torch.manual_seed(0)
    model = ssmblocks.create_model(model_name).eval()
    x = torch.rand(1, 3, size, size)
    rows = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            model(x)
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
            rows.append({"user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime,
                         "wall_s": wall, "faults": after.ru_minflt - before.ru_minflt})
    return sorted(rows, key=lambda r: r["user_s"] + r["sys_s"])[len(rows) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=CASES, metavar="MODEL:SIZE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "SIZE"), help="internal")
    args = parser.parse_args()
    if args.probe:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(_probe(args.probe[0], int(args.probe[1]), args.repeats)))
        return
    print(f"{os.cpu_count()} cores, {args.threads} thread(s), fp32, batch 1, median of {args.repeats}")
    print("| model | input | keep freed memory | user s | system s | CPU s | wall s | page faults |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        name, size = case.split(":")
        for keep in (False, True):
            cmd = [sys.executable, __file__, "--probe", name, size, "--threads", str(args.threads),
                   "--repeats", str(args.repeats)]
            env = {k: v for k, v in os.environ.items() if k != "SSMBLOCKS_KEEP_FREED_MB"}
            if not keep:
                env["SSMBLOCKS_KEEP_FREED_MB"] = "0"
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.splitlines()[-1]
            r = json.loads(out)
            print(f"| {name} | {size}x{size} | {'on' if keep else 'off'} | {r['user_s']:.2f} | "
                  f"{r['sys_s']:.2f} | {r['user_s'] + r['sys_s']:.2f} | {r['wall_s']:.2f} | {r['faults']} |",
                  flush=True)


if __name__ == "__main__":
    main()
