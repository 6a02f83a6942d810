"""Generic tests over every registered model (timm-style), and bad input."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.export import Dim

import ssmblocks
from ssmblocks.scan_orders import index_cache
from tests._tiers import REPRESENTATIVES, sweep

ALL_MODELS = ssmblocks.list_models()
TEST_MODELS = ssmblocks.list_models("test_*")


def _contract(model_name: str) -> ssmblocks.ModelContract:
    with torch.device("meta"):
        return ssmblocks.create_model(model_name).contract


def _input(model_name: str, size: int = 8, width: int | None = None) -> torch.Tensor:
    """A random input for the model: (1, C, H, W), or (1, T, C, H, W) for video models (3 frames: second-order
    propagation runs from the third frame on); H = max(size, min_size), W = width or H + 3."""
    contract = _contract(model_name)
    height = max(size, contract.min_size)
    return torch.rand(contract.example_shape(height, width if width is not None else height + 3))


def test_registry_has_every_released_model():
    expected = {f"mambair_sr_x{s}" for s in (2, 3, 4)} | {f"mambair_light_x{s}" for s in (2, 3, 4)} | {
        "mambair_realsr_x4", "mambair_dn_color", "mambair_car", "mambairunet_realdn"}
    assert expected <= set(ALL_MODELS)
    assert {"mambair_dn_color.sigma15", "mambair_dn_color.sigma25", "mambair_dn_color.sigma50",
            "mambair_car.q10", "mambair_car.q30", "mambair_car.q40"} <= set(ssmblocks.list_pretrained())


@pytest.mark.parametrize("name", sweep(ALL_MODELS, keep={*TEST_MODELS, "dvmsr"}))   # full-size: slow tier
def test_forward_shape_and_finite(name):
    model = ssmblocks.create_model(name).eval()
    contract = model.contract
    x = _input(name)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (*x.shape[:-3], contract.out_chans, x.shape[-2] * contract.scale,
                         x.shape[-1] * contract.scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", TEST_MODELS)
def test_backward_reaches_every_parameter(name):
    model = ssmblocks.create_model(name)
    with torch.no_grad():   # official inits zero some layers (MedVSR's offset heads), which would stop gradients
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model(_input(name, 16)).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    # the SSM parameters flow through the scan's own backward: their gradients must be non-zero
    ssm = [n for n, p in model.named_parameters() if n.split(".")[-1] in ("A_logs", "Ds", "x_proj_weight",
                                                                          "dt_projs_weight", "dt_projs_bias",
                                                                          "A_log", "D", "dt_bias")]
    assert ssm and all(model.get_parameter(n).grad.abs().sum() > 0 for n in ssm)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_pretrained_cfg_is_complete(name):
    cfg = ssmblocks.get_pretrained_cfg(name)
    assert cfg.architecture == name and cfg.tag
    assert cfg.task and cfg.license and cfg.paper and cfg.origin_url
    if cfg.has_weights:
        assert cfg.test_protocol and cfg.metrics is not None
    with torch.device("meta"):                  # the cfg is attached whatever the device (full sizes: no init cost)
        model = ssmblocks.create_model(name)
    assert model.pretrained_cfg == cfg


@pytest.mark.parametrize("name", TEST_MODELS)
def test_state_dict_round_trip_through_safetensors(name, tmp_path):
    model = ssmblocks.create_model(name)
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    reloaded = ssmblocks.create_model(name, checkpoint_path=path).eval()
    x = _input(name, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reloaded(x))
    assert set(load_file(str(path))) == set(model.state_dict())


@pytest.mark.parametrize("name", TEST_MODELS)
def test_training_step_after_an_inference_pass(name):
    index_cache.clear()                     # the index tables of this size are first built in inference mode
    model = ssmblocks.create_model(name)
    x = _input(name, 12)
    with torch.inference_mode():
        model.eval()(x)
    model.train()
    model(x).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# ---- torch.compile and torch.export -------------------------------------------------------------------------------
def test_the_default_tier_compiles_and_exports_a_model_of_each_kind():
    """The sweeps below run these in the default tier (the others under -m slow): they must exist and be of their
    kind, or the default run would silently lose a kind."""
    contracts = {kind: _contract(name) for kind, name in REPRESENTATIVES.items()}
    assert set(REPRESENTATIVES.values()) <= set(TEST_MODELS)
    assert contracts["image SR"].scale > 1 and not contracts["image SR"].is_video
    assert contracts["U-Net"].scale == 1 and contracts["U-Net"].multiple_of > 1 and not contracts["U-Net"].is_video
    assert contracts["video"].is_video


def _ssmblocks_op_calls(fn) -> dict[str, int]:
    """How often each ssmblocks custom op runs during ``fn()`` (eager)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    calls: dict[str, int] = {}
    for event in prof.events():
        if event.name.startswith("ssmblocks::") and not event.name.endswith("_backward"):
            calls[event.name.replace("::", ".")] = calls.get(event.name.replace("::", "."), 0) + 1
    return calls


@pytest.mark.parametrize("name", sweep(TEST_MODELS))
def test_compile_fullgraph_matches_eager_forward_and_backward(name):
    torch.manual_seed(0)
    model = ssmblocks.create_model(name)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = _input(name, 8)
    out = compiled(x)
    out.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    expected = model(x)
    expected.square().mean().backward()
    assert torch.allclose(out, expected, atol=1e-5)
    assert all(torch.allclose(grads[n], p.grad, atol=1e-5, rtol=1e-4) for n, p in model.named_parameters())


def _dynamic_sizes(name: str) -> tuple[dict[int, object], tuple[int, int], tuple[int, int]]:
    """dynamic_shapes for the input of model ``name`` (H and W symbolic) and two (H, W) sizes."""
    contract = _contract(name)
    if contract.is_video:
        # recurrent over frames in Python: T is fixed. H and W are free above one 16x16 window (MedVSR's windows);
        # both sizes cross SpyNet's 64-pixel minimum (padded on one axis, resized up to a multiple of 32 on the
        # other), and the second swaps them: SpyNet's working size goes from 64x96 to 96x64 (an odd 3-pixel level)
        height, width = Dim("height", min=17, max=256), Dim("width", min=17, max=256)
        return {3: height, 4: width}, (40, 72), (80, 50)
    step, low = _DYNAMIC_EXPORT_STEPS.get(name, contract.multiple_of), max(contract.min_size, 2)
    if name in _DYNAMIC_EXPORT_STEPS:
        low = max(low, 2 * step)
    if step == 1:
        height, width = Dim("height", min=low, max=256), Dim("width", min=low, max=256)
    else:
        blocks = -(-low // step)
        height, width = step * Dim("height", min=blocks, max=32), step * Dim("width", min=blocks, max=32)
    base = step * max(2, -(-max(low, 4) // step))      # a symbol's example value must not be 0 or 1
    first = (base, base + step)
    # the second size: other H and W, and paths longer than the scan's 64-step chunks
    second = (base + step, base + 2 * step) if base * base > 64 else (2 * base + step, 3 * base)
    return {2: height, 3: width}, first, _SECOND_SIZES.get(name, second)


# Second sizes where the generic one leaves a window layout unchanged: MambaCSR's 64-pixel windows (over the x0.5
# map too) need sides above 64 and 128 to count more than one window; from 32x48 to 80x144 every order of the model
# (w8, w64, the x0.5 w64 and the 16-pixel cross-scale windows) changes its window grid, and H != W.
_SECOND_SIZES = {"test_mambacsr": (80, 144), "test_mambacsr_wo": (80, 144)}


# Models whose dynamic export holds at multiples of a step (with at least two steps per side) but not at every
# size. MambaIRv2 pads H and W to multiples of its window inside the model; at other sizes the traced sizes are
# ceil-divisions, and torch.export (2.13) cannot prove the facts its reshape rules ask about them (guards such as
# Mod(n, 8*n) != 0) — docs/models/mambairv2.md says so. At window multiples the padding is empty and the window
# grid symbolic.
_DYNAMIC_EXPORT_STEPS = {"test_mambairv2": 8}


@pytest.mark.parametrize("name", sweep(TEST_MODELS))
def test_export_with_dynamic_size_matches_eager_at_a_second_size(name):
    torch.manual_seed(0)
    model = ssmblocks.create_model(name).eval()
    dims, first, second = _dynamic_sizes(name)
    exported = torch.export.export(model, (_input(name, *first),), dynamic_shapes=(dims,))
    x = _input(name, *second)
    with torch.no_grad():
        expected = model(x)
        calls = _ssmblocks_op_calls(lambda: model(x))
    assert torch.allclose(exported.module()(x), expected, atol=1e-5)
    # the opaque kernels are single op nodes of the graph, one per eager call
    targets = [str(node.target) for node in exported.graph.nodes if node.op == "call_function"]
    nodes = {op: sum(t == f"{op}.default" for t in targets) for op in calls}
    assert calls and nodes == calls


# ---- bad input ----------------------------------------------------------------------------------------------------
def test_wrong_channel_count():
    model = ssmblocks.create_model("test_mambair_sr")
    with pytest.raises(ValueError, match="expects 3 input channels, got 1"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expects images \(B, C, H, W\)"):
        model(torch.rand(3, 8, 8))


def test_image_smaller_than_supported():
    model = ssmblocks.create_model("test_mambairunet")
    with pytest.raises(ValueError, match="at least 8x8"):
        model(torch.rand(1, 3, 4, 12))


def test_unet_pads_sizes_that_are_not_multiples_of_8():
    model = ssmblocks.create_model("test_mambairunet").eval()
    x = torch.rand(1, 3, 13, 19)
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_corrupt_checkpoint_file(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ssmblocks.CheckpointError, match="corrupt or not a safetensors/PyTorch"):
        ssmblocks.load_checkpoint(bad)
    truncated = tmp_path / "cut.safetensors"
    save_file({"w": torch.ones(10)}, str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:-8])
    with pytest.raises(ssmblocks.CheckpointError, match="corrupt"):
        ssmblocks.create_model("test_mambair_sr", checkpoint_path=truncated)
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        ssmblocks.load_checkpoint(tmp_path / "absent.pth")


def test_mismatched_checkpoint_lists_the_keys(tmp_path):
    state = ssmblocks.create_model("test_mambair_sr").state_dict()
    del state["conv_first.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["conv_last.weight"] = torch.zeros(3, 64, 5, 5)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ssmblocks.CheckpointError) as err:
        ssmblocks.create_model("test_mambair_sr", checkpoint_path=path)
    message = str(err.value)
    assert "missing 1 keys: conv_first.bias" in message
    assert "unexpected 1 keys: extra.weight" in message
    assert "conv_last.weight (3, 64, 5, 5) vs model (3, 64, 3, 3)" in message


def test_unknown_checkpoint_family(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(ssmblocks.CheckpointError, match="not a checkpoint of any supported family"):
        ssmblocks.load_checkpoint(path)


def test_checkpoint_wrappers_and_module_prefix(tmp_path):
    model = ssmblocks.create_model("test_mambair_dn")
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "wrapped.pth"
    torch.save({"params_ema": state, "params": {k: torch.zeros_like(v) for k, v in state.items()}}, path)
    loaded = ssmblocks.load_checkpoint(path)
    assert loaded.architecture == "mambair_dn_color" and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(),
                                                  strict=True))


@pytest.mark.parametrize("name", TEST_MODELS)
def test_bfloat16_matches_float32_when_declared(name):
    model = ssmblocks.create_model(name).eval()
    assert model.contract.supports_bf16
    x = _input(name, 16)
    with torch.no_grad():
        reference = model(x)
        out = model.to(torch.bfloat16)(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert (out.float() - reference).abs().max().item() < 0.05


@pytest.mark.parametrize("name", TEST_MODELS)
def test_a_model_built_from_its_class_restores_exactly_as_from_create_model(name):
    """The contract is the model's, not its cfg's: a model built from its class (no pretrained_cfg) has the same
    contract and restore() runs it exactly as the registered model (VSRM's probe once mistook SpyNet's first conv
    for the input)."""
    registered = ssmblocks.create_model(name).eval()
    direct = type(registered)(**registered.model_args).eval()
    direct.load_state_dict(registered.state_dict())
    assert not hasattr(direct, "pretrained_cfg") and direct.contract == registered.contract
    x = _input(name, 12)
    torch.testing.assert_close(ssmblocks.restore(direct, x, protocol="none"),
                               ssmblocks.restore(registered, x, protocol="none"), rtol=0, atol=0)
