"""MambaCSR family against the official implementation: goldens (square and non-square), full-size key listings,
the official quirks both ways, any input size, bad input, and the weight sources up to the network boundary."""

from __future__ import annotations

import dataclasses
import json
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hf_constants

import ssmblocks
from ssmblocks import PretrainedUnavailableError
from ssmblocks._builder import detect_checkpoint
from ssmblocks._weights import resolve_weights
from ssmblocks.scan_orders import cross_scale_scan
from ssmblocks.zoo.mambacsr import OfficialCrossScaleOrder, official_column_reverse
from tests._golden import GOLDEN, assert_matches_golden, golden, golden_file, golden_params, needs_golden

EXPECTED_ARCH = {"mambacsr_wo_tiny": "mambacsr_wo", "mambacsr_final_tiny": "mambacsr",
                 "mambacsr_final_tiny_nonsquare": "mambacsr"}


@needs_golden
def test_every_golden_is_covered():
    assert {p.stem for p in GOLDEN.glob("mambacsr*.json")} == set(EXPECTED_ARCH)


@pytest.mark.parametrize("stem", golden_params(sorted(EXPECTED_ARCH)))
def test_official_checkpoint_reproduces_official_output(stem):
    meta, _ = golden(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"))   # BasicSR params/params_ema, family detected
    assert model.architecture == EXPECTED_ARCH[stem]
    assert model.pretrained_cfg.tag == "custom"                  # tiny sizes: no published numbers attached
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert_matches_golden(model, stem)


@pytest.mark.parametrize(("stem", "changes"), [
    pytest.param("mambacsr_final_tiny", False, marks=needs_golden("mambacsr_final_tiny")),
    pytest.param("mambacsr_final_tiny_nonsquare", True, marks=needs_golden("mambacsr_final_tiny_nonsquare"))])
def test_corrected_cross_scale_reverse_changes_only_non_square_outputs(stem, changes):
    _, data = golden(stem)
    official = ssmblocks.load_checkpoint(golden_file(stem, "pth")).double()
    args = {**official.model_args, "official_cross_scale_reverse": False}
    corrected = ssmblocks.create_model("mambacsr", checkpoint_path=golden_file(stem, "pth"), **args).eval().double()
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


@needs_golden("mambacsr_final_tiny")
def test_halved_x05_windows_change_the_x05_group():
    # On the tiny golden the x0.5 branch moves the final output by only ~1e-11 (its weights are small), so the
    # option is checked on the x0.5 group itself, with the golden's perturbed weights.
    path = golden_file("mambacsr_final_tiny", "pth")
    official = ssmblocks.load_checkpoint(path)
    args = {**official.model_args, "official_coarse_windows": False}
    corrected = ssmblocks.create_model("mambacsr", checkpoint_path=path, **args).eval()
    maps = torch.rand(1, official.model_args["embed_dim"], 16, 16)    # w32 pads 16x16 to 32x32; w16 does not
    with torch.no_grad():
        assert (official.layers2[0](maps) - corrected.layers2[0](maps)).abs().max().item() > 1e-5
        assert torch.equal(official.layers[0](maps), corrected.layers[0](maps))   # the main groups unchanged


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
DRIVE_FOLDER_ID = "1595CDawG7MIiNgMAAPcAtDpM_PiPKmGS"          # the official README's weights link
RELEASES = [("mambacsr", "test_mambacsr", "Cross-scale-QF10-x4.pth"),
            ("mambacsr_wo", "test_mambacsr_wo", "Dual-Interleaved-QF10-x4.pth")]


def _official_release(tiny: str) -> tuple[torch.nn.Module, dict]:
    """A CI-size model and its checkpoint in the official BasicSR format (params_ema is what the official test
    loads and what ssmblocks reads first)."""
    torch.manual_seed(0)
    ema, raw = ssmblocks.create_model(tiny), ssmblocks.create_model(tiny)
    return ema, {"params": raw.state_dict(), "params_ema": ema.state_dict()}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(("name", "tiny", "filename"), RELEASES)
def test_pretrained_weights_come_from_the_authors_drive_folder(fake_gdown, name, tiny, filename, tmp_path, monkeypatch):
    """create_model(name, pretrained=True): the folder is listed, the release picked by name, downloaded into the
    cache, loaded strictly; the second call reads the cache without gdown."""
    source, checkpoint = _official_release(tiny)
    other = {k: v + 1 for k, v in checkpoint["params_ema"].items()}
    gdown = fake_gdown(DRIVE_FOLDER_ID, {"README.txt": ("ID-README", {}), "x2/" + filename: ("ID-X2", other),
                                        filename: ("ID-RELEASE", checkpoint),
                                        "Cross-scale-QF30-x4.pth": ("ID-QF30", other)})
    monkeypatch.setitem(sys.modules, "gdown", gdown)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    tiny_args = source.model_args                               # the registered name, at CI size
    with pytest.raises(PretrainedUnavailableError, match=r"has several files named"):
        ssmblocks.create_model(name, pretrained=True, cache_dir=tmp_path, **tiny_args)
    del gdown.files["x2/" + filename]
    model = ssmblocks.create_model(name, pretrained=True, cache_dir=tmp_path, **tiny_args)
    assert gdown.calls[-2:] == [("list", DRIVE_FOLDER_ID, True), ("download", "ID-RELEASE")]
    assert _same_weights(model, source) and (tmp_path / "gdrive" / DRIVE_FOLDER_ID / filename).is_file()
    assert model.pretrained_cfg.name == f"{name}.qf10_x4"
    monkeypatch.setitem(sys.modules, "gdown", None)             # gdown gone, offline: the cache answers
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert _same_weights(ssmblocks.create_model(name, pretrained=True, cache_dir=tmp_path, **tiny_args), source)


def _advice(name: str, filename: str) -> list[str]:
    return [f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}", f"Download {filename}",
            f"ssmblocks.create_model('{name}.qf10_x4', checkpoint_path='path/to/{filename}')"]


@pytest.mark.parametrize(("name", "tiny", "filename"), RELEASES)
def test_without_gdown_or_offline_the_error_explains_the_manual_download(fake_gdown, name, tiny, filename, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)                     # import gdown -> ImportError
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(ssmblocks.get_pretrained_cfg(name), cache_dir=tmp_path)
    assert all(part in str(err.value) for part in [*_advice(name, filename), "pip install 'gdown>=5.1'"])
    gdown = fake_gdown(DRIVE_FOLDER_ID, {filename: ("ID", {})})
    monkeypatch.setitem(sys.modules, "gdown", gdown)                    # installed, but HF_HUB_OFFLINE is set
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(ssmblocks.get_pretrained_cfg(name), cache_dir=tmp_path)
    assert all(part in str(err.value) for part in [*_advice(name, filename), "HF_HUB_OFFLINE is set"])
    assert gdown.calls == [] and not list(tmp_path.rglob("*.pth"))


def test_a_failing_gdown_or_a_missing_file_gives_a_clear_error(fake_gdown, tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    cfg = ssmblocks.get_pretrained_cfg("mambacsr")

    def unreachable(**kwargs):
        raise OSError("Failed to retrieve folder contents")

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download_folder=unreachable))
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(cfg, cache_dir=tmp_path)
    message = str(err.value)
    assert "could not list the folder (OSError: Failed to retrieve folder contents)" in message
    assert all(part in message for part in _advice("mambacsr", "Cross-scale-QF10-x4.pth"))
    listing = fake_gdown(DRIVE_FOLDER_ID, {"Cross-scale-QF30-x4.pth": ("A", {}),
                                           "x2/Cross-scale-QF10-x2.pth": ("B", {})})
    monkeypatch.setitem(sys.modules, "gdown", listing)
    expected = (r"the Google Drive folder .*1595CDawG7MIiNgMAAPcAtDpM_PiPKmGS has no file named "
                r"Cross-scale-QF10-x4\.pth; it holds: Cross-scale-QF30-x4\.pth, x2/Cross-scale-QF10-x2\.pth")
    with pytest.raises(PretrainedUnavailableError, match=expected):
        resolve_weights(cfg, cache_dir=tmp_path)
    assert listing.calls == [("list", DRIVE_FOLDER_ID, True)]           # nothing downloaded


def test_a_drive_file_with_the_wrong_sha256_is_discarded(fake_gdown, tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    _, checkpoint = _official_release("test_mambacsr")
    gdown = fake_gdown(DRIVE_FOLDER_ID, {"Cross-scale-QF10-x4.pth": ("ID", checkpoint)})
    monkeypatch.setitem(sys.modules, "gdown", gdown)
    cfg = dataclasses.replace(ssmblocks.get_pretrained_cfg("mambacsr"), sha256="0" * 64)
    with pytest.raises(PretrainedUnavailableError, match=r"does not have the expected sha256 0{64} but [0-9a-f]{64}"):
        resolve_weights(cfg, cache_dir=tmp_path)
    assert not list((tmp_path / "gdrive").iterdir())


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
