"""The scripts in examples/ run end to end on a tiny budget, so that they cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ssmblocks
from tests._golden import golden_meta, has_golden

REPO = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_distill_dvmsr_runs_on_a_tiny_budget(tmp_path):
    pytest.importorskip("skimage", reason="the example's photos come from scikit-image (the 'examples' extra)")
    weights = tmp_path / "weights" / "student.safetensors"
    table = _example("distill_dvmsr").main(["--out", str(tmp_path / "run"), "--weights", str(weights),
                                            "--steps", "2", "--images", "2", "--held-out", "1"])

    assert list(table) == ["chelsea", "dvmsr_test", "held-out mean"]
    assert all(list(row) == ["student", "teacher", "bicubic"] for row in table.values())
    assert json.loads((tmp_path / "run" / "results.json").read_text())["psnr"] == table
    # the student is a half-width DVMSR (detected from its weights), and --weights is the run's exported file
    student = ssmblocks.load_checkpoint(weights)
    assert student.model_args["embed_dim"] == 30
    # the run started from the teacher's weights cut to the student's width (the example's default --init)
    run_args = json.loads((tmp_path / "run" / "run" / "train_args.json").read_text())
    assert run_args["init_checkpoint"] == str(tmp_path / "run" / "init.safetensors")
    exported = load_file(str(tmp_path / "run" / "run" / "model.safetensors"))
    assert all(torch.equal(value, exported[key]) for key, value in load_file(str(weights)).items())
    # the teacher is the released DVMSR, measured with DVMSR's protocol: the official numbers on its test image
    if has_golden("dvmsr_official_team07"):
        official = golden_meta("dvmsr_official_team07")["psnr"]
        assert table["dvmsr_test"]["teacher"] == pytest.approx(official["team07_DVMSR_pth_fp32"], abs=1e-3)
        assert table["dvmsr_test"]["bicubic"] == pytest.approx(official["pil_bicubic_x4_upscale_of_lr_baseline"],
                                                               abs=1e-6)
