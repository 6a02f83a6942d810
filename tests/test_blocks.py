"""Blocks that compose: constructors, factory/Schedule groups, small widths, device/dtype, the inference fast path
against the training path and a plain re-derivation of SS2D, and the docs/blocks.md example."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ssmblocks
from ssmblocks import blocks
from ssmblocks.blocks import CAB, SS2D, BlockSequence, ChannelAttention, ResidualGroup, VSSBlock
from ssmblocks.ops import selective_scan_ref
from ssmblocks.scan_orders import Windowed, bidirectional, cross_scan, dual_interleaved

DOCS = Path(__file__).resolve().parents[1] / "docs" / "blocks.md"


# ---- constructors ----------------------------------------------------------------------------------------------
def test_vss_block_works_at_small_widths():
    block = VSSBlock(16)
    x = torch.rand(2, 5, 7, 16, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())
    attention = block.conv_blk.cab[-1].attention
    assert attention[1].out_channels == 1      # 16 // 30 clamped to one channel


@pytest.mark.parametrize(("variant", "dim", "hidden"), [("classic", 180, 60), ("light_mar2024", 60, 10),
                                                        ("light_oct2024", 60, 30), ("classic", 16, 5)])
def test_cab_widths_match_the_official_ones(variant, dim, hidden):
    cab = CAB(dim, variant=variant)
    assert cab.cab[0].out_channels == hidden
    assert cab.cab[-1].attention[1].out_channels == max(1, dim // 30)
    assert ChannelAttention(180).attention[1].out_channels == 6


def test_every_mixer_option_is_exposed_on_the_block():
    block = VSSBlock(32, d_state=5, expand=1.5, d_conv=5, dt_rank=3, bias=True, conv_bias=False, cab_variant="classic",
                     compress_ratio=4, squeeze_factor=8, norm_eps=1e-6, scan_order=bidirectional(Windowed(4)),
                     dt_min=0.01, dt_max=0.02, dt_init_floor=0.015)
    mixer = block.self_attention
    assert mixer.conv2d.kernel_size == (5, 5) and mixer.conv2d.bias is None
    assert mixer.in_proj.bias is not None and mixer.out_proj.bias is not None
    assert mixer.x_proj_weight.shape == (2, 3 + 2 * 5, 48) and mixer.dt_projs_weight.shape == (2, 48, 3)
    assert block.conv_blk.cab[0].out_channels == 8 and block.conv_blk.cab[-1].attention[1].out_channels == 4
    assert block.ln_1.eps == block.ln_2.eps == 1e-6
    dt = F.softplus(mixer.dt_projs_bias)       # the initial dt lies in [max(dt_min, floor), dt_max]
    assert dt.min() >= 0.015 - 1e-6 and dt.max() <= 0.02 + 1e-6
    assert block(torch.rand(1, 6, 9, 32)).shape == (1, 6, 9, 32)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        VSSBlock(16, 4)
    with pytest.raises(TypeError):
        SS2D(16, 4)
    with pytest.raises(ValueError, match="odd"):
        SS2D(16, d_conv=4)


@pytest.mark.parametrize("module", [lambda dd: VSSBlock(16, **dd), lambda dd: ResidualGroup(16, 2, d_state=4, **dd),
                                    lambda dd: CAB(32, variant="light_oct2024", **dd)])
def test_device_and_dtype_factory_arguments(module):
    assert {p.dtype for p in module({"dtype": torch.float64}).parameters()} == {torch.float64}
    assert {p.device.type for p in module({"device": "meta"}).parameters()} == {"meta"}


# ---- groups ----------------------------------------------------------------------------------------------------
def test_residual_group_gives_block_i_the_schedules_entry_i():
    schedule = dual_interleaved(local=4, global_=8)
    group = ResidualGroup(16, 6, schedule=schedule, d_state=4)
    orders = [block.self_attention.scan_order for block in group.residual_group.blocks]
    assert orders == [schedule[i] for i in range(6)]
    assert orders[4] is orders[0] and orders[1] is not orders[0]
    assert all(block.self_attention.x_proj_weight.shape[0] == 2 for block in group.residual_group.blocks)
    assert set(group.state_dict()) >= {"conv.weight", "residual_group.blocks.5.self_attention.A_logs"}
    x = torch.rand(1, 16, 10, 13)
    with torch.no_grad():
        assert group(x).shape == x.shape


def test_a_list_of_orders_is_a_schedule():
    orders = [cross_scan(2), bidirectional(Windowed(4))]
    sequence = BlockSequence(16, 3, schedule=orders, d_state=4)
    assert [b.self_attention.scan_order for b in sequence] == [orders[0], orders[1], orders[0]]


def test_residual_group_takes_a_block_factory():
    seen = []

    def factory(i):
        seen.append(i)
        return VSSBlock(16, d_state=2 + i, cab_variant="light_feb2024")

    group = ResidualGroup(16, 3, block_factory=factory)
    assert seen == [0, 1, 2]
    assert [b.self_attention.d_state for b in group.residual_group.blocks] == [2, 3, 4]
    x = torch.rand(2, 16, 6, 5, requires_grad=True)
    group(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_group_arguments_that_conflict_are_refused():
    with pytest.raises(ValueError, match="block_factory builds every block itself"):
        ResidualGroup(16, 2, block_factory=lambda i: VSSBlock(16), schedule=dual_interleaved())
    with pytest.raises(ValueError, match="block_factory builds every block itself"):
        ResidualGroup(16, 2, block_factory=lambda i: VSSBlock(16), d_state=4)
    with pytest.raises(ValueError, match=r"either scan_order .* or schedule"):
        ResidualGroup(16, 2, schedule=dual_interleaved(), scan_order=cross_scan(4))
    with pytest.raises(ValueError, match=r"expects \(B, C, H, W\)"):
        ResidualGroup(16, 1)(torch.rand(16, 4, 4))


def test_models_take_a_schedule_and_keep_official_keys():
    schedule = dual_interleaved(local=4, global_=8)
    model = ssmblocks.create_model("test_mambair_sr", scan_order=schedule)
    blocks = model.layers[1].residual_group.blocks
    assert [b.self_attention.scan_order for b in blocks] == [schedule[0], schedule[1]]
    unet = ssmblocks.create_model("test_mambairunet", scan_order=schedule)
    assert unet.encoder_level1[0].self_attention.scan_order is schedule[0]
    keys = set(unet.state_dict())
    assert "encoder_level1.0.self_attention.A_logs" in keys and "refinement.0.conv_blk.cab.0.weight" in keys


# ---- the inference fast path, the training path and a plain SS2D ---------------------------------------------
def _plain_ss2d(m: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D with the 4-path cross-scan written out from the official formulas: one in_proj, explicit flips and
    transposes, einsums, the sequential reference scan. (B, H, W, C) -> (B, H, W, C)."""
    b, h, w, _ = x.shape
    d, n, r = m.d_inner, m.d_state, m.dt_rank
    u, z = m.in_proj(x).chunk(2, dim=-1)
    u = F.silu(m.conv2d(u.permute(0, 3, 1, 2).contiguous()))
    row, col = u.flatten(2), u.transpose(2, 3).flatten(2)
    paths = torch.stack([row, col, row.flip(-1), col.flip(-1)], dim=1)                  # (B, 4, d, L)
    x_dbl = torch.einsum("bkdl,kcd->bkcl", paths, m.x_proj_weight)
    dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
    dts = torch.einsum("bkrl,kdr->bkdl", dts, m.dt_projs_weight)
    y = selective_scan_ref(paths.reshape(b, 4 * d, -1), dts.reshape(b, 4 * d, -1), -torch.exp(m.A_logs), bs, cs,
                           m.Ds, delta_bias=m.dt_projs_bias.flatten(), delta_softplus=True).view(b, 4, d, -1)
    untranspose = lambda t: t.view(b, d, w, h).transpose(2, 3).reshape(b, d, -1)  # noqa: E731
    merged = y[:, 0] + y[:, 2].flip(-1) + untranspose(y[:, 1]) + untranspose(y[:, 3].flip(-1))
    out = m.out_norm(merged.view(b, d, h, w).permute(0, 2, 3, 1)) * F.silu(z)
    return m.out_proj(out)


def test_ss2d_matches_a_plain_derivation_in_values_and_gradients():
    torch.manual_seed(0)
    m = SS2D(8, d_state=3, expand=1.5).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, 5, 6, 8, dtype=torch.float64, requires_grad=True)
    ours = m(x)
    grads = torch.autograd.grad(ours.square().sum(), [x, *m.parameters()])
    plain = _plain_ss2d(m, x)
    plain_grads = torch.autograd.grad(plain.square().sum(), [x, *m.parameters()])
    torch.testing.assert_close(ours, plain, rtol=0, atol=1e-12)
    for (name, _), g, p in zip([("x", x), *m.named_parameters()], grads, plain_grads, strict=True):
        torch.testing.assert_close(g, p, rtol=1e-9, atol=1e-11, msg=f"gradient of {name}")


@pytest.mark.parametrize("name", ["test_mambair_light", "test_mambairunet"])
def test_inference_fast_path_equals_training_path(name):
    torch.manual_seed(0)
    model = ssmblocks.create_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    x = torch.rand(1, 3, 16, 16)
    train_out = model(x)                    # gradients enabled: the autograd-safe, out-of-place path
    with torch.inference_mode():
        fast = model.eval()(x)
    with torch.no_grad():
        fast_no_grad = model(x)
    assert torch.equal(fast, train_out.detach())
    assert torch.equal(fast_no_grad, fast)


def test_inference_does_not_modify_the_input():
    block = VSSBlock(16).eval()
    group = ResidualGroup(16, 1).eval()
    tokens, feat = torch.rand(1, 4, 5, 16), torch.rand(1, 16, 4, 5)
    before = tokens.clone(), feat.clone()
    with torch.inference_mode():
        block(tokens)
        group(feat)
    assert torch.equal(tokens, before[0]) and torch.equal(feat, before[1])


# ---- the documented example --------------------------------------------------------------------------------------
def test_docs_example_trains_a_small_sr_network_on_the_dual_interleaved_schedule():
    code = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(code) == 1
    scope: dict = {}
    exec(compile(code[0], str(DOCS), "exec"), scope)
    model, losses = scope["model"], scope["losses"]
    blocks = model.body[0].residual_group.blocks
    assert [b.self_attention.scan_order for b in blocks] == [model.schedule[i] for i in range(4)]
    assert repr(model.schedule[2].orders[0]).startswith("Windowed(16")
    assert len(losses) == 6 and all(map(torch.isfinite, torch.tensor(losses)))
    assert losses[-1] < losses[0]
    mixed = scope["mixed"].residual_group.blocks
    assert [b.self_attention.x_proj_weight.shape[0] for b in mixed] == [2, 4, 2, 4]


# ---- heap reuse during inference -----------------------------------------------------------------------------------


# ---- layouts and signatures (docs/blocks.md: one layout per block, checked at its entry) -----------------------

B, T, H, W, C = 1, 2, 6, 10, 8

LAYOUT_CASES = {
    "VSSBlock": (lambda: blocks.VSSBlock(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "RLMB": (lambda: blocks.RLMB(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "MHSSM": (lambda: blocks.MHSSM(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "EAMambaBlock": (lambda: blocks.EAMambaBlock(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "SimpleGateFFN": (lambda: blocks.SimpleGateFFN(C), "(B, H, W, C)", (B, H, W, C)),
    "SS2D": (lambda: blocks.SS2D(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "MaIRMixer": (lambda: blocks.MaIRMixer(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "MaIRBlock": (lambda: blocks.MaIRBlock(C, d_state=4), "(B, H, W, C)", (B, H, W, C)),
    "ViMM": (lambda: blocks.ViMM(C, d_state=4), "(B, ..., C)", (B, H, W, C)),
    "Mamba": (lambda: blocks.Mamba(C, d_state=4), "(B, ..., C)", (B, H, W, C)),
    "Mamba2": (lambda: blocks.Mamba2(C, d_state=4, headdim=4), "(B, L, C)", (B, H * W, C)),
    "Mamba2Block": (lambda: blocks.Mamba2Block(C, d_state=4, headdim=4), "(B, L, C)", (B, H * W, C)),
    "GatedMLP": (lambda: blocks.GatedMLP(C, hidden_features=2 * C), "(B, ..., C)", (B, H, W, C)),
    "BiAttn": (lambda: blocks.BiAttn(C), "(B, ..., C)", (B, H * W, C)),
    "CAB": (lambda: blocks.CAB(C), "(B, C, H, W)", (B, C, H, W)),
    "ChannelAttention": (lambda: blocks.ChannelAttention(C, squeeze_factor=2), "(B, C, H, W)", (B, C, H, W)),
    "ResidualBlockNoBN": (lambda: blocks.ResidualBlockNoBN(C), "(B, C, H, W)", (B, C, H, W)),
    "ResidualGroup": (lambda: blocks.ResidualGroup(C, 1, d_state=4), "(B, C, H, W)", (B, C, H, W)),
    "WindowedMamba2Layer": (lambda: blocks.WindowedMamba2Layer(C, 1, window_size=4, d_state=4, headdim=4),
                            "(B, C, H, W)", (B, C, H, W)),
    "TGFN": (lambda: blocks.TGFN(C), "(B, T, H, W, C)", (B, T, H, W, C)),
    "S2TMB": (lambda: blocks.S2TMB(C, d_state=4), "(B, T, H, W, C)", (B, T, H, W, C)),
    "T2SMB": (lambda: blocks.T2SMB(C, d_state=4), "(B, T, H, W, C)", (B, T, H, W, C)),
    "AttentiveLayer": (lambda: blocks.AttentiveLayer(C, num_heads=2, window_size=2, d_state=4, inner_rank=2,
                                                     num_tokens=3), "(B, H, W, C)", (B, H, W, C)),
    "ASSB": (lambda: blocks.ASSB(C, 2, num_heads=2, window_size=2, d_state=4, inner_rank=2, num_tokens=3),
             "(B, C, H, W)", (B, C, H, W)),
    "ConvFFN": (lambda: blocks.ConvFFN(C, hidden_features=2 * C), "(B, H, W, C)", (B, H, W, C)),
    "SpatialGateFFN": (lambda: blocks.SpatialGateFFN(C, hidden_features=2 * C), "(B, H, W, C)", (B, H, W, C)),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_CASES))
def test_a_block_names_its_layout_when_given_another(name):
    make, layout, shape = LAYOUT_CASES[name]
    block = make().eval()
    with torch.no_grad():
        assert block(torch.rand(shape)).shape == shape
        # the channels moved to another axis (the usual mistake: channels-first for channels-last and back)
        wrong = torch.rand(shape).movedim(-1 if layout.endswith("C)") else 1, 1 if layout.endswith("C)") else -1)
        if wrong.shape == shape:   # a rank-3 (B, L, C) with L == C would not show: drop a dimension instead
            wrong = torch.rand(shape[1:])
        with pytest.raises(ValueError, match=re.escape(layout)):
            block(wrong)
        with pytest.raises(ValueError, match=name):
            block(torch.rand(*shape[:-1], C + 1) if layout.endswith("C)") else torch.rand(B, C + 1, H, W))


def test_docs_list_every_block_with_its_layout():
    text = DOCS.read_text()
    for name in ssmblocks.blocks.__all__:
        if name[0].isupper() and name not in ("BLOCK_LAYOUTS", "CAB_VARIANTS"):
            assert re.search(rf"^\| `{name}\b", text, flags=re.M), f"docs/blocks.md lists no {name}"
    for name, (_, layout, _) in LAYOUT_CASES.items():
        row = re.search(rf"^\| `{name}\b[^\n]*", text, flags=re.M).group(0)
        assert layout in row, f"docs/blocks.md gives {name} another layout than {layout}: {row}"


@pytest.mark.parametrize("cls", [blocks.ResidualGroup, blocks.BlockSequence, blocks.WindowedMamba2Layer,
                                 blocks.DAMB])
def test_depth_is_the_second_positional_argument_of_every_stack(cls):
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params[:2]] == ["dim", "depth"]
    assert params[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
