"""EAMamba (ICCV 2025): the diagonal orders and the multi-head scan, the blocks, the U-Net and the light SR model
against the official goldens (../shared/golden/eamamba_*), the self-describing checkpoint format, the test
protocol and the weight source."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hf_constants

import ssmblocks
from ssmblocks import CheckpointError, PretrainedUnavailableError
from ssmblocks._builder import _described_release
from ssmblocks._formats import DescribedCheckpoint
from ssmblocks.blocks import MHSSM, EAMambaBlock, SimpleGateFFN
from ssmblocks.inference.protocols import PROTOCOLS, PaddedProtocol, run_protocol
from ssmblocks.scan_orders import (
    AntiDiagonal,
    ColMajor,
    Diagonal,
    MultiHead,
    RowMajor,
    Windowed,
    cross_scale_scan,
    eamamba_scan,
    medvsr_windows,
)
from ssmblocks.zoo.eamamba import _VARIANTS
from tests._golden import GOLDEN, assert_matches_golden, golden, golden_meta, needs_golden
from tests.test_mambacsr import FakeGdown


# ---- scan orders ----------------------------------------------------------------------------------------------
def _diagonal_walk(height: int, width: int, flip_width: bool = False) -> list[int]:
    """Independent enumeration: lines s = i + j ascending, rows ascending inside a line (on the W-flipped map)."""
    walk = []
    for s in range(height + width - 1):
        for i in range(height):
            j = s - i
            if 0 <= j < width:
                walk.append(i * width + (width - 1 - j if flip_width else j))
    return walk


def _enumerated_heads(height: int, width: int) -> list[list[int]]:
    """The eight EAMamba heads by enumeration (reference eamamba.md: the table of the 8 scan orders)."""
    diag, anti = _diagonal_walk(height, width), _diagonal_walk(height, width, flip_width=True)
    row = list(range(height * width))
    col = [i * width + j for j in range(width) for i in range(height)]
    return [diag, diag[::-1], anti, anti[::-1], row, row[::-1], col, col[::-1]]


def test_diagonal_orders_on_a_3x4_map():
    # the worked example of the reference: 3x4 map 0..11
    assert Diagonal().paths((3, 4), "cpu")[0].tolist() == [0, 1, 4, 2, 5, 8, 3, 6, 9, 7, 10, 11]
    assert AntiDiagonal().paths((3, 4), "cpu")[0].tolist() == [3, 2, 7, 1, 6, 11, 0, 5, 10, 4, 9, 8]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (3, 4), (7, 5), (16, 24)])
def test_eamamba_heads_match_an_independent_enumeration(shape):
    assert eamamba_scan().paths(shape, "cpu").tolist() == _enumerated_heads(*shape)


@needs_golden
def test_eamamba_heads_match_the_official_index_file():
    data = json.loads((GOLDEN / "eamamba_scan_orders.json").read_text())
    order = eamamba_scan()
    for size, heads in data["sizes"].items():
        shape = tuple(int(n) for n in size.split("x"))
        assert order.paths(shape, "cpu").tolist() == heads, size


def test_multihead_reads_each_channel_group_along_its_own_path():
    order = MultiHead(RowMajor(), ColMajor().reversed(), Diagonal())
    x = torch.randn(2, 6, 3, 5)
    paths = order.scan(x)
    assert paths.shape == (2, 3, 2, 15)
    flat = x.flatten(2)
    expected = [list(range(15)), [i * 5 + j for j in range(5) for i in range(3)][::-1], _diagonal_walk(3, 5)]
    for k, walk in enumerate(expected):
        assert torch.equal(paths[:, k], flat[:, 2 * k: 2 * k + 2, walk])
    assert torch.equal(order.merge_concat(paths, (3, 5)), x)            # the concatenating merge inverts the scan
    assert order.merge(paths, (3, 5)).shape == (2, 3, 2, 3, 5)


def test_multihead_keeps_padding_tokens_of_windowed_heads():
    order = MultiHead(Windowed(2), Windowed(2, column_major=True))
    x = torch.randn(1, 4, 3, 3)
    paths = order.scan(x)
    assert paths.shape == (1, 2, 2, 16)                                   # 3x3 padded to 4x4: 16 steps
    assert torch.equal(order.merge_concat(paths, (3, 3)), x)


def test_multihead_is_differentiable():
    order = MultiHead(Diagonal(), AntiDiagonal().reversed())
    x = torch.randn(1, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(order.scan, (x,))
    y = torch.randn(1, 2, 2, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: order.merge_concat(p, (3, 4)), (y,))


def test_multihead_errors_name_the_problem():
    with pytest.raises(ValueError, match="multiple of 8"):
        eamamba_scan().scan(torch.randn(1, 12, 4, 4))
    with pytest.raises(ValueError, match="layout"):
        eamamba_scan().scan(torch.randn(16, 4, 4))
    for order in (cross_scale_scan(4), medvsr_windows().reversed()):
        with pytest.raises(ValueError, match="several inputs or moves windows"):
            MultiHead(RowMajor(), order)
    with pytest.raises(ValueError, match="equal path lengths"):
        MultiHead(RowMajor(), Windowed(4)).scan(torch.randn(1, 2, 3, 3))


def test_multihead_exports_with_dynamic_sizes():
    order = eamamba_scan()

    class Mixer(torch.nn.Module):
        def forward(self, x):
            return order.merge_concat(order.scan(x) * 2, x.shape[2:])

    dims = {2: torch.export.Dim("h", min=2, max=64), 3: torch.export.Dim("w", min=2, max=64)}
    exported = torch.export.export(Mixer(), (torch.randn(1, 16, 6, 9),), dynamic_shapes=(dims,))
    x = torch.randn(1, 16, 11, 5)
    assert torch.equal(exported.module()(x), 2 * x)


# ---- parity with the official code, through load_checkpoint -------------------------------------------------------
STEMS = ["eamamba_dn_tiny", "eamamba_realsr_tiny_pad8", "eamamba_light_x2_tiny", "eamamba_light_x3_tiny",
         "eamamba_light_x4_tiny"]


def _run(model, x):
    with torch.no_grad():
        return model(x)


def test_every_golden_is_covered():
    assert sorted(STEMS) == sorted(p.stem for p in GOLDEN.glob("eamamba_*.pth"))


@needs_golden
@pytest.mark.parametrize("stem", STEMS)
def test_official_checkpoint_reproduces_the_official_output(stem):
    """`output` (the EMA weights sd_e, test.py's) in float64 within 1e-8 and float32 within the suggested tolerance;
    the U-Net cases not a multiple of 8 are the official pad-run-crop pipeline, which the model does itself."""
    meta = golden_meta(stem)
    model = ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth")
    assert type(model).__name__ == meta["official_class"] and not model.training
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert len(model.state_dict()) == meta["state_dict_num_keys"]
    assert_matches_golden(model, stem)


@needs_golden
@pytest.mark.parametrize("stem", STEMS)
def test_the_trained_weights_sd_are_one_option_away(stem):
    meta, data = golden(stem)
    tol = meta["suggested_tolerance"]["fp64_run_vs_output_atol"]
    model = ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth", weights="sd").double()
    assert (_run(model, data["input"]) - data["output_sd"]).abs().max().item() <= tol
    ema = ssmblocks.load_checkpoint(GOLDEN / f"{stem}.pth").double()
    assert (_run(ema, data["input"]) - data["output_sd"]).abs().max().item() > 1e-3     # a wrong pick fails


@needs_golden
def test_bare_forward_on_the_padded_input_and_the_pipeline():
    meta, data = golden("eamamba_realsr_tiny_pad8")
    tol = meta["suggested_tolerance"]["fp64_run_vs_output_atol"]
    model = ssmblocks.load_checkpoint(GOLDEN / "eamamba_realsr_tiny_pad8.pth").double()
    assert torch.equal(F.pad(data["input"], (0, 5, 0, 3), mode="reflect"), data["input_padded"])
    assert (_run(model, data["input_padded"]) - data["output_padded"]).abs().max().item() <= tol


def _official_corner_tiles(fn, x, shave=16, crop_size=2048):
    """Independent implementation of test.py ``forward_patch`` (scale 1) from the reference's description."""
    h, w = x.shape[-2:]
    rows = [(0, h // 2 + shave - (h // 2) % 8), (h - h // 2 - shave + (h - h // 2) % 8, h)]
    cols = [(0, w // 2 + shave - (w // 2) % 8), (w - w // 2 - shave + (w - w // 2) % 8, w)]
    out = torch.empty_like(x)
    for a, (r0, r1) in enumerate(rows):
        for b, (c0, c1) in enumerate(cols):
            r0, c0 = max(r0, 0) if r0 >= 0 else h + r0, max(c0, 0) if c0 >= 0 else w + c0
            tile = x[..., r0:min(r1, h), c0:min(c1, w)]
            y = fn(tile) if h * w < crop_size**2 else _official_corner_tiles(fn, tile, shave, crop_size)
            th, tw = y.shape[-2:]
            rs = slice(0, h // 2) if a == 0 else slice(h // 2, h)
            cs = slice(0, w // 2) if b == 0 else slice(w // 2, w)
            ys = slice(0, h // 2) if a == 0 else slice(th - (h - h // 2), th)
            xs = slice(0, w // 2) if b == 0 else slice(tw - (w - w // 2), tw)
            out[..., rs, cs] = y[..., ys, xs]
    return out


@needs_golden
def test_realsr_preset_is_the_official_four_corner_tiling():
    meta, data = golden("eamamba_realsr_tiny_pad8")
    tol = meta["suggested_tolerance"]["fp64_run_vs_output_atol"]
    model = ssmblocks.load_checkpoint(GOLDEN / "eamamba_realsr_tiny_pad8.pth").double()
    with torch.no_grad():
        preset = run_protocol("eamamba_realsr", model, data["input"], 1)
        independent = _official_corner_tiles(model, data["input_padded"])[..., :37, :43]
    assert (preset - data["output_forward_patch"]).abs().max().item() <= tol
    assert (independent - data["output_forward_patch"]).abs().max().item() <= tol
    assert (preset - data["output"]).abs().max().item() > 1e-3          # the tiling is not the whole image
    restored = ssmblocks.restore(model, data["input"], protocol="eamamba_realsr")     # the same, clamped
    assert (restored - preset.clamp(0, 1)).abs().max().item() < 1e-6


def test_corner_tiling_matches_the_independent_implementation_on_other_sizes():
    fn = lambda t: t * 2 + t.mean()                                      # noqa: E731 (depends on the tile)
    protocol = PROTOCOLS["eamamba_realsr"]
    for h, w in ((8, 8), (16, 24), (40, 48), (64, 56)):
        x = torch.randn(1, 3, h, w, dtype=torch.float64)
        assert torch.equal(protocol(fn, x, 1), _official_corner_tiles(fn, x)), (h, w)
    small = PaddedProtocol(8, corner_tiles=True, crop_size=34)            # two levels of recursion
    x = torch.randn(1, 3, 48, 40, dtype=torch.float64)
    assert torch.equal(small(fn, x, 1), _official_corner_tiles(fn, x, crop_size=34))
    assert small.tile_count(48, 40) == 64                                  # 4 x 4 x 4 forwards


@needs_golden
def test_light_sr_preset_is_the_official_padded_test():
    meta, data = golden("eamamba_light_x2_tiny")
    tol = meta["suggested_tolerance"]["fp64_run_vs_output_atol"]
    model = ssmblocks.load_checkpoint(GOLDEN / "eamamba_light_x2_tiny.pth").double()
    with torch.no_grad():
        preset = run_protocol("eamamba_sr", model, data["input"], 2)
        manual = model(F.pad(data["input"], (0, 2, 0, 6), mode="reflect"))[..., :20, :28]
    assert (preset - data["output_test_pipeline"]).abs().max().item() <= tol
    assert torch.equal(preset, manual)
    assert (preset - data["output"]).abs().max().item() > 1e-4          # padding changes the result


# ---- the full-size key listings ---------------------------------------------------------------------------------
LISTINGS = sorted((GOLDEN / "keys").glob("eamamba*.json"))
_ARCH_OF = {"eamambasr_light_x2": "eamamba_light_x2", "eamambasr_light_x3": "eamamba_light_x3",
            "eamambasr_light_x4": "eamamba_light_x4"}


@needs_golden
@pytest.mark.parametrize("listing", LISTINGS, ids=lambda p: p.stem)
def test_full_size_key_listing_builds_exactly(listing):
    """The registered model builds the listing's keys, shapes and parameter count; the U-Net listings (the yaml
    instantiated verbatim: the official upscale=2 default) carry the dead upsample.0 conv: upscale=2 keeps it."""
    data = json.loads(listing.read_text())
    arch = _ARCH_OF.get(listing.stem, listing.stem)
    kwargs = {} if "upsample.0.weight" not in data["keys"] or arch.startswith("eamamba_light") else {"upscale": 2}
    with torch.device("meta"):
        model = ssmblocks.create_model(arch, **kwargs)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == data["keys"]
    assert sum(p.numel() for p in model.parameters()) == data["param_count"]


def test_published_parameter_counts():
    counts = {"eamamba_denoise": 25_320_512, "eamamba_realsr_x4": 25_320_512, "eamamba_light_x2": 725_056,
              "eamamba_light_x3": 909_696, "eamamba_light_x4": 872_768}
    for name, count in counts.items():
        with torch.device("meta"):
            model = ssmblocks.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == count, name


def test_upscale_quirk_both_ways():
    """upscale 1 (default): the working model, no upsample keys; upscale 2 (the official default): the same model
    plus the dead upsample.0 conv, unused, so the output does not change."""
    torch.manual_seed(0)
    working = ssmblocks.create_model("test_eamamba").eval()
    dead = ssmblocks.create_model("test_eamamba", upscale=2).eval()
    assert not any(k.startswith("upsample.") for k in working.state_dict())
    assert {k for k in dead.state_dict() if k.startswith("upsample.")} == {"upsample.0.weight", "upsample.0.bias"}
    state = {k: v for k, v in dead.state_dict().items() if not k.startswith("upsample.")}
    working.load_state_dict(state)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(_run(working, x), _run(dead, x))
    assert dead.contract.scale == 1


# ---- the self-describing checkpoint format ----------------------------------------------------------------------
def _json(args: dict) -> str:
    return json.dumps(args, sort_keys=True, default=repr)


def _official_file(path, model, name="eamamba", args=None, **extra):
    """A file in the official format (train.py): the trained weights sd and (here: shifted) EMA weights sd_e."""
    sd = model.state_dict()
    args = args if args is not None else {"dim": 16, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                                          "mamba_cfg": {"scan_type": "diagonal", "scan_count": 8,
                                                        "scan_merge_method": "concate", "d_state": 4, "d_conv": 3,
                                                        "expand": 1, "conv_2d": True},
                                          "LayerNorm_type": "WithBias", "heads": [1, 2, 4, 8]}
    torch.save({"model": {"name": name, "args": args, "sd": sd, "sd_e": {k: v + 0.5 for k, v in sd.items()}},
                "current_iter": 7, **extra}, path)
    return sd


def test_the_file_args_build_the_model_and_the_dead_upsample_keys_load(tmp_path):
    model = ssmblocks.create_model("test_eamamba", upscale=2)
    sd = _official_file(tmp_path / "with_dead_conv.pth", model)
    loaded = ssmblocks.load_checkpoint(tmp_path / "with_dead_conv.pth")
    assert loaded.model_args["upscale"] == 2 and loaded.model_args["dim"] == 16
    assert torch.equal(loaded.state_dict()["output.weight"], sd["output.weight"] + 0.5)      # sd_e by default
    without = {k: v for k, v in model.state_dict().items() if not k.startswith("upsample.")}
    working = ssmblocks.create_model("test_eamamba")
    working.load_state_dict(without)
    _official_file(tmp_path / "plain.pth", working)
    loaded = ssmblocks.load_checkpoint(tmp_path / "plain.pth", weights="sd")
    assert loaded.model_args["upscale"] == 1 and torch.equal(loaded.state_dict()["output.weight"],
                                                              sd["output.weight"])
    assert "official eamamba checkpoint (sd weights, iteration 7)" in loaded.pretrained_cfg.notes


def test_a_release_file_name_picks_its_task_among_the_identical_unets(tmp_path):
    """Ten U-Net tasks share one architecture; an official file under a release's name gets that release's cfg."""
    path = tmp_path / "sidd-eamamba.pth"
    _official_file(path, ssmblocks.create_model("test_eamamba"))
    assert ssmblocks.load_checkpoint(path).pretrained_cfg.tag == "custom"      # a custom (tiny) size: no release
    full = json.loads((GOLDEN / "keys" / "eamamba_sidd.json").read_text())["official_kwargs"]
    with torch.device("meta"):
        args = ssmblocks.create_model("eamamba_denoise").model_args             # the released U-Net
    described = DescribedCheckpoint("eamamba_denoise", args, {}, weights="sd_e", default_weights="sd_e")
    assert full["dim"] == args["dim"] and list(full["num_blocks"]) == list(args["num_blocks"])
    assert _described_release(described, args, path).name == "eamamba_sidd.official"
    trained = dataclasses.replace(described, weights="sd")
    assert _described_release(trained, args, path).name == "eamamba_sidd.sd"
    assert _described_release(described, args, tmp_path / "other.pth") is None


def test_format_errors_name_the_problem(tmp_path):
    model = ssmblocks.create_model("test_eamamba")
    _official_file(tmp_path / "a.pth", model)
    with pytest.raises(CheckpointError, match=r"weight sets are sd_e, sd .*got weights='params'"):
        ssmblocks.load_checkpoint(tmp_path / "a.pth", weights="params")
    _official_file(tmp_path / "b.pth", model, args={"dim": 32, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
                                                    "mamba_cfg": {"d_state": 4, "d_conv": 3, "expand": 1,
                                                                  "conv_2d": True, "scan_type": "diagonal",
                                                                  "scan_count": 8, "scan_merge_method": "concate"}})
    with pytest.raises(CheckpointError, match=r"dim=32 \(the weights say 16\)"):
        ssmblocks.load_checkpoint(tmp_path / "b.pth")
    _official_file(tmp_path / "c.pth", model, args={"mamba_cfg": {"scan_type": "zigzag"}})
    with pytest.raises(CheckpointError, match=r"cannot be read .*scan_type='zigzag' is not supported"):
        ssmblocks.load_checkpoint(tmp_path / "c.pth")


def test_a_bare_state_dict_is_still_detected_and_create_model_reads_the_format(tmp_path):
    model = ssmblocks.create_model("test_eamamba_light")
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    loaded = ssmblocks.load_checkpoint(tmp_path / "bare.pth")
    assert loaded.family == "EAMambaSR" and _json(loaded.model_args) == _json(model.model_args)
    sd = _official_file(tmp_path / "light.pth", model, name="eamambasr",
                        args={"dim": 16, "num_blocks": [1, 1], "ffn_expansion_factor": 1, "upscale": 2,
                              "mamba_cfg": {"d_state": 4, "d_conv": 3, "expand": 1, "conv_2d": True,
                                            "scan_type": "diagonal", "scan_count": 8,
                                            "scan_merge_method": "concate"}})
    built = ssmblocks.create_model("test_eamamba_light", checkpoint_path=tmp_path / "light.pth")
    assert torch.equal(built.state_dict()["conv_last.weight"], sd["conv_last.weight"] + 0.5)
    assert _json(ssmblocks.load_checkpoint(tmp_path / "light.pth").model_args) == _json(model.model_args)


@needs_golden
def test_the_spandrel_integration_reads_the_default_weights_of_an_official_file():
    """spandrel unwraps a top-level 'model' key itself: both the file and its 'model' entry give sd_e."""
    from ssmblocks.integrations.spandrel import _unwrapped

    raw = torch.load(GOLDEN / "eamamba_light_x2_tiny.pth", weights_only=True)
    for given in (raw, raw["model"]):
        state = _unwrapped(given)
        assert state.keys() == raw["model"]["sd_e"].keys()
        assert all(torch.equal(state[k], raw["model"]["sd_e"][k]) for k in state)


def test_basicsr_weight_sets_by_name(tmp_path):
    model = ssmblocks.create_model("test_eamamba_light")
    sd = model.state_dict()
    torch.save({"params": sd, "params_ema": {k: v + 1 for k, v in sd.items()}}, tmp_path / "b.pth")
    loaded = ssmblocks.load_checkpoint(tmp_path / "b.pth", weights="params")
    assert torch.equal(loaded.state_dict()["conv_last.weight"], sd["conv_last.weight"])
    with pytest.raises(CheckpointError, match="holds no weights named 'sd'"):
        ssmblocks.load_checkpoint(tmp_path / "b.pth", weights="sd")


# ---- the blocks -------------------------------------------------------------------------------------------------
def test_blocks_check_their_layout_and_widths():
    block = EAMambaBlock(16, d_state=4)
    assert block(torch.randn(1, 5, 6, 16)).shape == (1, 5, 6, 16)
    with pytest.raises(ValueError, match=r"EAMambaBlock expects \(B, H, W, C\) .*x.permute\(0, 2, 3, 1\)"):
        block(torch.randn(1, 16, 5, 6))
    with pytest.raises(ValueError, match="multiple of 8"):
        MHSSM(12)
    with pytest.raises(ValueError, match="must be a MultiHead order"):
        MHSSM(16, scan_order=RowMajor())
    with pytest.raises(ValueError, match="even"):
        SimpleGateFFN(3, expansion=1.0)
    two_heads = MHSSM(8, d_state=2, scan_order=MultiHead(Diagonal(), AntiDiagonal()))
    assert two_heads.x_proj_weight.shape == (2, 1 + 4, 4)
    assert two_heads(torch.randn(2, 3, 4, 8)).shape == (2, 3, 4, 8)


def test_block_options_are_keyword_only_exposed_and_take_factory_arguments():
    with pytest.raises(TypeError):
        EAMambaBlock(16, 4)
    block = EAMambaBlock(16, d_state=3, d_conv=5, dt_rank=2, conv_bias=False, proj_bias=True, dt_min=0.01,
                         dt_max=0.02, dt_init_floor=0.015, ffn_expansion_factor=1.5, bias=True, norm_eps=1e-6,
                         dtype=torch.float64)
    mixer = block.mamba
    assert mixer.conv.kernel_size == (5, 5) and mixer.conv.bias is None and mixer.in_proj.bias is not None
    assert mixer.x_proj_weight.shape == (8, 2 + 6, 2) and block.ffn.project_in.weight.shape == (24, 16, 1, 1)
    assert block.ffn.project_out.bias is not None and block.norm1["body"].eps == 1e-6
    dt = F.softplus(mixer.dt_projs_bias)
    assert dt.min() >= 0.015 - 1e-6 and dt.max() <= 0.02 + 1e-6
    assert {p.dtype for p in block.parameters()} == {torch.float64}
    assert {p.device.type for p in MHSSM(16, device="meta").parameters()} == {"meta"}


def test_unet_pads_inside_and_refuses_tiny_inputs():
    model = ssmblocks.create_model("test_eamamba").eval()
    x = torch.rand(1, 3, 13, 21)
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")
    assert torch.equal(_run(model, x), _run(model, padded)[..., :13, :21])
    with pytest.raises(ValueError, match="at least 8x8"):
        model(torch.rand(1, 3, 5, 16))


# ---- pretrained cfgs and the Drive folder -------------------------------------------------------------------------
DRIVE_FOLDER_ID = "1XGFUa6dvDn7D46Gpa5Q5NSBzOgjckw_v"          # the official README's "Checkpoints" link


def test_every_release_has_its_cfg_protocol_and_numbers():
    assert set(ssmblocks.list_models("eamamba_*")) == {*(f"eamamba_{t}" for t in (
        "denoise", "sidd", "gopro", "dpdd", "dehaze_its", "dehaze_ots", "derain", "realsr_x2", "realsr_x3",
        "realsr_x4", "light_x2", "light_x3", "light_x4"))}
    for name in ssmblocks.list_models("eamamba_*"):
        cfg = ssmblocks.get_pretrained_cfg(name)
        assert cfg.gdrive_folder_id == DRIVE_FOLDER_ID and cfg.manual_filename and cfg.test_protocol
        assert cfg.protocol == ("eamamba_realsr" if "realsr" in name else "eamamba_sr" if "light" in name else "")
    assert ssmblocks.get_pretrained_cfg("eamamba_realsr_x4").metrics == {"RealSR PSNR/SSIM": "29.60/0.835"}
    assert ssmblocks.get_pretrained_cfg("eamamba_sidd.sd").weights_key == "sd"
    assert ssmblocks.get_pretrained_cfg("eamamba_sidd").weights_key is None


def test_pretrained_weights_come_from_the_authors_drive_folder(tmp_path, monkeypatch):
    """create_model(name, pretrained=True): the folder listed, the file picked by name and downloaded, read in the
    official format: sd_e for the default tag, sd for the .sd tag."""
    torch.manual_seed(0)
    source = ssmblocks.create_model("test_eamamba")
    official = tmp_path / "official.pth"
    sd = _official_file(official, source)
    checkpoint = torch.load(official, weights_only=True)
    gdown = FakeGdown(DRIVE_FOLDER_ID, {"sidd-eamamba.pth": ("ID-SIDD", checkpoint),
                                        "gopro-eamamba.pth": ("ID-GOPRO", {})})
    monkeypatch.setitem(sys.modules, "gdown", gdown)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    tiny = _VARIANTS["test_eamamba"]
    ema = ssmblocks.create_model("eamamba_sidd", pretrained=True, cache_dir=tmp_path / "cache", **tiny)
    assert gdown.calls[-2:] == [("list", DRIVE_FOLDER_ID, True), ("download", "ID-SIDD")]
    assert torch.equal(ema.state_dict()["output.weight"], sd["output.weight"] + 0.5)
    trained = ssmblocks.create_model("eamamba_sidd.sd", pretrained=True, cache_dir=tmp_path / "cache", **tiny)
    assert torch.equal(trained.state_dict()["output.weight"], sd["output.weight"])


def test_without_gdown_the_error_explains_the_manual_download(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)
    with pytest.raises(PretrainedUnavailableError) as err:
        ssmblocks.create_model("eamamba_light_x4", pretrained=True, cache_dir=tmp_path)
    assert all(part in str(err.value) for part in (f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}",
                                                   "srx4-eamambasr-light.pth"))
