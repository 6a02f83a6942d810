"""The ComfyUI node package (integrations/comfyui/ssmblocks_nodes), used as ComfyUI uses a custom node: imported
from its folder by file location, its NODE_CLASS_MAPPINGS read, its nodes called with their inputs as keyword
arguments; ComfyUI's own "Load Upscale Model" / "Upscale Image (using Model)" steps (load the file with
torch.load(weights_only=True), spandrel ``ModelLoader().load_from_state_dict``, then the descriptor on a
(B, C, H, W) view of the (B, H, W, C) image) are replayed on official checkpoints. ComfyUI itself is not installed
(run in the ecosystem environment: torch 2.14.1 + torchvision + spandrel; see .ci/run)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spandrel
import torch
from safetensors.torch import load_file

import ssmblocks

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "integrations" / "comfyui" / "ssmblocks_nodes"
GOLDEN = ROOT.parent / "shared" / "golden"
TEAM07 = ROOT.parent / "shared" / "weights" / "dvmsr" / "team07_DVMSR.pth"


def _import_as_comfyui_does(name: str = "ssmblocks_nodes"):
    """A custom node folder is imported by the location of its __init__.py under the folder's name."""
    spec = importlib.util.spec_from_file_location(name, PACKAGE / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nodes():
    return _import_as_comfyui_does()


def test_importing_the_package_registers_the_families_with_spandrel():
    """In a fresh interpreter: nothing of ours in spandrel's registry before the import, the families after (that
    every image family registers is tests/test_spandrel.py's business)."""
    script = f"""
import importlib.util, sys, spandrel
ids = lambda: {{str(s.architecture.id) for s in spandrel.MAIN_REGISTRY.architectures("detection")}}
assert not any(i.startswith("ssmblocks.") for i in ids())
spec = importlib.util.spec_from_file_location("ssmblocks_nodes", {str(PACKAGE / "__init__.py")!r})
module = importlib.util.module_from_spec(spec); sys.modules["ssmblocks_nodes"] = module; spec.loader.exec_module(module)
print(sorted(i for i in ids() if i.startswith("ssmblocks.")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for family in ("MambaIR", "MambaIRUNet", "MambaCSR", "DVMSR"):
        assert f"'ssmblocks.{family}'" in done.stdout


def test_node_classes_follow_comfyui_conventions(nodes):
    assert set(nodes.NODE_DISPLAY_NAME_MAPPINGS) <= set(nodes.NODE_CLASS_MAPPINGS)
    for name, node in nodes.NODE_CLASS_MAPPINGS.items():
        inputs = node.INPUT_TYPES()
        assert set(inputs) <= {"required", "optional", "hidden"} and inputs["required"], name
        for spec in inputs["required"].values():
            assert isinstance(spec, tuple) and isinstance(spec[0], (str, list)), (name, spec)
        assert isinstance(node.RETURN_TYPES, tuple) and all(isinstance(t, str) for t in node.RETURN_TYPES)
        assert callable(getattr(node(), node.FUNCTION)) and isinstance(node.CATEGORY, str)


def _load_upscale_model_as_comfyui_does(path: Path):
    """ComfyUI's "Load Upscale Model": the file's dict (a top-level 'state_dict' unwrapped), then spandrel."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    model = spandrel.ModelLoader().load_from_state_dict(state).eval()
    assert isinstance(model, spandrel.ImageModelDescriptor)     # ComfyUI refuses anything else
    return model


def _upscale_as_comfyui_does(model, image: torch.Tensor) -> torch.Tensor:
    """ComfyUI's "Upscale Image (using Model)" on an image smaller than its 512-pixel tiles: channels first, the
    descriptor, channels last, clamped."""
    with torch.no_grad():
        return model(image.movedim(-1, -3)).movedim(-3, -1).clamp(0, 1)


@pytest.mark.parametrize(("stem", "family"), [("mambair_sr_x2_tiny", "MambaIR"), ("mambacsr_final_tiny", "MambaCSR"),
                                              ("dvmsr_tiny", "DVMSR")])
def test_load_upscale_model_loads_official_checkpoints(nodes, stem, family):
    if not GOLDEN.is_dir():
        pytest.skip(f"the golden cases are not in this checkout ({GOLDEN} is absent)")
    model = _load_upscale_model_as_comfyui_does(GOLDEN / f"{stem}.pth")
    assert str(model.architecture.id) == f"ssmblocks.{family}"
    golden = load_file(GOLDEN / f"{stem}.safetensors")
    tolerance = json.loads((GOLDEN / f"{stem}.json").read_text())["suggested_tolerance"]["fp32_run_vs_output_atol"]
    image = golden["input"].float().movedim(1, -1)                          # (1, H, W, C) as ComfyUI holds images
    out = _upscale_as_comfyui_does(model, image)
    assert (out - golden["output"].float().clamp(0, 1).movedim(1, -1)).abs().max() <= tolerance


def test_load_upscale_model_loads_the_released_dvmsr(nodes):
    if not TEAM07.is_file():
        pytest.skip(f"the released DVMSR weights are not in this checkout ({TEAM07} is absent)")
    model = _load_upscale_model_as_comfyui_does(TEAM07)
    assert (str(model.architecture.id), model.scale) == ("ssmblocks.DVMSR", 4)


def test_zoo_loader_node_and_restore_node(nodes):
    loader = nodes.NODE_CLASS_MAPPINGS["SSMBlocksZooLoader"]()
    restorer = nodes.NODE_CLASS_MAPPINGS["SSMBlocksRestore"]()
    choices = loader.INPUT_TYPES()["required"]["model_name"][0]
    assert "dvmsr.ntire2024_team07" in choices and not any(name.startswith("medvsr") for name in choices)
    (model,) = getattr(loader, loader.FUNCTION)(model_name="dvmsr.ntire2024_team07")    # bundled: no network
    assert isinstance(model, spandrel.ImageModelDescriptor) and model.scale == 4
    image = torch.rand(2, 20, 28, 3)                                       # (B, H, W, C) float in [0, 1]
    (out,) = getattr(restorer, restorer.FUNCTION)(upscale_model=model, image=image, tile=0)
    assert out.shape == (2, 80, 112, 3) and out.dtype == torch.float32
    expected = ssmblocks.restore(ssmblocks.create_model("dvmsr", pretrained=True), image.movedim(-1, 1))
    assert torch.equal(out, expected.movedim(1, -1))
    assert torch.allclose(_upscale_as_comfyui_does(model, image), out, atol=1e-6)
    (tiled,) = getattr(restorer, restorer.FUNCTION)(upscale_model=model, image=image, tile=16)
    assert tiled.shape == out.shape and 0 < (tiled - out).abs().max() < 0.5      # tiles: close, not identical
