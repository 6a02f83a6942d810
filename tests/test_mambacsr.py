"""MambaCSR family against the official implementation: goldens (square and non-square), full-size key listings,
the official quirks both ways, any input size, bad input, and the weight sources up to the network boundary."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import ssmblocks
from ssmblocks import PretrainedUnavailableError
from ssmblocks._builder import detect_checkpoint
from ssmblocks._hub import resolve_weights
from ssmblocks.scan_orders import cross_scale_scan
from ssmblocks.zoo.mambacsr import OfficialCrossScaleOrder, official_column_reverse
from tests._golden import GOLDEN, assert_matches_golden, golden, needs_golden

EXPECTED_ARCH = {"mambacsr_wo_tiny": "mambacsr_wo", "mambacsr_final_tiny": "mambacsr",
                 "mambacsr_final_tiny_nonsquare": "mambacsr"}


@needs_golden
def test_every_golden_is_covered():
    assert {p.stem for p in GOLDEN.glob("mambacsr*.json")} == set(EXPECTED_ARCH)


@needs_golden
@pytest.mark.parametrize("stem", sorted(EXPECTED_ARCH))
def test_official_checkpoint_reproduces_official_output(stem):
    meta, _ = golden(stem)
    model = ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth")   # BasicSR params/params_ema, family detected
    assert model.architecture == EXPECTED_ARCH[stem]
    assert model.pretrained_cfg.tag == "custom"                  # tiny sizes: no published numbers attached
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert_matches_golden(model, stem)


@needs_golden
@pytest.mark.parametrize(("stem", "changes"), [("mambacsr_final_tiny", False),
                                                ("mambacsr_final_tiny_nonsquare", True)])
def test_corrected_cross_scale_reverse_changes_only_non_square_outputs(stem, changes):
    _, data = golden(stem)
    official = ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth").double()
    args = {**official.model_args, "official_cross_scale_reverse": False}
    corrected = ssmblocks.create_model("mambacsr", checkpoint_path=GOLDEN / f"{stem}.pth", **args).eval().double()
    with torch.no_grad():
        diff = (corrected(data["input"]) - data["output"]).abs().max().item()
    if changes:   # the golden README measured 1.4e-3 for this case
        assert 1e-3 < diff < 2e-3
    else:
        assert diff <= 1e-8


@needs_golden
@pytest.mark.parametrize("listing", ["mambacsr_final", "mambacsr_wo"])
def test_full_size_key_listing_maps_one_to_one(listing):
    meta = json.loads((GOLDEN / "keys" / f"{listing}.json").read_text())
    official = {k: torch.empty(shape, device="meta") for k, shape in meta["keys"].items()}
    found = detect_checkpoint(official)
    assert found.architecture == {"mambacsr_final": "mambacsr", "mambacsr_wo": "mambacsr_wo"}[listing]
    with torch.device("meta"):
        model = ssmblocks.create_model(found.architecture)          # the defaults are the release
        detected = ssmblocks.create_model(found.architecture, **found.model_args)
    assert json.dumps(detected.model_args, sort_keys=True) == json.dumps(model.model_args, sort_keys=True)
    ours = model.state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in official.items()}
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]


def test_published_parameter_counts():
    with torch.device("meta"):
        final, wo = ssmblocks.create_model("mambacsr"), ssmblocks.create_model("mambacsr_wo")
    assert sum(p.numel() for p in final.parameters()) == 22_051_842
    assert sum(p.numel() for p in wo.parameters()) == 18_372_603


# ---- the official quirks and the scan schedules -----------------------------------------------------------------
def test_official_column_reverse_matches_the_documented_map():
    maps = torch.arange(32 * 48.0).view(1, 32, 48)                 # value = index of the source pixel
    out = official_column_reverse(maps, 16)[0]
    # golden README, 32x48 example: out(0,16) <- pix(16,16), out(0,32) <- pix(1,0), out(1,0) <- pix(17,16)
    assert out[0, 16] == 16 * 48 + 16 and out[0, 32] == 1 * 48 + 0 and out[1, 0] == 17 * 48 + 16
    assert sorted(out.flatten().tolist()) == maps.flatten().tolist()  # a permutation
    square = torch.rand(2, 3, 32, 32)
    assert torch.equal(official_column_reverse(square, 16), square)


def test_official_cross_scale_order_differs_from_the_correct_one_on_column_paths_only():
    fine, coarse = torch.rand(1, 2, 32, 48), torch.rand(1, 2, 16, 24)
    correct, official = cross_scale_scan(16), OfficialCrossScaleOrder(16)
    paths = correct.scan(fine, coarse)
    assert torch.equal(official.scan(fine, coarse), paths)
    ours, theirs = correct.merge(paths, (32, 48)), official.merge(paths, (32, 48))
    assert torch.equal(ours[:, :2], theirs[:, :2]) and torch.equal(ours[:, :2], fine[:, None].expand(-1, 2, -1, -1, -1))
    assert not torch.equal(ours[:, 2:], theirs[:, 2:])
    assert torch.equal(official.merge_sum(paths, (32, 48)), theirs.sum(1))


def _coarse_lengths(**kwargs) -> list[int]:
    """Sequence length of every block of the x0.5 group on a 32x32 half-size map (training patches are 64x64)."""
    with torch.device("meta"):
        model = ssmblocks.create_model("mambacsr", **kwargs)
    return [block.self_attention.scan_order.seq_len((32, 32)) for block in model.layers2[0].residual_group["blocks"]]


def test_x05_branch_w64_zero_padding_is_the_default_and_halved_windows_one_argument_away():
    assert _coarse_lengths() == [1024, 1024, 4096, 4096, 1024, 1024]      # w8, c_w8, w64 (3/4 padding), c_w64, ...
    assert _coarse_lengths(official_coarse_windows=False) == [1024] * 6   # w4, c_w4, w32, c_w32: no padding


@needs_golden
def test_halved_x05_windows_change_the_x05_group():
    # On the tiny golden the x0.5 branch moves the final output by only ~1e-11 (its weights are small), so the
    # option is checked on the x0.5 group itself, with the golden's perturbed weights.
    path = GOLDEN / "mambacsr_final_tiny.pth"
    official = ssmblocks.load_checkpoint(path)
    args = {**official.model_args, "official_coarse_windows": False}
    corrected = ssmblocks.create_model("mambacsr", checkpoint_path=path, **args).eval()
    tokens = torch.rand(1, 16, 16, official.model_args["embed_dim"])    # w32 pads 16x16 to 32x32; w16 does not
    with torch.no_grad():
        assert (official.layers2[0](tokens) - corrected.layers2[0](tokens)).abs().max().item() > 1e-5
        assert torch.equal(official.layers[0](tokens), corrected.layers[0](tokens))   # the main groups unchanged


def test_schedules_follow_the_official_rules():
    with torch.device("meta"):
        final = ssmblocks.create_model("mambacsr")
        wo4 = ssmblocks.create_model("mambacsr_wo", dual_interleaved_scan=False, depths=(2,))
        small = ssmblocks.create_model("mambacsr", depths=(4,), depths2=(4,))
    lengths = [b.self_attention.scan_order.seq_len((20, 20)) for b in final.layers[0].residual_group["blocks"]]
    assert lengths == [576, 576, 4096, 4096, 576, 576]                  # w8 pads 20 -> 24, w64 pads 20 -> 64
    assert all(b.self_attention.x_proj_weight.shape[0] == 4 for b in wo4.layers[0].residual_group["blocks"])
    # Final groups with fewer than 6 blocks scan 32-windows only (also the x0.5 group)
    for group in (small.layers[0], small.layers2[0]):
        assert {b.self_attention.scan_order.seq_len((20, 20)) for b in group.residual_group["blocks"]} == {1024}


# ---- any size, bad input ----------------------------------------------------------------------------------------
def test_any_size_is_padded_to_multiples_of_16_and_cropped_back():
    model = ssmblocks.create_model("test_mambacsr").eval()
    x = torch.rand(1, 3, 13, 21)
    padded = F.pad(x, (0, 11, 0, 3), mode="replicate")                   # 16 x 32
    with torch.no_grad():
        out, reference = model(x), model(padded)
    assert out.shape == (1, 3, 52, 84)
    assert torch.equal(out, reference[..., :52, :84])


def test_bad_input_is_refused_with_a_clear_error():
    model = ssmblocks.create_model("test_mambacsr")
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        model(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"expects images \(B, C, H, W\), got a 5-D tensor"):
        model(torch.rand(1, 2, 3, 16, 16))
    with pytest.raises(TypeError, match=r"float images in \[0, 1\]"):
        model(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


# ---- pretrained cfgs and weight sources ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "filename"), [("mambacsr", "Cross-scale-QF10-x4.pth"),
                                                ("mambacsr_wo", "Dual-Interleaved-QF10-x4.pth")])
def test_pretrained_weights_explain_the_manual_drive_download(name, filename):
    cfg = ssmblocks.get_pretrained_cfg(name)
    assert cfg.tag == "qf10_x4" and cfg.protocol == "mambacsr" and cfg.scale == 4
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(cfg)
    message = str(err.value)
    assert "https://drive.google.com/drive/folders/1595CDawG7MIiNgMAAPcAtDpM_PiPKmGS" in message
    assert f"Download {filename}" in message
    assert f"ssmblocks.create_model('{name}.qf10_x4', checkpoint_path='path/to/{filename}')" in message


def test_published_numbers_are_in_the_cfg():
    metrics = ssmblocks.get_pretrained_cfg("mambacsr").metrics
    assert metrics["Set5 PSNR/SSIM"] == "25.20/0.7209" and metrics["Urban100 PSNR/SSIM"] == "22.26/0.6081"
    assert "crop_border 4" in ssmblocks.get_pretrained_cfg("mambacsr").test_protocol


# ---- blocks ---------------------------------------------------------------------------------------------------
def test_biattn_gate_from_channel_first_paths_equals_the_token_layout_one():
    from ssmblocks.blocks.biattn import BiAttn

    torch.manual_seed(0)
    attn = BiAttn(16).double()
    for p in attn.parameters():
        p.data += 0.1 * torch.randn_like(p)
    tokens = torch.randn(2, 3, 40, 16, dtype=torch.float64) * 3 + 1            # (B, K, N, C)
    real = torch.rand(40) < 0.6                                                  # the tokens that count
    weights = (real.double() / real.sum()).view(1, 1, 1, 40)
    pooled = attn.pooled_channel_first(tokens.transpose(-1, -2), weights)
    expected = attn.norm(tokens[..., real, :]).mean(-2)
    torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-12)
    gated = attn(tokens[..., real, :])
    torch.testing.assert_close(gated, tokens[..., real, :] * attn.gate(expected).unsqueeze(-2), rtol=0, atol=1e-12)
