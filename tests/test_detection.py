"""Checkpoint detection over every family: declarative claims, exactly one family per checkpoint, hyperparameters
read back from shapes, only CheckpointError escapes, and published cfgs only for the released sizes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

import ssmblocks
from ssmblocks import CheckpointError, _registry
from ssmblocks._builder import _detectors, detect_checkpoint, filter_checkpoint, supported_families
from ssmblocks._registry import model_entrypoint
from tests._golden import GOLDEN

KEYS = GOLDEN / "keys"
LISTINGS = sorted(KEYS.glob("*.json"))
# The family each official listing belongs to, by file-name prefix (the longest matching prefix wins). A family
# without a detector yet must be refused by every detector.
FAMILY_OF_LISTING = {"mambairunet": "MambaIRUNet", "mambairv2": "MambaIRv2", "mambair": "MambaIR",
                     "mambacsr": "MambaCSR", "dvmsr": "DVMSR", "medvsr": "MedVSR", "mairunet": "MaIRUNet",
                     "mair": "MaIR", "eamambasr": "EAMambaSR", "eamamba": "EAMamba"}

# Configurations per architecture that must survive save -> detect (on top of every test_* model's defaults).
ROUND_TRIP_CASES = {
    "test_mambair_sr": [{"upscale": 3, "embed_dim": 36, "depths": (1, 2, 1)}, {"upscale": 4, "d_state": 8},
                        {"in_chans": 1, "mlp_ratio": 1.5}],
    "test_mambair_light": [{"upscale": 2, "cab_variant": "light_mar2024", "embed_dim": 36, "d_state": 16},
                           {"upscale": 3, "cab_variant": "light_feb2024", "mlp_ratio": 1.5}],
    "test_mambair_dn": [{"in_chans": 1, "depths": (1,)}],
    "test_mambairunet": [{"dim": 36, "num_blocks": (1, 2, 1, 1), "num_refinement_blocks": 2, "mlp_ratio": 2.0}],
    "test_mair": [{"upscale": 3, "depths": (1, 3), "in_chans": 1},
                  {"upscale": 4, "upsampler": "pixelshuffledirect", "embed_dim": 20, "ssm_ratio": 1.4,
                   "mlp_ratio": 1.6, "scan_len": 4, "num_feat": 64},
                  {"upscale": 1, "upsampler": "", "embed_dim": 20, "ssm_ratio": 1.3, "mlp_ratio": 2.0, "scan_len": 4,
                   "num_feat": 64}],
    "test_mairunet": [{"dim": 12, "num_blocks": (1, 2, 1, 1), "ssm_ratio": 1.2, "flp_ratio": 2.0, "mlp_ratio": 2.0,
                       "scan_len": 8}],
    "test_dvmsr": [{"embed_dim": 24, "depths": (2, 1, 1), "d_state": 8}, {"upscale": 2, "in_chans": 1, "d_conv": 3},
                   {"expand": 1.5, "dt_rank": 3, "upscale": 3}],
    "test_mambacsr": [{"embed_dim": 32, "depths": (3, 1), "depths2": (1, 2), "d_state": 8, "fusion_d_state": 16,
                       "mlp_ratio": 1.5, "fusion_mlp_ratio": 2.0, "upscale": 2, "num_feat": 8},
                      {"in_chans": 1, "upscale": 3, "expand": 1.5}],
    "test_mambacsr_wo": [{"dual_interleaved_scan": False, "depths": (1, 3), "upscale": 8},
                         {"embed_dim": 48, "d_state": 16, "mlp_ratio": 1.0}],
    "test_medvsr": [{"mid_channels": 64, "num_blocks": 2, "num_extract_blocks": 2, "num_reconstruct_blocks": 4,
                     "mamba_layers": 2, "reconstruct_kernel": 5, "d_state": 8, "headdim": 8, "cssb_mlp_ratio": 2.0,
                     "issr_mlp_ratio": 3.0, "deformable_groups": 8, "hr_channels": 32}],
    "test_mambairv2": [{"ffn": "gate", "mlp_ratio": 1.0, "upsampler": "pixelshuffledirect", "upscale": 4},
                       {"in_chans": 1, "upsampler": "", "upscale": 1, "depths": (1, 2), "num_heads": (2, 3),
                        "convffn_kernel_size": 3, "window_size": 4},
                       {"upscale": 3, "embed_dim": 30, "d_state": 6, "inner_rank": 5, "num_tokens": 7,
                        "mlp_ratio": 1.5}],
    "test_vsrm": [{"mid_channels": 8, "embed_dim": 12, "num_extract_blocks": 1, "num_refine_blocks": 1,
                   "num_reconstruct_blocks": 2, "num_dambs": 2, "damb_depth": 2, "d_conv": 3, "expand": 1.5,
                   "share_directions": False, "ffn_expansion": 1.5, "ffn_kernel": (1, 3, 3), "region_size": (3, 3),
                   "offset_layers": 1, "dca_d_state": 8, "dca_expand": 1, "dca_headdim": 4, "hr_channels": 8}],
}


def _meta_state(listing: Path) -> dict[str, torch.Tensor]:
    keys = json.loads(listing.read_text())["keys"]
    return {k: torch.empty(shape, device="meta") for k, shape in keys.items()}


def _family_of(listing: Path) -> str:
    prefix = max((p for p in FAMILY_OF_LISTING if listing.stem.startswith(p)), key=len)
    return FAMILY_OF_LISTING[prefix]


def _json(args: dict) -> str:
    return json.dumps(args, sort_keys=True, default=repr)


@pytest.mark.skipif(not LISTINGS, reason=f"the full golden set's key listings ({KEYS}) are absent")
@pytest.mark.parametrize("listing", LISTINGS, ids=lambda p: p.stem)
def test_official_listing_is_claimed_by_its_family_or_refused(listing):
    family = _family_of(listing)
    state = _meta_state(listing)
    if family not in supported_families():
        with pytest.raises(CheckpointError):
            detect_checkpoint(state, listing.name)
        return
    found = detect_checkpoint(state, listing.name)
    assert found.family == family
    with torch.device("meta"):
        built = model_entrypoint(found.architecture)(**found.model_args)
    filtered = filter_checkpoint(built, state)
    expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    assert expected == {k: tuple(v.shape) for k, v in filtered.items()}


def _round_trip_cases():
    for name in ssmblocks.list_models("test_*"):
        yield name, {}
        for kwargs in ROUND_TRIP_CASES.get(name, []):
            yield name, kwargs


@pytest.mark.parametrize(("name", "kwargs"), list(_round_trip_cases()), ids=lambda v: str(v))
def test_detection_round_trip(name, kwargs, tmp_path):
    model = ssmblocks.create_model(name, **kwargs)
    path = tmp_path / "model.pth"
    torch.save({"params": model.state_dict()}, path)
    loaded = ssmblocks.load_checkpoint(path)
    assert loaded.family == model.family
    assert _json(loaded.model_args) == _json(model.model_args)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                  strict=True))
    assert not any(t.is_meta for t in loaded.state_dict().values())


def test_every_test_model_has_round_trip_coverage_for_its_family():
    families = {ssmblocks.create_model(name).family for name in ssmblocks.list_models("test_*")}
    assert families <= set(supported_families())


# One test model per family (the first by name); every ordered pair of different families.
FAMILY_MODELS = {}
for _name in ssmblocks.list_models("test_*"):
    FAMILY_MODELS.setdefault(ssmblocks.create_model(_name).family, _name)
FAMILY_PAIRS = [(a, b) for a in FAMILY_MODELS for b in FAMILY_MODELS if a != b]


@pytest.fixture(scope="module")
def family_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A saved state dict of each family's test model."""
    folder = tmp_path_factory.mktemp("families")
    paths = {}
    for family, name in FAMILY_MODELS.items():
        paths[family] = folder / f"{name}.pth"
        torch.save(ssmblocks.create_model(name).state_dict(), paths[family])
    return paths


@pytest.mark.parametrize(("saved", "target"), FAMILY_PAIRS, ids=[f"{a}-into-{b}" for a, b in FAMILY_PAIRS])
def test_a_checkpoint_given_to_another_family_names_both(saved, target, family_checkpoints):
    assert len(FAMILY_MODELS) == len(supported_families())
    with pytest.raises(CheckpointError, match=rf"is a {saved} checkpoint \(.*\), but (the model is {target}|"
                                              rf"{FAMILY_MODELS[target]} is not a model of that family): use "
                                              r"ssmblocks.load_checkpoint\(path\)"):
        ssmblocks.create_model(FAMILY_MODELS[target], checkpoint_path=family_checkpoints[saved])


def test_two_claims_are_an_error_naming_both(monkeypatch):
    state = ssmblocks.create_model("test_mambair_sr").state_dict()
    first = next(iter(_detectors.values()))
    monkeypatch.setitem(_detectors, "Impostor", type(first)("Impostor", lambda s: True, first.infer, "image"))
    with pytest.raises(CheckpointError, match=r"claimed by several families \(.*Impostor.*\)|\(MambaIR.*Impostor"):
        detect_checkpoint(state, "x.pth")


def test_failures_inside_a_detector_become_checkpoint_errors(tmp_path):
    state = ssmblocks.create_model("test_mambair_sr").state_dict()
    broken = {k: v for k, v in state.items() if k.startswith("layers.0.residual_group.blocks.0.")}
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"broken\.pth looks like a MambaIR checkpoint, but its hyperparameters"):
        ssmblocks.load_checkpoint(path)


def test_unknown_family_lists_the_supported_ones(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as err:
        ssmblocks.load_checkpoint(path)
    assert all(family in str(err.value) for family in supported_families())


def test_custom_sizes_get_no_published_cfg(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(ssmblocks.create_model("test_mambair_light").state_dict(), path)
    model = ssmblocks.load_checkpoint(path)
    cfg = model.pretrained_cfg
    assert model.architecture == "mambair_light_x4"
    assert cfg.tag == "custom" and cfg.metrics == {} and not cfg.has_weights
    assert "detected from tiny.pth, custom size" in cfg.notes
    card = (ssmblocks.save_for_hub(model, tmp_path / "hub") / "README.md").read_text()
    assert "Urban100" not in card


def test_released_sizes_get_the_published_cfg(tmp_path):
    path = tmp_path / "light.pth"
    torch.save({"params": ssmblocks.create_model("mambair_light_x2").state_dict()}, path)
    cfg = ssmblocks.load_checkpoint(path).pretrained_cfg
    assert cfg.name == "mambair_light_x2.official" and cfg.metrics["Urban100 PSNR/SSIM"] == "32.92/0.9356"
    assert cfg.notes.startswith("detected from light.pth")


def test_a_release_file_gets_its_release_cfg_by_sha256_then_by_file_name(tmp_path, monkeypatch):
    """Any family's releases: the file's sha256 (whole or a declared prefix) names the release first, then its
    file name; another file of the released size keeps the default cfg and says it is not a known release."""
    torch.manual_seed(0)
    path = tmp_path / "named.pth"
    torch.save({"params": ssmblocks.create_model("mambair_light_x2").state_dict()}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    base = ssmblocks.get_pretrained_cfg("mambair_light_x2")
    site = "https://example.org/w"
    releases = {"first": dataclasses.replace(base, tag="first", url=f"{site}/first.pth", sha256=None),
                "by_sha": dataclasses.replace(base, tag="by_sha", url=f"{site}/x.pth", sha256=digest[:10]),
                "by_name": dataclasses.replace(base, tag="by_name", gdrive_id="ID", manual_filename="named.pth")}
    monkeypatch.setitem(_registry._cfgs, "mambair_light_x2", releases)

    def loaded(file: Path) -> tuple[str, str]:
        cfg = ssmblocks.load_checkpoint(file).pretrained_cfg
        return cfg.tag, cfg.notes

    tag, notes = loaded(path)                               # named like by_name, but the bytes are by_sha's
    assert tag == "by_sha" and notes.startswith("detected from named.pth (mambair_light_x2.by_sha release: sha256")
    torch.save({"params_ema": ssmblocks.create_model("mambair_light_x2").state_dict()}, path)   # other bytes
    tag, notes = loaded(path)
    assert tag == "by_name" and "(mambair_light_x2.by_name release: file name match)" in notes
    assert loaded(path.rename(tmp_path / "first.pth"))[0] == "first"
    tag, notes = loaded((tmp_path / "first.pth").rename(tmp_path / "mine.pth"))
    assert tag == "first" and "not a known release file" in notes
    releases["twin"] = dataclasses.replace(base, tag="twin", gdrive_id="ID2", manual_filename="named.pth")
    tag, notes = loaded((tmp_path / "mine.pth").rename(tmp_path / "named.pth"))   # two releases of that name
    assert tag == "first" and "not a known release file" in notes


def test_a_model_built_from_its_class_saves_and_reloads(tmp_path):
    from ssmblocks.zoo.mambair import MambaIR

    model = MambaIR(upscale=3, embed_dim=30, depths=(1,), d_state=4)
    assert model.model_args["upscale"] == 3 and model.model_args["num_feat"] == 64   # defaults recorded too
    folder = ssmblocks.save_for_hub(model, tmp_path / "hub")
    again = ssmblocks.create_model(f"local-dir:{folder}")
    assert type(again) is MambaIR and _json(again.model_args) == _json(model.model_args)


def test_train_mode_from_create_model_eval_mode_from_load_checkpoint(tmp_path):
    model = ssmblocks.create_model("test_mambair_dn")
    assert model.training
    path = tmp_path / "dn.pth"
    torch.save(model.state_dict(), path)
    assert not ssmblocks.load_checkpoint(path).training


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_images_are_refused(dtype):
    model = ssmblocks.create_model("test_mambair_sr")
    with pytest.raises(TypeError, match=r"float images in \[0, 1\]"):
        model(torch.zeros(1, 3, 8, 8, dtype=dtype))


def test_width_ratios_read_from_shapes_rebuild_the_same_widths():
    from ssmblocks.zoo._common import width_ratio

    pairs = [(width, dim) for dim in range(16, 257) for width in range(dim // 2, 4 * dim + 1)]
    assert all(int(width_ratio(width, dim) * dim) == width for width, dim in pairs)
    assert width_ratio(360, 180) == 2.0 and width_ratio(216, 180) == 1.2   # the usual values stay exact


def test_the_contract_follows_the_built_scale_and_channels(tmp_path):
    """create_model(name, upscale=2) is x2 whatever its tag says; restore(), export and spandrel read the contract."""
    model = ssmblocks.create_model("test_dvmsr", upscale=2, in_chans=1)
    assert (model.contract.scale, model.contract.in_chans, model.contract.out_chans) == (2, 1, 1)
    out = ssmblocks.restore(model.eval(), torch.rand(1, 1, 20, 20), tile=8)
    assert out.shape == (1, 1, 40, 40)
    path = tmp_path / "x2.pth"
    torch.save(model.state_dict(), path)
    assert ssmblocks.load_checkpoint(path).contract.scale == 2
