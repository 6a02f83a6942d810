"""MedVSR against the official implementation (golden, key listing, parameter counts), its official quirk both
ways, the Hub source through a hand-built cache, the video building blocks' contracts, and bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from huggingface_hub import constants as hf_constants

import ssmblocks
from ssmblocks._builder import detect_checkpoint
from ssmblocks._weights import PretrainedUnavailableError
from ssmblocks.blocks import CSSB, CrossMamba2, GatedMLP, Mamba2, RMSNormGated
from ssmblocks.necks import SpyNet
from ssmblocks.ops import flow_warp, use_backend
from tests._golden import GOLDEN, assert_matches_golden, golden, golden_file, needs_golden


def _clip(frames=3, height=20, width=24, seed=0):
    return torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


# ---- parity with the official code -------------------------------------------------------------------------------
@needs_golden("medvsr_tiny")
def test_official_checkpoint_reproduces_official_output():
    meta, _ = golden("medvsr_tiny")
    model = ssmblocks.load_checkpoint(golden_file("medvsr_tiny", "pth"))      # official format, family detected
    assert model.architecture == "medvsr" and not model.training
    assert model.mid_channels == meta["official_kwargs"]["mid_channels"] == 32
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert_matches_golden(model, "medvsr_tiny")


@needs_golden
def test_released_size_matches_the_official_key_listing_one_to_one():
    listing = json.loads((GOLDEN / "keys" / "medvsr.json").read_text())
    with torch.device("meta"):
        model = ssmblocks.create_model("medvsr")
    state = model.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == listing["keys"]
    assert sum(p.numel() for p in model.parameters()) == listing["param_count"] == 7_162_385
    assert sum(p.numel() for k, p in model.named_parameters() if not k.startswith("spynet.")) == 5_722_085
    assert sorted(k for k, _ in model.named_buffers()) == sorted(listing["buffers"])
    # detection of the released listing gives the released architecture with every default
    found = detect_checkpoint({k: torch.empty(s, device="meta") for k, s in listing["keys"].items()})
    assert found.architecture == "medvsr"
    assert ssmblocks.create_model("medvsr", **found.model_args).model_args == model.model_args


# ---- the official quirk, both ways ---------------------------------------------------------------------------------
def _alignment_inputs(second_order_dcn: bool) -> list[tuple[torch.Tensor, ...]]:
    model = ssmblocks.create_model("test_medvsr", second_order_dcn=second_order_dcn).eval()
    for module in model.deform_align.values():      # non-zero offsets, so that the flows matter
        torch.nn.init.normal_(module.conv_offset[-1].weight, std=0.01)
    calls = []
    for module in model.deform_align.values():
        module.register_forward_hook(lambda m, args, out: calls.append(args))
    with torch.no_grad():
        model(_clip(frames=4, height=16, width=16))
    return calls


def test_official_alignment_gets_the_first_order_feature_and_flow_twice():
    calls = _alignment_inputs(second_order_dcn=False)
    assert len(calls) == 4 * 3                                 # 4 branches x (T - 1) aligned steps
    for x, _, flow_1, flow_2 in calls:
        half = x.shape[1] // 2
        assert torch.equal(x[:, :half], x[:, half:]) and torch.equal(flow_1, flow_2)


def test_second_order_dcn_gets_the_t_minus_2_feature_and_composed_flow():
    calls = _alignment_inputs(second_order_dcn=True)
    second_steps = [args for i, args in enumerate(calls) if i % 3 > 0]   # steps i >= 2 of each branch
    for x, _, flow_1, flow_2 in second_steps:
        half = x.shape[1] // 2
        assert not torch.equal(x[:, :half], x[:, half:]) and not torch.equal(flow_1, flow_2)
    for x, _, _, flow_2 in calls[::3]:                         # step i = 1: zeros in the second-order slots
        assert x[:, x.shape[1] // 2:].abs().max() == 0 and flow_2.abs().max() == 0


# ---- weights from the authors' Hub repo, offline ----------------------------------------------------------------
@needs_golden("medvsr_tiny")
def test_hub_source_resolves_the_single_pth_of_a_hand_built_cache(hand_built_cache, tmp_path, monkeypatch):
    cfg = ssmblocks.get_pretrained_cfg("medvsr")
    assert (cfg.hf_hub_id, cfg.hf_hub_filename) == ("jeffrey423/MedVSR", "*.pth")
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "net_g_latest.pth").write_bytes(golden_file("medvsr_tiny", "pth").read_bytes())   # any name
    (folder / "README.md").write_text("model card")
    cache = tmp_path / "hf"
    hand_built_cache(cache, "jeffrey423/MedVSR", folder, ["README.md", "net_g_latest.pth"])
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    model = ssmblocks.create_model("medvsr", pretrained=True, cache_dir=cache, mid_channels=32, num_blocks=1)
    official = torch.load(golden_file("medvsr_tiny", "pth"), map_location="cpu", weights_only=True)["params"]
    state = model.state_dict()
    assert set(state) == set(official) and all(torch.equal(state[k], v) for k, v in official.items())


def test_hub_source_refuses_an_ambiguous_snapshot(hand_built_cache, tmp_path, monkeypatch):
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("a.pth", "b.pth"):
        (folder / name).write_bytes(b"not used")
    cache = tmp_path / "hf"
    hand_built_cache(cache, "jeffrey423/MedVSR", folder, ["a.pth", "b.pth"])
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedUnavailableError, match=r"exactly one file matching '\*\.pth', found a\.pth, b\.pth"):
        ssmblocks.create_model("medvsr", pretrained=True, cache_dir=cache)


# ---- building blocks -----------------------------------------------------------------------------------------------
def test_spynet_keys_are_basicsr_keys_and_flows_are_pixels():
    net = SpyNet()
    assert len(net.state_dict()) == 2 + 6 * 10
    assert tuple(net.state_dict()["basic_module.5.basic_module.8.weight"].shape) == (2, 16, 7, 7)
    frames = torch.rand(2, 3, 40, 56)
    flow = net(frames, frames.flip(0))
    assert flow.shape == (2, 2, 40, 56) and torch.isfinite(flow).all()


def _spynet_as_basicsr(net: SpyNet, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
    """BasicSR's SpyNet procedure written out step by step (basicsr/archs/spynet_arch.py): resize to multiples of
    32, zero flow at half the coarsest size, 2x upsampling with a replicate pad where a level is odd, flow rescaled
    by size / resized size."""
    height, width = ref.shape[-2:]
    size = (math.ceil(height / 32) * 32, math.ceil(width / 32) * 32)
    refs = [(torch.nn.functional.interpolate(ref, size=size, mode="bilinear") - net.mean) / net.std]
    supps = [(torch.nn.functional.interpolate(supp, size=size, mode="bilinear") - net.mean) / net.std]
    for _ in range(5):
        refs.insert(0, torch.nn.functional.avg_pool2d(refs[0], 2))
        supps.insert(0, torch.nn.functional.avg_pool2d(supps[0], 2))
    flow = ref.new_zeros(ref.shape[0], 2, refs[0].shape[2] // 2, refs[0].shape[3] // 2)
    for level in range(6):
        up = torch.nn.functional.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2
        if up.shape[2] != refs[level].shape[2]:
            up = torch.nn.functional.pad(up, (0, 0, 0, 1), mode="replicate")
        if up.shape[3] != refs[level].shape[3]:
            up = torch.nn.functional.pad(up, (0, 1, 0, 0), mode="replicate")
        warped = flow_warp(supps[level], up, padding_mode="border")
        flow = net.basic_module[level](torch.cat([refs[level], warped, up], 1)) + up
    flow = torch.nn.functional.interpolate(flow, size=(height, width), mode="bilinear")
    return torch.stack([flow[:, 0] * width / size[1], flow[:, 1] * height / size[0]], dim=1)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (96, 64), (50, 80), (33, 130)])
def test_spynet_follows_basicsr_at_odd_pyramid_levels_and_resized_frames(height, width):
    torch.manual_seed(0)
    net = SpyNet().double()
    ref, supp = torch.rand(2, 3, height, width, dtype=torch.float64), torch.rand(2, 3, height, width,
                                                                                dtype=torch.float64)
    with torch.no_grad():
        expected = _spynet_as_basicsr(net, ref, supp)
        assert expected.abs().max() > 1e-3                      # a flow, not zeros
        torch.testing.assert_close(net(ref, supp), expected, rtol=0, atol=1e-12)


def test_cross_mixer_takes_c_from_the_support_only():
    torch.manual_seed(0)
    mixer = CrossMamba2(32, d_state=8, expand=1, headdim=8, share_conv1d=False, pe_window=4).double()
    u, s = torch.randn(2, 16, 32, dtype=torch.float64), torch.randn(2, 16, 32, dtype=torch.float64)
    out = mixer(u, s)
    # zeroing in_proj_b leaves C = silu(conv bias) constant: the output then ignores the support entirely
    with torch.no_grad():
        mixer.in_proj_b.weight.zero_()
    torch.testing.assert_close(mixer(u, s), mixer(u, torch.randn_like(s)), rtol=0, atol=0)
    assert not torch.allclose(out, mixer(u, s))


def test_mamba2_mixers_match_the_sequential_scan():
    torch.manual_seed(0)
    x = torch.randn(2, 40, 32, dtype=torch.float64)
    for output in ("gate", "cat"):
        mixer = Mamba2(32, d_state=8, expand=2, headdim=8, chunk_size=16, output=output).double()
        with use_backend("ssd_scan", "reference"):
            ref = mixer(x)
        torch.testing.assert_close(mixer(x), ref, rtol=0, atol=1e-12)


def test_gated_rmsnorm_formula_and_gated_mlp_halves():
    torch.manual_seed(0)
    x, z = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    norm = RMSNormGated(8).double()
    gated = x * torch.nn.functional.silu(z)
    torch.testing.assert_close(norm(x, z), gated / gated.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt())
    after = RMSNormGated(8, norm_before_gate=True, group_size=4).double()
    groups = x.view(3, 2, 4)
    expected = (groups / groups.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt()).view(3, 8)
    torch.testing.assert_close(after(x, z), expected * torch.nn.functional.silu(z))
    mlp = GatedMLP(8, hidden_features=6, gated=True).double()
    value, gate = mlp.fc1(x).chunk(2, dim=-1)
    torch.testing.assert_close(mlp(x), mlp.fc2(value * torch.nn.functional.gelu(gate)))


def test_cssb_accepts_sizes_that_are_not_window_multiples():
    block = CSSB(32, window_size=8, headdim=8).eval()
    x, y = torch.rand(1, 32, 13, 19), torch.rand(1, 32, 13, 19)
    assert block(x, y).shape == (1, 32, 13, 19)
    with pytest.raises(ValueError, match="two maps"):
        block(x, y[..., :-1])


# ---- sizes and bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("height", "width"), [(20, 24), (20, 70), (66, 9)])
def test_frames_smaller_than_spynets_minimum_are_padded_for_the_flow(height, width):
    model = ssmblocks.create_model("test_medvsr").eval()
    clip = _clip(frames=2, height=height, width=width)
    backward, forward = model.compute_flows(clip)
    assert backward.shape == forward.shape == (1, 1, 2, height, width)
    pads = (0, max(64 - width, 0), 0, max(64 - height, 0))
    padded = torch.nn.functional.pad(clip[0], pads, mode="replicate")
    torch.testing.assert_close(backward[:, 0], model.spynet(padded[:1], padded[1:])[..., :height, :width])
    torch.testing.assert_close(forward[:, 0], model.spynet(padded[1:], padded[:1])[..., :height, :width])
    with torch.no_grad():
        assert model(clip).shape == (1, 2, 3, 4 * height, 4 * width)


@pytest.mark.parametrize(("clip", "message"), [
    (torch.rand(1, 3, 16, 16), r"expects video \(B, T, C, H, W\), got a 4-D tensor"),
    (torch.rand(1, 1, 3, 16, 16), "needs at least 2 frames, got T=1"),
    (torch.randint(0, 255, (1, 2, 3, 16, 16), dtype=torch.uint8), "float images in"),
    (torch.rand(1, 2, 1, 16, 16), "expects 3 channels per frame, got 1"),
])
def test_bad_clips_are_refused_with_a_message(clip, message):
    model = ssmblocks.create_model("test_medvsr")
    with pytest.raises((ValueError, TypeError), match=message):
        model(clip)


def test_mismatched_frame_sizes_are_refused():
    with pytest.raises(ValueError, match="two frames"):
        SpyNet()(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 20))
