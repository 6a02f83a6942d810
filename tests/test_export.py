"""ONNX export of every image model (run in onnxruntime) and torch.export programs saved and loaded back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import ssmblocks
import ssmblocks.export
from ssmblocks import export_onnx  # the package-level name users reach for (tested through it below)
from tests._tiers import sweep


def _contract(name: str) -> ssmblocks.ModelContract:
    with torch.device("meta"):
        return ssmblocks.create_model(name).contract


IMAGE_TEST_MODELS = [n for n in ssmblocks.list_models("test_*") if not _contract(n).is_video]


def _example(name: str, height: int = 16, width: int = 20) -> torch.Tensor:
    contract = _contract(name)
    torch.manual_seed(0)
    return torch.rand(1, contract.in_chans, max(height, contract.min_size), max(width, contract.min_size))


def _run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x.numpy()})[0]


@pytest.mark.parametrize("name", sweep(IMAGE_TEST_MODELS))
def test_onnx_export_runs_in_onnxruntime_and_matches(name, tmp_path):
    model = ssmblocks.create_model(name).eval()
    x = _example(name)
    with torch.no_grad():
        expected = model(x).numpy()
    path = export_onnx(model, tmp_path / "model.onnx", x)
    graph = onnx.load(str(path)).graph
    assert not {node.domain for node in graph.node} - {"", "ai.onnx"}          # standard operators only
    assert np.abs(_run_onnx(path, x) - expected).max() < 1e-4
    assert not list(tmp_path.glob("*.part"))


def test_export_onnx_is_on_the_package():
    assert ssmblocks.export_onnx is ssmblocks.export.export_onnx and "export_onnx" in ssmblocks.__all__


def test_failed_onnx_export_leaves_no_file(tmp_path, monkeypatch):
    def half_written(model, args, f, **kwargs):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", half_written)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_onnx(ssmblocks.create_model("test_mambair_sr"), tmp_path / "bad.onnx", torch.rand(1, 3, 8, 8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", IMAGE_TEST_MODELS[:2])
def test_torch_export_program_saved_and_loaded(name, tmp_path):
    model = ssmblocks.create_model(name).eval()
    x = _example(name)
    program = torch.export.export(model, (x,))
    torch.export.save(program, tmp_path / "model.pt2")
    loaded = torch.export.load(tmp_path / "model.pt2")
    with torch.no_grad():
        assert torch.allclose(loaded.module()(x), model(x), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_the_released_dvmsr_exports_at_64x64(tmp_path):
    """The real weights (bundled team07 release) through ONNX: onnxruntime within 1e-4 of PyTorch."""
    model = ssmblocks.create_model("dvmsr", pretrained=True).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    path = export_onnx(model, tmp_path / "dvmsr.onnx", x)
    assert np.abs(_run_onnx(path, x) - expected).max() < 1e-4


class _WindowedUNet(torch.nn.Module):
    """A researcher's two-level net of windowed Mamba-2 layers: 8x8 windows at full resolution and at 1/4, so the
    coarse level has one window at small sizes and several at larger ones."""

    def __init__(self) -> None:
        super().__init__()
        from ssmblocks.blocks import WindowedMamba2Layer
        self.fine = WindowedMamba2Layer(16, window_size=8, d_state=4, headdim=8)
        self.coarse = WindowedMamba2Layer(16, window_size=8, d_state=4, headdim=8)
        self.stem, self.head = torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.Conv2d(16, 3, 3, padding=1)
        self.contract = ssmblocks.ModelContract(multiple_of=4, min_size=4)

    def forward(self, x):
        fine = self.fine(self.stem(x))
        coarse = self.coarse(torch.nn.functional.avg_pool2d(fine, 4))
        return x + self.head(fine + torch.nn.functional.interpolate(coarse, size=fine.shape[-2:], mode="nearest"))


@pytest.mark.parametrize("example_size", [(24, 32), (40, 48)])
def test_a_windowed_network_exported_at_one_size_runs_with_fewer_and_more_windows(example_size):
    from ssmblocks.export import export_program
    torch.manual_seed(0)
    model = _WindowedUNet().eval()
    program = export_program(model, torch.rand(1, 3, *example_size))
    for size in [(8, 8), (16, 24), (24, 32), (40, 48), (72, 36)]:    # coarse windows: 1, 1, 1, 2, 3; fine: 1 .. 45
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)
