"""spandrel loads official checkpoints of the library's image families (run in the ecosystem environment:
torch 2.14.1 + torchvision 0.29.1 + spandrel; see .ci/run).

Every golden case in ../shared/golden (the official checkpoint formats: BasicSR ``params`` / ``params_ema``, raw
state dicts) of a family the library has is loaded through ``spandrel.ModelLoader().load_from_file``, as are the
same weights converted to the library's safetensors (``save_for_hub``, what ``ssmblocks convert`` writes) and the
released DVMSR weights; the descriptors' outputs are checked against the official outputs. Cases are skipped, with
the reason, where ../shared is absent or the family is not in this checkout's zoo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spandrel
import torch
from safetensors.torch import load_file

import ssmblocks
import ssmblocks.integrations.spandrel as ssm_spandrel
from ssmblocks._builder import supported_families
from ssmblocks._hub import save_for_hub

SHARED = Path(__file__).resolve().parents[2] / "shared"
GOLDEN = SHARED / "golden"
DVMSR_WEIGHTS = SHARED / "weights" / "dvmsr"
# the families spandrel has been able to load since this integration was written (a floor: more may register)
FIRST_FAMILIES = {"MambaIR", "MambaIRUNet", "MambaCSR", "DVMSR"}


def _golden_stems() -> list[str]:
    """Golden image cases with an official checkpoint, except those with random (Gumbel) routing: they share the
    weights of the deterministic case, and spandrel runs a model's default. (Video cases do not fit spandrel.)"""
    if not GOLDEN.is_dir():
        return []
    metas = {p.stem: json.loads(p.with_suffix(".json").read_text()) for p in GOLDEN.glob("*.pth")}
    return sorted(stem for stem, meta in metas.items()
                  if len(meta["input_shape"]) == 4 and meta.get("routing") != "official_gumbel")


def _library_family(meta: dict) -> str:
    for name in (meta["official_class"], meta["family"]):
        if name in supported_families():
            return name
    pytest.skip(f"{meta['family']} ({meta['official_class']}) is not in this checkout's zoo")


@pytest.fixture(scope="module")
def loader():
    ssm_spandrel.register()
    return spandrel.ModelLoader()


def _registered_ids() -> list[str]:
    return [str(s.architecture.id) for s in spandrel.MAIN_REGISTRY.architectures("detection")]


def test_registration_is_idempotent_and_detected_first(loader):
    assert ssm_spandrel.register() == []
    ids = _registered_ids()
    ours = [i for i, name in enumerate(ids) if name.startswith("ssmblocks.")]
    assert max(ours) < min(i for i, name in enumerate(ids) if not name.startswith("ssmblocks."))


def test_every_image_family_of_the_registry_registers(loader):
    ours = {name.removeprefix("ssmblocks.") for name in _registered_ids() if name.startswith("ssmblocks.")}
    assert ours >= FIRST_FAMILIES
    for arch in ssmblocks.list_models():
        with torch.device("meta"):
            model = ssmblocks.create_model(arch)
        video = model.contract.is_video
        assert (model.family in ours) != video, f"{arch} ({model.family}, {'video' if video else 'image'} model)"


def _check_descriptor(descriptor, family: str, meta: dict, golden: dict) -> None:
    """The descriptor is the family's, says what the official shapes say, and gives the official output."""
    assert isinstance(descriptor, spandrel.ImageModelDescriptor)
    assert str(descriptor.architecture.id) == f"ssmblocks.{family}"
    x, expected = golden["input"].float(), golden["output"].float().clamp(0, 1)    # spandrel clamps outputs
    assert descriptor.scale == expected.shape[-1] // x.shape[-1]
    assert (descriptor.input_channels, descriptor.output_channels) == (x.shape[1], expected.shape[1])
    assert descriptor.purpose == ("SR" if descriptor.scale > 1 else "Restoration")
    assert descriptor.tiling == spandrel.ModelTiling.DISCOURAGED
    contract = descriptor.model.contract
    assert (descriptor.supports_half, descriptor.supports_bfloat16) == (contract.supports_fp16, contract.supports_bf16)
    assert descriptor.size_requirements.multiple_of == contract.multiple_of
    assert descriptor.size_requirements.minimum >= contract.min_size - 1
    with torch.no_grad():
        out = descriptor(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max() <= meta["suggested_tolerance"]["fp32_run_vs_output_atol"]


@pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"the golden cases are not in this checkout ({GOLDEN} is absent)")
@pytest.mark.parametrize("stem", _golden_stems())
def test_official_and_library_checkpoints_load_and_run(loader, tmp_path, stem):
    meta = json.loads((GOLDEN / f"{stem}.json").read_text())
    family = _library_family(meta)
    golden = load_file(GOLDEN / f"{stem}.safetensors")
    official = loader.load_from_file(GOLDEN / f"{stem}.pth")
    _check_descriptor(official, family, meta, golden)
    # the same weights in the library's own format (what `ssmblocks convert` writes)
    save_for_hub(ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth"), tmp_path / "hub")
    _check_descriptor(loader.load_from_file(tmp_path / "hub" / "model.safetensors"), family, meta, golden)


def test_the_release_dvmsr_weights_load(loader):
    if not DVMSR_WEIGHTS.is_dir():
        pytest.skip(f"the released DVMSR weights are not in this checkout ({DVMSR_WEIGHTS} is absent)")
    meta = json.loads((GOLDEN / "dvmsr_official_team07.json").read_text())
    golden = load_file(GOLDEN / "dvmsr_official_team07.safetensors")
    _check_descriptor(loader.load_from_file(DVMSR_WEIGHTS / "team07_DVMSR.pth"), "DVMSR", meta, golden)
    # DVMSR.pth holds params and params_ema (different tensors): spandrel must run params_ema, as BasicSR tests do
    both = loader.load_from_file(DVMSR_WEIGHTS / "DVMSR.pth")
    raw = torch.load(DVMSR_WEIGHTS / "DVMSR.pth", map_location="cpu", weights_only=True)
    state = both.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in zip(state, raw["params_ema"].values(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(raw["params"].values(), raw["params_ema"].values(), strict=True))


def test_descriptor_of_a_zoo_model():
    model = ssmblocks.create_model("dvmsr", pretrained=True)          # bundled: no network
    descriptor = ssm_spandrel.descriptor(model)
    assert (descriptor.scale, descriptor.input_channels, str(descriptor.architecture.id)) == (4, 3, "ssmblocks.DVMSR")
    x = torch.rand(1, 3, 20, 12)
    with torch.no_grad():
        assert torch.equal(descriptor(x), ssmblocks.restore(model, x))
    with pytest.raises(ValueError, match="videos"):
        ssm_spandrel.descriptor(ssmblocks.create_model("test_medvsr"))


def test_a_checkpoint_of_no_family_is_left_to_spandrel(loader, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"params": {"conv.weight": torch.zeros(3, 3, 3, 3)}}, path)
    with pytest.raises(spandrel.UnsupportedModelError):
        loader.load_from_file(path)


def test_the_chainner_pth_line_registers_when_python_starts(tmp_path):
    """docs/integrations.md: a .pth file in site-packages holding one import line makes every start of that Python
    register the families (site processes the folder as it does site-packages)."""
    (tmp_path / "ssmblocks_spandrel.pth").write_text("import ssmblocks.integrations.spandrel as ssm; ssm.register()\n")
    script = (f"import site; site.addsitedir({str(tmp_path)!r}); import spandrel; "
              "print(sorted(str(s.architecture.id) for s in spandrel.MAIN_REGISTRY.architectures('detection')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "'ssmblocks.MambaIR'" in done.stdout and "'ssmblocks.DVMSR'" in done.stdout
