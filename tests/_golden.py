"""The golden reference data (outputs of the official code, kept beside the checkout in ../shared/golden; its
README says how each file was made) and the comparison every parity test makes with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
needs_golden = pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"golden data folder {GOLDEN} is absent")


def golden_meta(stem: str) -> dict:
    """The metadata of a golden case (``STEM.json``: official source, kwargs, parameter count, tolerances...)."""
    return json.loads((GOLDEN / f"{stem}.json").read_text())


def golden(stem: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and the tensors (``STEM.safetensors``: float64 ``input`` and ``output``, ...) of a case."""
    return golden_meta(stem), load_file(str(GOLDEN / f"{stem}.safetensors"))


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
