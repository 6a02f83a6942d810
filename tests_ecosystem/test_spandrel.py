"""spandrel loads official checkpoints of the library's image families (run in the ecosystem environment:
torch 2.14.1 + torchvision 0.29.1 + spandrel; see .ci/run)."""

from __future__ import annotations

from pathlib import Path

import pytest
import spandrel
import torch

import ssmblocks
import ssmblocks.integrations.spandrel as ssm_spandrel

SHARED = Path(__file__).resolve().parents[2] / "shared"
# (official-format checkpoint, family, scale); files absent from this checkout's ../shared are reported, not skipped
CHECKPOINTS = [("golden/mambair_sr_x2_tiny.pth", "MambaIR", 2), ("golden/mambair_light_x4_oct_tiny.pth", "MambaIR", 4),
               ("golden/mambairunet_tiny.pth", "MambaIRUNet", 1), ("golden/mambacsr_final_tiny.pth", "MambaCSR", 4),
               ("weights/dvmsr/team07_DVMSR.pth", "DVMSR", 4)]


@pytest.fixture(scope="module")
def loader():
    ssm_spandrel.register()
    return spandrel.ModelLoader()


def test_registration_is_idempotent_and_detected_first(loader):
    assert ssm_spandrel.register() == []
    ids = [str(s.architecture.id) for s in spandrel.MAIN_REGISTRY.architectures("detection")]
    ours = [i for i, name in enumerate(ids) if name.startswith("ssmblocks.")]
    assert {"ssmblocks.MambaIR", "ssmblocks.MambaIRUNet"} <= {ids[i] for i in ours}
    assert max(ours) < min(i for i, name in enumerate(ids) if not name.startswith("ssmblocks."))


@pytest.mark.parametrize(("relative", "family", "scale"), CHECKPOINTS, ids=lambda v: str(v))
def test_spandrel_loads_official_checkpoints(loader, relative, family, scale):
    path = SHARED / relative
    assert path.is_file(), f"{path} is missing from ../shared"
    if family not in ssmblocks._builder.supported_families():
        pytest.fail(f"family {family} is not in the library yet")
    descriptor = loader.load_from_file(path)
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert str(descriptor.architecture.id) == f"ssmblocks.{family}" and descriptor.scale == scale
    assert descriptor.tiling == spandrel.ModelTiling.DISCOURAGED
    reference = ssmblocks.load_checkpoint(path)
    contract = reference.contract
    assert (descriptor.input_channels, descriptor.output_channels) == (contract.in_chans, contract.out_chans)
    assert (descriptor.supports_bfloat16, descriptor.supports_half) == (contract.supports_bf16, contract.supports_fp16)
    side = max(16, descriptor.size_requirements.minimum)
    x = torch.rand(1, contract.in_chans, side, side)
    with torch.no_grad():
        assert (descriptor(x) - reference(x).clamp(0, 1)).abs().max() < 1e-5      # spandrel clamps outputs
