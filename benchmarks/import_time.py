"""Import time of ssmblocks against ``import torch``: ``python -X importtime`` in fresh interpreters, median of runs.

    python benchmarks/import_time.py                              # this checkout, 7 runs of each
    python benchmarks/import_time.py --baseline /path/to/checkout # and another checkout (e.g. before) side by side

Each run is a new interpreter, ``python -X importtime -c "import <module>"``, started in a neutral folder with
``PYTHONPATH`` set to the checkout (so that the checkout's ssmblocks loads, which the script checks); the runs of
the different rows are interleaved (torch, this, baseline, torch, ...) so that a load change on the machine hits
every row alike. Reported per row: the median over the runs of the module's cumulative import time as
``-X importtime`` counts it (for ssmblocks this includes the torch it imports), the median wall time of the whole
interpreter, the ratio of the two to ``import torch``, and whether ``torch._dynamo`` was imported. Bytecode is cached
as for an installed package (``PYTHONDONTWRITEBYTECODE`` is dropped; the cache goes to a temporary
``PYTHONPYCACHEPREFIX``, filled by one warm-up run per row), so no row pays for compiling its sources.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

HERE = Path(__file__).resolve().parents[1]
# bytecode as an installed package has it (compiled once, then cached), kept out of the checkouts
_PYCACHE = str(Path(tempfile.gettempdir()) / "ssmblocks-import-time-pycache")


def _one_run(module: str, checkout: Path | None) -> tuple[float, float, bool]:
    """(cumulative import seconds of ``module``, wall seconds of the interpreter, whether torch._dynamo loaded)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    start = time.perf_counter()
    # run from a neutral folder: ``-c`` puts the working directory ahead of PYTHONPATH
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}; print({module}.__file__)"],
                            capture_output=True, text=True, env=env, check=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    if checkout is not None and not Path(result.stdout.strip()).is_relative_to(checkout):
        raise RuntimeError(f"{module} was imported from {result.stdout.strip()}, not from {checkout}")
    cumulative, dynamo = None, False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumul, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        dynamo = dynamo or name == "torch._dynamo"
        if name == module:                      # the top-level entry
            cumulative = int(cumul) / 1e6
    if cumulative is None:
        raise RuntimeError(f"no import-time line for {module}:\n{result.stderr[-2000:]}")
    return cumulative, wall, dynamo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another checkout whose ssmblocks to time beside this one")
    args = parser.parse_args()
    rows = {"import torch": ("torch", None), "import ssmblocks (this checkout)": ("ssmblocks", HERE)}
    if args.baseline is not None:
        rows["import ssmblocks (baseline)"] = ("ssmblocks", args.baseline.resolve())
    results: dict[str, list[tuple[float, float, bool]]] = {row: [] for row in rows}
    for module, checkout in rows.values():      # a warm-up run writes the bytecode cache
        _one_run(module, checkout)
    for _ in range(args.runs):
        for row, (module, checkout) in rows.items():
            results[row].append(_one_run(module, checkout))
    import torch

    torch_import = statistics.median(r[0] for r in results["import torch"])
    torch_wall = statistics.median(r[1] for r in results["import torch"])
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, Python {sys.version.split()[0]}, {args.runs} runs each"
          f"{f', baseline {args.baseline}' if args.baseline else ''}\n")
    print("| import | -X importtime s (median) | vs torch | interpreter wall s (median) | vs torch | torch._dynamo |")
    print("|---|---|---|---|---|---|")
    for row, runs in results.items():
        cumulative = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        dynamo = "loaded" if any(r[2] for r in runs) else "not loaded"
        print(f"| {row} | {cumulative:.3f} | {cumulative / torch_import:.2f}x | {wall:.3f} | "
              f"{wall / torch_wall:.2f}x | {dynamo} |")


if __name__ == "__main__":
    main()
