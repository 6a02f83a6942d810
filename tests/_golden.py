"""The golden reference data (outputs of the official code; the golden README says how each case was made) and the
comparison every parity test makes with it.

A case ``STEM`` is the files ``STEM.json`` (metadata), ``STEM.safetensors`` (float64 ``input`` and ``output``...)
and, for most cases, ``STEM.pth`` (the weights in the official checkpoint format). Cases are looked up in two
folders, the first that holds ``STEM.json`` wins:

1. the full set, ``../shared/golden`` beside the checkout, or the folder ``SSMBLOCKS_GOLDEN_DIR`` names (point it
   at a missing or empty folder to run as a fresh clone does);
2. the small cases bundled with the repository, ``tests/data/golden`` (one per family; see its README.md).

``needs_golden`` is the marker that skips a test when its data is absent (tests/conftest.py applies it):

* ``@needs_golden("mambair_light_x4_oct_tiny")``: the named cases (skip reason names the absent ones);
* ``@needs_golden`` bare (or ``pytestmark = needs_golden``): the full set (key listings, every case of a family).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

GOLDEN_DIR_ENV = "SSMBLOCKS_GOLDEN_DIR"
BUNDLED = Path(__file__).resolve().parent / "data" / "golden"
GOLDEN = Path(os.environ.get(GOLDEN_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "golden")
"""The folder of the full golden set (with ``keys/``); read it directly only in tests marked bare ``needs_golden``."""

needs_golden = pytest.mark.golden


def golden_params(stems) -> list:
    """``stems`` as ``pytest.param``s, each marked ``needs_golden(stem)``: parametrize a test over cases with this,
    so an absent case shows as a skip naming it (not as a case that was never collected)."""
    return [pytest.param(stem, marks=needs_golden(stem), id=stem) for stem in stems]


def full_set_present() -> bool:
    """Whether the full golden set (``GOLDEN``) is there."""
    return GOLDEN.is_dir()


def _case_folder(stem: str) -> Path | None:
    for folder in (GOLDEN, BUNDLED):
        if (folder / f"{stem}.json").is_file() and (folder / f"{stem}.safetensors").is_file():
            return folder
    return None


def has_golden(stem: str) -> bool:
    """Whether case ``stem`` is available (in the full set or bundled)."""
    return _case_folder(stem) is not None


def golden_stems_in(folder: Path, pattern: str = "*") -> list[str]:
    """The cases in ``folder`` whose stem matches the glob ``pattern``, sorted."""
    return sorted(p.stem for p in folder.glob(f"{pattern}.safetensors") if p.with_suffix(".json").is_file())


def golden_stems(pattern: str = "*") -> list[str]:
    """The available cases whose stem matches the glob ``pattern``, sorted (the full set's and the bundled ones)."""
    return sorted({*golden_stems_in(GOLDEN, pattern), *golden_stems_in(BUNDLED, pattern)})


def golden_file(stem: str, suffix: str) -> Path:
    """The path of ``STEM.<suffix>`` (``"pth"``, ``"json"``, ``"safetensors"``) of an available case."""
    folder = _case_folder(stem)
    if folder is None:
        raise FileNotFoundError(f"golden case {stem!r} is neither in {GOLDEN} nor in {BUNDLED} "
                                f"(mark the test with needs_golden({stem!r}) to skip it there)")
    path = folder / f"{stem}.{suffix.lstrip('.')}"
    if not path.is_file():
        raise FileNotFoundError(f"golden case {stem!r} has no {path.name} in {folder}")
    return path


def golden_meta(stem: str) -> dict:
    """The metadata of a golden case (``STEM.json``: official source, kwargs, parameter count, tolerances...)."""
    return json.loads(golden_file(stem, "json").read_text())


def golden(stem: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and the tensors (``STEM.safetensors``: float64 ``input`` and ``output``, ...) of a case."""
    return golden_meta(stem), load_file(str(golden_file(stem, "safetensors")))


def assert_matches_golden(model: nn.Module, stem: str, *, fp64: bool = True) -> torch.Tensor:
    """Runs the golden input through ``model`` (eval, no grad) in float64 (unless ``fp64=False``) and float32 and
    checks the output shape and both runs against the official float64 output, within the golden's suggested
    tolerances. Leaves the model in float32 and returns the float32 output."""
    meta, data = golden(stem)
    tol = meta["suggested_tolerance"]
    model.eval()
    with torch.no_grad():
        if fp64:
            out64 = model.double()(data["input"])
            assert (out64 - data["output"]).abs().max().item() <= tol["fp64_run_vs_output_atol"]
        out32 = model.float()(data["input"].float())
    assert out32.shape == tuple(meta["output_shape"])
    assert (out32.double() - data["output"]).abs().max().item() <= tol["fp32_run_vs_output_atol"]
    return out32


def absent_reason(mark: pytest.Mark) -> str | None:
    """Why a test marked ``needs_golden`` (``mark``) cannot run here, or None when its data is present."""
    if not mark.args:
        return None if full_set_present() else f"the full golden set {GOLDEN} is absent"
    absent = [stem for stem in mark.args if not has_golden(stem)]
    if not absent:
        return None
    return f"golden case {', '.join(absent)} absent (neither in {GOLDEN} nor in {BUNDLED})"
