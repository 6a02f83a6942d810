"""MambaIRv2 against the official implementation: every golden (both routing modes, both tie orders) through
load_checkpoint, the semantic-guided scan order against an independent enumeration of the goldens' routings, the
official quirks both ways, every released key listing, v1/v2 detection, weight sources offline, the official tiled
test, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import ssmblocks
from ssmblocks import CheckpointError
from ssmblocks._builder import detect_checkpoint
from ssmblocks.blocks import ASSB, ASSM, WindowAttention, relative_position_index, shifted_window_mask
from ssmblocks.scan_orders import RoutedOrder, SemanticOrder, render
from tests._golden import GOLDEN, golden, golden_file, golden_meta, golden_params, needs_golden
from tests._official_tiling import official_split_test

ARGMAX = ["mambairv2_sr_x2_tiny", "mambairv2_sr_x3_tiny", "mambairv2_light_x4_tiny", "mambairv2_car_tiny",
          "mambairv2_dn_tiny"]
GUMBEL = ["mambairv2_sr_x2_tiny_gumbel", "mambairv2_light_x4_tiny_gumbel", "mambairv2_car_tiny_gumbel"]
LISTING_ARCH = {**{f"light_x{s}": f"mambairv2_light_x{s}" for s in (2, 3, 4)},
                **{f"sr_{size}_x{s}": f"mambairv2_{size}_x{s}" for size in ("small", "base", "large")
                   for s in (2, 3, 4)},
                "colordn": "mambairv2_dn", "car": "mambairv2_car_q10"}


def _set_tie_order(model: torch.nn.Module, tie_order: str) -> None:
    for module in model.modules():
        if isinstance(module, ASSM):
            module.order = SemanticOrder(module.order.num_classes, tie_order=tie_order)


def _run(model: torch.nn.Module, x: torch.Tensor, seed: int | None) -> torch.Tensor:
    with torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)             # immediately before the forward, as the goldens were made
        return model(x)


# ---- the semantic-guided order -----------------------------------------------------------------------------------
def _stable_by_enumeration(classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """For every class in increasing order, the positions holding it in increasing (raster) order."""
    rows = []
    for row in classes.tolist():
        rows.append([p for c in range(num_classes) for p, value in enumerate(row) if value == c])
    return torch.tensor(rows)


@pytest.mark.parametrize("stem", golden_params(["mambairv2_sr_x2_tiny", "mambairv2_light_x4_tiny_gumbel"]))
def test_semantic_order_sorts_the_goldens_routings_like_an_enumeration(stem):
    meta, data = golden(stem)
    num_tokens = meta["official_kwargs"]["num_tokens"]
    names = meta["routing_detail"]["assm_call_order"]
    for name in names:
        classes = data[f"route_index.{name}"]
        assert len(set(classes.flatten().tolist())) >= 3          # a routing that actually sorts something
        perm = SemanticOrder(num_tokens).permutation(classes)
        assert torch.equal(perm, _stable_by_enumeration(classes, num_tokens))
        backend = SemanticOrder(num_tokens, tie_order="backend").permutation(classes)
        assert torch.equal(backend, torch.sort(classes, dim=-1, stable=False).indices)
        assert torch.equal(classes.gather(1, backend), classes.gather(1, perm))     # both sort the classes


def test_routed_order_batches_inverse_gradients_and_render():
    torch.manual_seed(0)
    order = SemanticOrder(5)
    classes = torch.randint(0, 5, (3, 4, 6))
    routed = order.route(classes)
    assert isinstance(routed, RoutedOrder)
    x = torch.randn(3, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    paths = routed.scan(x)
    assert paths.shape == (3, 1, 2, 24)
    for b in range(3):                                             # each image its own permutation
        expected = _stable_by_enumeration(classes[b].flatten()[None], 5)[0]
        assert torch.equal(paths[b, 0], x[b].flatten(1)[:, expected])
    assert not torch.equal(routed.perm[0], routed.perm[1])
    assert torch.equal(routed.merge_sum(paths, (4, 6)), x)        # the inverse is exact
    assert torch.equal(routed.merge(paths, (4, 6))[:, 0], x)
    assert torch.equal(routed.perm.gather(1, routed.inv), torch.arange(24).expand(3, -1))
    assert torch.autograd.gradcheck(lambda t: routed.scan(t), (x,))
    assert torch.autograd.gradcheck(lambda t: routed.merge_sum(t, (4, 6)), (paths.detach().requires_grad_(),))
    logits = torch.randn(3, 4, 6, 5)
    assert torch.equal(order.route(logits=logits).perm, order.route(logits.argmax(-1)).perm)
    image = render(routed.image(1), (4, 6), cell=4)
    assert image.shape == (16, 24, 3)
    first = int(routed.perm[1, 0])                                 # the first visited pixel is drawn darkest
    assert image[(first // 6) * 4 + 1, (first % 6) * 4 + 1].tolist() != image[0, 0].tolist() or first == 0
    with pytest.raises(ValueError, match="one path per image"):
        routed.paths((4, 6), "cpu")
    with pytest.raises(TypeError, match="data-dependent"):
        order.scan(x)
    with pytest.raises(ValueError, match="tie_order"):
        SemanticOrder(4, tie_order="random")


# ---- goldens of the official code, through load_checkpoint --------------------------------------------------------
def _check(model, stem, seed, expected_key):
    meta, data = golden(stem)
    tol = meta["suggested_tolerance"]
    out64 = _run(model.double(), data["input"], seed)
    assert (out64 - data[expected_key]).abs().max().item() <= tol["fp64_run_vs_output_atol"]
    out32 = _run(model.float(), data["input"].float(), seed)
    assert out32.shape == tuple(meta["output_shape"])
    assert (out32.double() - data[expected_key]).abs().max().item() <= tol["fp32_run_vs_output_atol"]


@pytest.mark.parametrize("stem", golden_params(ARGMAX))
def test_argmax_golden_through_load_checkpoint_both_tie_orders(stem):
    meta = golden_meta(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"))
    assert model.family == "MambaIRv2" and model.model_args["routing"] == "argmax"
    assert sum(p.numel() for p in model.parameters()) == meta["param_count"]
    assert len(model.state_dict()) == meta["state_dict_num_keys"]
    assert model.model_args["ffn"] == ("gate" if meta["official_class"] == "MambaIRv2Light" else "conv")
    _check(model, stem, None, "output")                            # the goldens' portable stable sort
    _set_tie_order(model, "backend")
    _check(model, stem, None, "output_unstable_sort")              # the official torch.sort(stable=False) on CPU


@pytest.mark.parametrize("stem", golden_params(GUMBEL))
def test_gumbel_golden_with_its_seed_both_tie_orders(stem):
    meta = golden_meta(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"), routing="gumbel", tie_order="backend")
    assert model.model_args["routing"] == "gumbel" and model.pretrained_cfg.tag == "custom"
    _check(model, stem, meta["forward_seed"], "output")            # official: gumbel draws, stable=False
    _set_tie_order(model, "stable")
    _check(model, stem, meta["forward_seed"], "output_stable_sort")
    _, data = golden(stem)
    other = _run(model.double(), data["input"], meta["forward_seed"] + 1)   # another seed: other draws
    assert (other - data["output_stable_sort"]).abs().max() > 1e-5


@needs_golden("mambairv2_light_x4_tiny_gumbel")
def test_gumbel_golden_from_its_stored_noise(monkeypatch):
    """Any RNG: the stored noise injected instead of drawing, one ASSM after another in the official order."""
    stem = "mambairv2_light_x4_tiny_gumbel"
    meta, data = golden(stem)
    noise = [data[f"gumbel_noise.{name}"] for name in meta["routing_detail"]["assm_call_order"]]

    def injected(logits, tau=1.0, hard=False, dim=-1):
        assert tau == 1.0 and hard and dim == -1
        soft = (logits + noise.pop(0).view(logits.shape).to(logits.dtype)).softmax(dim)
        one_hot = F.one_hot(soft.argmax(dim), soft.shape[dim]).to(soft.dtype)
        return one_hot - soft.detach() + soft

    model = ssmblocks.load_checkpoint(golden_file(stem, "pth"), routing="gumbel", tie_order="backend").double()
    monkeypatch.setattr(F, "gumbel_softmax", injected)
    out = _run(model, data["input"], None)
    assert not noise
    assert (out - data["output"]).abs().max().item() <= 1e-8


@needs_golden("mambairv2_sr_x2_tiny")
def test_prompt_alignment_quirk_both_ways():
    """The official prompt sits in raster order over the sorted sequence; aligning it moves the output by exactly
    what the official code measured when it was aligned (quirk_effect.prompt_alignment)."""
    stem = "mambairv2_sr_x2_tiny"
    meta, data = golden(stem)
    model = ssmblocks.load_checkpoint(golden_file(stem, "pth")).double()
    aligned = ssmblocks.load_checkpoint(golden_file(stem, "pth"), prompt_alignment="sorted").double()
    with torch.no_grad():
        diff = (aligned(data["input"]) - model(data["input"])).abs()
    effect = meta["quirk_effect"]["prompt_alignment"]
    assert diff.max().item() == pytest.approx(effect["max_abs_diff"], abs=1e-8)
    assert diff.mean().item() == pytest.approx(effect["mean_abs_diff"], abs=1e-8)


# ---- the official architecture: key listings, detection, v1 vs v2 --------------------------------------------------
@needs_golden
@pytest.mark.parametrize("config", sorted(LISTING_ARCH))
def test_every_released_config_builds_with_the_listed_keys(config):
    listing = json.loads((GOLDEN / "keys" / f"mambairv2_{config}.json").read_text())
    with torch.device("meta"):
        model = ssmblocks.create_model(LISTING_ARCH[config])
    state = model.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == listing["keys"]
    assert next(iter(state)) == "relative_position_index_SA"
    assert sum(p.numel() for p in model.parameters()) == listing["param_count"]
    meta_state = {k: torch.empty(v.shape, device="meta") for k, v in state.items()}
    found = detect_checkpoint(meta_state, config)
    assert found.family == "MambaIRv2" and found.architecture == LISTING_ARCH[config]


@needs_golden("mambair_dn_tiny", "mambairv2_dn_tiny")
def test_v1_and_v2_checkpoints_are_never_confused(tmp_path):
    v1 = ssmblocks.load_checkpoint(golden_file("mambair_dn_tiny", "pth"))
    assert v1.family == "MambaIR"
    with pytest.raises(CheckpointError, match=r"is a MambaIR checkpoint .* mambairv2_dn is not a model of that"):
        ssmblocks.create_model("mambairv2_dn", checkpoint_path=golden_file("mambair_dn_tiny", "pth"))
    with pytest.raises(CheckpointError, match=r"is a MambaIRv2 checkpoint .* mambair_dn_color is not a model of"):
        ssmblocks.create_model("mambair_dn_color", checkpoint_path=golden_file("mambairv2_dn_tiny", "pth"))
    with pytest.raises(CheckpointError, match="routing must be one of"):
        ssmblocks.load_checkpoint(golden_file("mambairv2_dn_tiny", "pth"), routing="foo")
    state = torch.load(golden_file("mambairv2_dn_tiny", "pth"), map_location="cpu", weights_only=True)["params"]
    truncated = {k: v for i, (k, v) in enumerate(state.items()) if i < len(state) // 2}
    torch.save({"params": truncated}, tmp_path / "truncated.pth")
    with pytest.raises(CheckpointError, match="MambaIRv2"):
        ssmblocks.load_checkpoint(tmp_path / "truncated.pth")
    with pytest.raises(CheckpointError, match="contradict the weights"):
        ssmblocks.load_checkpoint(golden_file("mambairv2_dn_tiny", "pth"), embed_dim=48)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="routing must be one of"):
        ssmblocks.create_model("test_mambairv2", routing="foo")
    model = ssmblocks.create_model("test_mambairv2").eval()
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 4, got 3x9"):
        model(torch.rand(1, 3, 3, 9))
    grey = ssmblocks.create_model("test_mambairv2", in_chans=1, upsampler="", upscale=1).eval()
    with pytest.raises(ValueError, match="expects 1 input channels, got 3"):
        grey(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        model.layers[0].layers[0](torch.rand(1, 24, 8, 8))


# ---- routing modes on the model ------------------------------------------------------------------------------------
def test_routing_modes_argmax_is_deterministic_gumbel_is_not():
    torch.manual_seed(0)
    model = ssmblocks.create_model("test_mambairv2").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.set_routing("gumbel")
        assert model.model_args["routing"] == "gumbel"
        torch.manual_seed(1)
        a = model(x)
        torch.manual_seed(1)
        assert torch.equal(a, model(x))
        assert not torch.equal(a, model(x))                      # a fresh draw on every call, eval included


def test_argmax_routing_trains_the_router():
    torch.manual_seed(0)
    block = ASSM(12, d_state=4, mlp_ratio=1.0, num_tokens=4, inner_rank=3)
    basis = torch.randn(3, 4)
    block(torch.randn(2, 5, 6, 12), basis).square().mean().backward()
    assert block.route[0].weight.grad.abs().sum() > 0 and block.embeddingB.weight.grad.abs().sum() > 0


# ---- the blocks on their own ---------------------------------------------------------------------------------------
def test_window_attention_tables_match_an_independent_construction():
    ws = 4
    rpi = relative_position_index(ws)
    for i in range(ws * ws):
        for j in range(ws * ws):
            (yi, xi), (yj, xj) = divmod(i, ws), divmod(j, ws)
            assert rpi[i, j] == (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1)
    mask = shifted_window_mask(8, 12, ws, 2)
    assert mask.shape == (2, 3, 16, 16) and set(mask.unique().tolist()) == {-100.0, 0.0}
    region = [[(0 if r < 4 else 1 if r < 6 else 2) * 3 + (0 if c < 8 else 1 if c < 10 else 2) for c in range(12)]
              for r in range(8)]
    last = [region[4 + a][8 + b] for a in range(4) for b in range(4)]           # the bottom-right window
    expected = torch.tensor([[0.0 if p == q else -100.0 for q in last] for p in last])
    assert torch.equal(mask[-1, -1], expected) and not mask[0, 0].any()


def test_window_attention_and_assb_run_standalone():
    torch.manual_seed(0)
    attn = WindowAttention(8, num_heads=2, window_size=4, shift_size=2)
    out = attn(torch.randn(2, 8, 12, 24))
    assert out.shape == (2, 8, 12, 8)
    with pytest.raises(ValueError, match="multiples of the window size 4"):
        attn(torch.randn(1, 6, 8, 24))
    group = ASSB(12, 2, num_heads=3, window_size=4, d_state=4, inner_rank=4, num_tokens=4, ffn="gate",
                 mlp_ratio=2.0)
    x = torch.randn(1, 12, 8, 8)
    assert group(x).shape == x.shape


# ---- the official test procedure and the weight sources -------------------------------------------------------------
def test_restore_runs_the_official_tiled_test_by_default():
    assert ssmblocks.get_pretrained_cfg("mambairv2_light_x4").protocol == "mambairv2"
    torch.manual_seed(0)
    model = ssmblocks.create_model("test_mambairv2", pretrained_cfg_overlay={"protocol": "mambairv2"}).eval()
    x = torch.rand(1, 3, 203, 90)                                  # two tile rows, one column; odd height
    with torch.no_grad():                                            # MambaIRv2Model.test: MambaIR's tiling
        expected = official_split_test(model, x, 2, base=200, shave_div=10).clamp(0, 1)   # restore clamps
    out = ssmblocks.restore(model, x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 1e-6
    assert (out - ssmblocks.restore(model, x, protocol="none")).abs().max().item() > 1e-4   # tiling is visible


def test_pretrained_from_the_hub_cache_with_a_routing_option(hand_built_cache, tmp_path):
    official = ssmblocks.create_model("mambairv2_light_x2")
    folder = tmp_path / "files"
    (folder / "MambaIRv2_ckpt").mkdir(parents=True)
    torch.save({"params": official.state_dict()}, folder / "MambaIRv2_ckpt" / "mambairv2_lightSR_x2.pth")
    cache = tmp_path / "hf"
    hand_built_cache(cache, "cguoh/MambaIR", folder, ["MambaIRv2_ckpt/mambairv2_lightSR_x2.pth"])
    model = ssmblocks.create_model("mambairv2_light_x2", pretrained=True, cache_dir=cache, routing="gumbel")
    assert model.model_args["routing"] == "gumbel" and model.layers[0].layers[0].assm.routing == "gumbel"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), official.state_dict().values(),
                                                  strict=True))
    loaded = ssmblocks.load_checkpoint(folder / "MambaIRv2_ckpt" / "mambairv2_lightSR_x2.pth", routing="gumbel")
    assert loaded.pretrained_cfg.name == "mambairv2_light_x2.official" and loaded.model_args["routing"] == "gumbel"


def test_release_url_is_the_fallback_when_the_hub_fails(served, tmp_path, monkeypatch):
    root, base = served
    official = ssmblocks.create_model("mambairv2_light_x3")
    torch.save({"params": official.state_dict()}, root / "mambairv2_lightSR_x3.pth")

    def hub_down(*args, **kwargs):
        raise ssmblocks.PretrainedUnavailableError("cannot download from the Hub (simulated)")

    monkeypatch.setattr("ssmblocks._weights.resolve_hub_file", hub_down)
    cfg = ssmblocks.get_pretrained_cfg("mambairv2_light_x3")
    assert cfg.url == "https://github.com/csguoh/MambaIR/releases/download/v1.0/mambairv2_lightSR_x3.pth"
    model = ssmblocks.create_model("mambairv2_light_x3", pretrained=True, cache_dir=tmp_path / "cache",
                                   pretrained_cfg_overlay={"url": f"{base}/mambairv2_lightSR_x3.pth"})
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), official.state_dict().values(),
                                                  strict=True))
    (root / "mambairv2_lightSR_x3.pth").unlink()
    with pytest.raises(ssmblocks.PretrainedUnavailableError, match=r"simulated(.|\n)*release URL failed too"):
        ssmblocks.create_model("mambairv2_light_x3", pretrained=True, cache_dir=tmp_path / "other",
                               pretrained_cfg_overlay={"url": f"{base}/mambairv2_lightSR_x3.pth"})


@pytest.mark.parametrize("module", [
    lambda dd: ASSB(12, 2, num_heads=2, window_size=4, d_state=4, inner_rank=4, num_tokens=4, **dd),
    lambda dd: ASSB(12, 1, num_heads=2, window_size=4, ffn="gate", **dd),
    lambda dd: WindowAttention(12, num_heads=3, window_size=4, **dd),
    lambda dd: ASSM(12, d_state=4, num_tokens=4, inner_rank=3, **dd),
])
def test_device_and_dtype_factory_arguments(module):
    assert {p.dtype for p in module({"dtype": torch.float64}).parameters()} == {torch.float64}
    assert {p.device.type for p in module({"device": "meta"}).parameters()} == {"meta"}


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        WindowAttention(12, 3, 4)
    with pytest.raises(TypeError):
        ASSM(12, 4)
    with pytest.raises(ValueError, match="even hidden width"):
        ASSB(12, 1, num_heads=2, ffn="gate", mlp_ratio=1.25)


def test_profiling_runs_both_routings():
    """The profiler runs the model on meaningless values (shapes only): routing must not read them as sizes."""
    from ssmblocks.profiling import profile

    model = ssmblocks.create_model("test_mambairv2").eval()
    for routing in ("argmax", "gumbel"):
        model.set_routing(routing)
        assert "GFLOP" in str(profile(model, (1, 3, 20, 24)))
