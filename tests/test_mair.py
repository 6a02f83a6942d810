"""MaIR / MaIRUNet against the official implementation: goldens through load_checkpoint, full-size key listings,
the official quirk both ways, SSA and the SS2D merge hook, any input size, and the Drive folder up to the network."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hf_constants

import ssmblocks
from ssmblocks import PretrainedUnavailableError
from ssmblocks._builder import detect_checkpoint
from ssmblocks._weights import resolve_weights
from ssmblocks.blocks import SS2D, SSA, BiAttnMerge, LocalSS2D, MaIRBlock, MaIRMixer, PathMerge, pixel_means
from ssmblocks.scan_orders import Windowed, bidirectional, cross_scan, nested_s_scan
from tests._golden import GOLDEN, assert_matches_golden, golden, golden_file, golden_meta, golden_params, needs_golden
from tests._official_tiling import official_split_test

EXPECTED_ARCH = {"mair_sr_x2_tiny": "mair_x2", "mair_sr_x3_tiny": "mair_x3", "mair_light_s_x4_tiny": "mair_light_s_x4",
                 "mair_light_t_x2_tiny": "mair_light_t_x2", "mair_dn_tiny": "mair_dn",
                 "mairunet_tiny": "mairunet_realdn"}
LISTINGS = {"mair_sr_x2": "mair_x2", "mair_sr_x3": "mair_x3", "mair_sr_x4": "mair_x4",
            "mair_light_s_x2": "mair_light_s_x2", "mair_light_s_x3": "mair_light_s_x3",
            "mair_light_s_x4": "mair_light_s_x4", "mair_light_t_x2": "mair_light_t_x2",
            "mair_light_t_x3": "mair_light_t_x3", "mair_light_t_x4": "mair_light_t_x4", "mair_cdn": "mair_dn",
            "mairunet_realdn": "mairunet_realdn", "mairunet_motiondeblur": "mairunet_realdn",
            "mairunet_dehaze": "mairunet_dehaze"}


@needs_golden
def test_every_golden_and_listing_is_covered():
    assert {p.stem for p in GOLDEN.glob("mair*_tiny.json")} == set(EXPECTED_ARCH)
    assert {p.stem for p in (GOLDEN / "keys").glob("mair*.json")} == set(LISTINGS)


@pytest.mark.parametrize("stem", golden_params(sorted(EXPECTED_ARCH)))
def test_official_checkpoint_reproduces_official_output(stem):
    meta = golden_meta(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"))        # BasicSR {'params': ...}, family detected
    assert model.architecture == EXPECTED_ARCH[stem]
    assert model.model_args["scan_len"] == meta["official_kwargs"]["scan_len"]     # the detection rule
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert_matches_golden(model, stem)


@needs_golden
@pytest.mark.parametrize("listing", sorted(LISTINGS))
def test_full_size_key_listing_builds_exactly(listing):
    meta = json.loads((GOLDEN / "keys" / f"{listing}.json").read_text())
    official = {k: torch.empty(shape, device="meta") for k, shape in meta["keys"].items()}
    found = detect_checkpoint(official)
    assert found.architecture == LISTINGS[listing]
    assert found.model_args["scan_len"] == meta["official_kwargs"]["scan_len"]
    with torch.device("meta"):
        model = ssmblocks.create_model(found.architecture)           # the registered defaults are the release
        detected = ssmblocks.create_model(found.architecture, **found.model_args)
    assert json.dumps(detected.model_args, sort_keys=True) == json.dumps(model.model_args, sort_keys=True)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape)
                                                                          for k, v in official.items()}
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]


def test_registered_parameter_counts():
    counts = {"mair_x2": 19_444_247, "mair_x3": 19_628_887, "mair_x4": 19_591_959, "mair_light_s_x2": 1_354_680,
              "mair_light_s_x3": 1_362_795, "mair_light_s_x4": 1_374_156, "mair_light_t_x2": 877_752,
              "mair_light_t_x3": 885_867, "mair_light_t_x4": 897_228, "mair_dn": 14_089_035,
              "mairunet_realdn": 26_293_296, "mairunet_deblur": 26_293_296, "mairunet_dehaze": 3_404_376}
    for name, count in counts.items():
        with torch.device("meta"):
            model = ssmblocks.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == count, name


@needs_golden("mairunet_tiny")
def test_unet_release_as_ckpt_loads(tmp_path):
    path = tmp_path / "MaIR_RealDN.ckpt"
    path.write_bytes(golden_file("mairunet_tiny", "pth").read_bytes())    # the .ckpt releases hold {'params': sd}
    model = ssmblocks.load_checkpoint(path)
    assert model.family == "MaIRUNet"
    assert_matches_golden(model, "mairunet_tiny", fp64=False)


# ---- the official quirk and the scan settings ---------------------------------------------------------------------
@needs_golden("mair_sr_x2_tiny")
def test_raster_fallback_quirk_both_ways():
    """Shifted blocks of a 3-row image (scan_len 8, shift 4): the transposed sequences are raster orders officially;
    the corrected option snakes them and changes the output; on the golden size (no side below 4) nothing moves."""
    model = ssmblocks.load_checkpoint(golden_file("mair_sr_x2_tiny", "pth")).double()
    corrected = ssmblocks.create_model("mair_x2", **{**model.model_args, "official_raster_fallback": False})
    corrected.load_state_dict(model.state_dict())
    corrected.eval().double()
    _, data = golden("mair_sr_x2_tiny")
    narrow = torch.rand(1, 3, 3, 12, dtype=torch.float64)
    with torch.no_grad():
        assert (corrected(data["input"]) - data["output"]).abs().max() <= 1e-8
        assert (corrected(narrow) - model(narrow)).abs().max() > 1e-9


def test_scan_len_changes_the_output_but_no_weight():
    a = _perturbed(ssmblocks.create_model("test_mair"), 0.1).eval()
    b = ssmblocks.create_model("test_mair", scan_len=4).double().eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 10, 12, dtype=torch.float64)
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max() > 1e-6
    assert a.layers[0].blocks[1].self_attention.scan_order == nested_s_scan(8, shifted=True)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (7, 13)])
def test_any_input_size(shape):
    model = ssmblocks.create_model("test_mair").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, *shape)).shape == (1, 3, 2 * shape[0], 2 * shape[1])


def test_bad_input_is_named():
    model = ssmblocks.create_model("test_mair")
    with pytest.raises(ValueError, match=r"expects images \(B, C, H, W\)"):
        model(torch.rand(3, 8, 8))
    block = MaIRBlock(8, d_state=2)
    with pytest.raises(ValueError, match=r"MaIRBlock expects \(B, H, W, C\) input with C = 8"):
        block(torch.rand(1, 8, 5, 6))


# ---- SSA and the SS2D merge hook (issue #26) ----------------------------------------------------------------------
def _perturbed(module: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module.double()


def test_ssa_formula_official_map_form_and_path_form_agree():
    ssa = _perturbed(SSA(5, num_paths=4))
    order, shape = nested_s_scan(4), (6, 7)
    paths = torch.randn(2, 4, 5, 42, dtype=torch.float64)
    maps = order.merge(paths, shape)                                             # (B, K, D, H, W)
    means = maps.mean((-2, -1))                                                  # (B, K, D)
    w, b = ssa.gating[1].weight[:, :, 0, 0], ssa.gating[1].bias                  # (4D, 4), (4D,)
    expected = torch.zeros(2, 5, *shape, dtype=torch.float64)
    for d in range(5):                   # the formula of shared/reference/mair.md, one inner channel at a time
        for k in range(4):
            gate = torch.sigmoid(sum(w[4 * d + k, j] * means[:, j, d] for j in range(4)) + b[4 * d + k])
            expected[:, d] += gate[:, None, None] * maps[:, k, d]
    torch.testing.assert_close(ssa(paths, order, shape), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(ssa.forward_map(maps.flatten(1, 2)), expected, rtol=0, atol=1e-12)


def test_pixel_means_ignore_padding_tokens():
    order, shape = bidirectional(Windowed(4)), (5, 6)                           # padded to 8 x 8 tokens
    paths = order.scan(torch.randn(1, 3, *shape, dtype=torch.float64)) + 7.0    # padding tokens read 7
    expected = order.merge(paths, shape).mean((-2, -1))
    torch.testing.assert_close(pixel_means(paths, order, shape), expected, rtol=0, atol=1e-12)


class _Weighted(PathMerge):
    """A custom merge: path k weighted by (k + 1)."""

    def forward(self, paths, order, shape):
        weights = torch.arange(1, paths.shape[1] + 1, dtype=paths.dtype).view(1, -1, 1, 1)
        return order.merge_sum(paths * weights, shape)


def test_ss2d_uses_the_merge_hook_as_predicted():
    torch.manual_seed(0)
    plain = _perturbed(SS2D(8, d_state=3, expand=1.5))
    custom = SS2D(8, d_state=3, expand=1.5, path_merge=_Weighted()).double()
    custom.load_state_dict(plain.state_dict())
    assert "path_merge" in dict(custom.named_children()) and plain.merge_module is None
    x = torch.rand(2, 5, 6, 8, dtype=torch.float64)
    u, z = plain.project(x, plain.in_proj)
    u = F.silu(plain.conv2d(u.permute(0, 3, 1, 2)))
    y = plain.scan_paths(plain.scan_order.scan(u))
    weights = torch.arange(1.0, 5.0, dtype=torch.float64).view(1, 4, 1, 1, 1)
    predicted = plain.output((plain.scan_order.merge(y, (5, 6)) * weights).sum(1), z)
    torch.testing.assert_close(custom(x), predicted, rtol=0, atol=1e-12)
    assert not torch.allclose(custom(x), plain(x))
    torch.testing.assert_close(SS2D(8, path_merge=PathMerge())(x.float()).shape, x.shape)


def test_localss2d_gate_is_the_merge_hook():
    local = _perturbed(LocalSS2D(8, d_state=3, expand=1.5, scan_order=bidirectional(Windowed(4))))
    assert isinstance(local.merge_module, BiAttnMerge) and local.merge_module is local.multi_scan
    assert "multi_scan.attn.norm.weight" in local.state_dict()
    x = torch.rand(1, 6, 7, 8, dtype=torch.float64)
    base = local(x)
    local.multi_scan = _Weighted()                       # replacing the merge module replaces the gate
    swapped = local(x)
    plain = SS2D(8, d_state=3, expand=1.5, scan_order=local.scan_order, path_merge=_Weighted()).double()
    plain.load_state_dict(local.state_dict())
    torch.testing.assert_close(swapped, plain(x), rtol=0, atol=1e-12)
    assert not torch.allclose(base, swapped)


def test_ssa_plugs_into_any_multi_path_mixer():
    mixer = SS2D(8, d_state=2, scan_order=cross_scan(4), path_merge=SSA(16, num_paths=4))
    assert {"path_merge.gating.1.weight", "path_merge.gating.1.bias"} <= set(mixer.state_dict())
    out = mixer(torch.rand(1, 5, 6, 8, requires_grad=True))
    out.square().mean().backward()
    assert mixer.path_merge.gating[1].weight.grad.abs().sum() > 0
    mair = MaIRMixer(8, d_state=2, expand=2.0)
    assert "gating.gating.1.weight" in mair.state_dict() and isinstance(mair.merge_module, SSA)
    with pytest.raises(ValueError, match="SSA merges path outputs"):
        SSA(16, num_paths=2)(torch.rand(1, 4, 16, 30), cross_scan(4), (5, 6))


# ---- pretrained cfgs and the Drive folder ---------------------------------------------------------------------------
DRIVE_FOLDER_ID = "1YYmIVTyynLg-Kfu-mviq24WdVkJu-S3M"
RELEASES = [("mair_light_t_x2", "test_mair", "MaIR_T_lightSR_x2.pth"),
            ("mairunet_realdn", "test_mairunet", "MaIR_RealDN.ckpt"),
            ("mair_dn.sigma25", "test_mair", "MaIR_CDN_s25.pth"),
            ("mairunet_dehaze.ots", "test_mairunet", "MaIR_DH_OTS.pth")]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(("name", "tiny", "filename"), RELEASES)
def test_pretrained_weights_come_from_the_authors_drive_folder(fake_gdown, name, tiny, filename, tmp_path, monkeypatch):
    torch.manual_seed(0)
    source = ssmblocks.create_model(tiny)
    args = {k: v for k, v in source.model_args.items() if k not in ("upscale", "upsampler", "in_chans")}
    source = ssmblocks.create_model(name.split(".")[0], **args)       # the registered name at CI size
    other = {k: v + 1 for k, v in source.state_dict().items()}
    gdown = fake_gdown(DRIVE_FOLDER_ID, {"README.md": ("ID-README", {}), filename: ("ID-RELEASE", {"params": dict(
        source.state_dict())}), "MaIR_SR_x4.pth": ("ID-OTHER", {"params": other})})
    monkeypatch.setitem(sys.modules, "gdown", gdown)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    model = ssmblocks.create_model(name, pretrained=True, cache_dir=tmp_path, **args)
    assert gdown.calls[-2:] == [("list", DRIVE_FOLDER_ID, True), ("download", "ID-RELEASE")]
    assert _same_weights(model, source) and (tmp_path / "gdrive" / DRIVE_FOLDER_ID / filename).is_file()


@pytest.mark.parametrize(("name", "filename"), [(n, f) for n, _, f in RELEASES])
def test_without_gdown_the_error_names_folder_file_and_call(name, filename, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)
    cfg = ssmblocks.get_pretrained_cfg(name)
    with pytest.raises(PretrainedUnavailableError) as err:
        resolve_weights(cfg, cache_dir=tmp_path)
    message = str(err.value)
    assert f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}" in message and filename in message
    assert f"checkpoint_path='path/to/{filename}'" in message


def test_every_release_has_a_cfg_with_its_protocol():
    names = {cfg for cfg in ssmblocks.list_pretrained("mair*")}
    assert {"mair_x4.official", "mair_light_s_x3.official", "mair_dn.sigma15", "mair_dn.sigma50",
            "mairunet_deblur.official", "mairunet_dehaze.its", "mairunet_dehaze.r6k"} <= names
    assert ssmblocks.get_pretrained_cfg("mair_x2").protocol == "mambair"
    assert ssmblocks.get_pretrained_cfg("mairunet_realdn").protocol == ""
    assert "crop_border = scale" in ssmblocks.get_pretrained_cfg("mair_light_t_x4").test_protocol
    assert Path(ssmblocks.get_pretrained_cfg("mairunet_realdn").manual_filename).suffix == ".ckpt"


def test_merge_hook_docs_example_runs():
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "blocks.md").read_text()
    section = text[text.index("## The merge hook"):text.index("## Scan orders per block")]
    code = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    scope: dict = {}
    exec(compile(code[-1], "docs/blocks.md", "exec"), scope)
    x = torch.rand(1, 6, 9, 32)
    assert scope["mixer"](x).shape == x.shape and scope["gated"](x).shape == x.shape


# ---- the MaIR+ protocol ---------------------------------------------------------------------------------------------
def _mair_plus_reference(model, lq, scale):
    """MaIRPlusModel's x8 ensemble written out EDSR-style: the list grows by W-flips, then H-flips, then
    transposes; each entry runs the official MambaIR tiling; outputs undone in reverse and averaged."""
    def transform(v, op):
        return {"v": lambda t: t.flip(-1), "h": lambda t: t.flip(-2), "t": lambda t: t.transpose(-2, -1)}[op](v)

    inputs = [lq]
    for op in ("v", "h", "t"):
        inputs.extend([transform(t, op) for t in inputs])
    outputs = [official_split_test(model, t, scale, base=200, shave_div=10) for t in inputs]
    for i in range(len(outputs)):
        if i > 3:
            outputs[i] = transform(outputs[i], "t")
        if i % 4 > 1:
            outputs[i] = transform(outputs[i], "h")
        if (i % 4) % 2 == 1:
            outputs[i] = transform(outputs[i], "v")
    return torch.cat(outputs, dim=0).mean(dim=0, keepdim=True)


@pytest.mark.parametrize("size", [(230, 410), (57, 33)])
def test_mair_plus_protocol_matches_an_independent_implementation(size):
    from ssmblocks import restore
    from tests.test_inference import GlobalModel

    model = GlobalModel(scale=2)
    lq = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 0.5
    expected = _mair_plus_reference(model, lq, 2).clamp(0, 1)
    out = restore(model, lq, protocol="mair_plus")
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert (out - restore(model, lq, protocol="mambair")).abs().max() > 1e-3      # the ensemble matters
