"""MambaIR family against the official implementation: goldens, full-size key listings, parameter counts."""

from __future__ import annotations

import json

import pytest
import torch

import ssmblocks
from ssmblocks._builder import detect_checkpoint, filter_checkpoint
from ssmblocks.scan_orders import Windowed, bidirectional, concat
from tests._golden import GOLDEN, assert_matches_golden, golden, golden_file, golden_params, needs_golden


def _v1(paths) -> list[str]:
    """MambaIR (v1) stems: ``mambair*`` but not MambaIRv2's ``mambairv2*``."""
    return sorted(p.stem for p in paths if not p.stem.startswith("mambairv2"))


KEY_LISTINGS = _v1((GOLDEN / "keys").glob("mambair*.json"))
EXPECTED_ARCH = {
    "mambair_sr_x2_tiny": "mambair_sr_x2", "mambair_sr_x3_tiny": "mambair_sr_x3",
    "mambair_light_x4_oct_tiny": "mambair_light_x4", "mambair_light_x2_mar_tiny": "mambair_light_mar2024_x2",
    "mambair_light_x2_feb_tiny": "mambair_light_feb2024_x2", "mambair_dn_tiny": "mambair_dn_color",
    "mambair_car_tiny": "mambair_car", "mambairunet_tiny": "mambairunet_realdn",
}


@needs_golden
def test_every_golden_is_covered():
    assert set(_v1(GOLDEN.glob("mambair*.json"))) == set(EXPECTED_ARCH)
    assert len(KEY_LISTINGS) == 11


@pytest.mark.parametrize("stem", golden_params(sorted(EXPECTED_ARCH)))
def test_official_checkpoint_reproduces_official_output(stem):
    meta, _ = golden(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"))   # official format, family detected from the keys
    assert model.architecture == EXPECTED_ARCH[stem]
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert_matches_golden(model, stem)


@needs_golden("mambair_sr_x2_tiny")
@pytest.mark.parametrize("stem", ["mambair_sr_x2_tiny"])
def test_create_model_with_checkpoint_path_matches_too(stem):
    meta, data = golden(stem)
    kwargs = meta["official_kwargs"]
    model = ssmblocks.create_model("mambair_sr_x2", checkpoint_path=golden_file(stem, "pth"), embed_dim=32,
                                   depths=kwargs["depths"], d_state=kwargs["d_state"], mlp_ratio=kwargs["mlp_ratio"])
    with torch.no_grad():
        out = model.double()(data["input"])
    assert (out - data["output"]).abs().max().item() <= 1e-8


@needs_golden
@pytest.mark.parametrize("listing", KEY_LISTINGS)
def test_full_size_key_listing_maps_one_to_one(listing):
    meta = json.loads((GOLDEN / "keys" / f"{listing}.json").read_text())
    official = {k: torch.empty(shape) for k, shape in meta["keys"].items()}
    found = detect_checkpoint(official)
    assert found is not None
    # the registered architecture with its defaults is the released model: no detected overrides needed
    model = ssmblocks.create_model(found.architecture)
    mapped = filter_checkpoint(model, official)
    ours = model.state_dict()
    assert set(mapped) == set(ours)
    assert all(tuple(mapped[k].shape) == tuple(v.shape) for k, v in ours.items())
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]


def test_mambair_takes_any_scan_order():
    # A two-path windowed order instead of the 4-path cross-scan: the per-path parameters follow K = 2.
    order = concat(bidirectional(Windowed(4)))
    model = ssmblocks.create_model("test_mambair_sr", scan_order=order)
    assert model.layers[0].residual_group.blocks[0].self_attention.x_proj_weight.shape[0] == 2
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 3, 20, 28) and torch.isfinite(out).all()
    default = ssmblocks.create_model("test_mambair_sr")
    assert default.layers[0].residual_group.blocks[0].self_attention.x_proj_weight.shape[0] == 4
