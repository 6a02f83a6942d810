"""VSRM (built from its paper): sizes and parameter counts, the S2T/T2S direction properties of single mixers,
the shared/separate-direction option both ways, TGFN's space-time neighbourhood, DCA's sampling (Eq. 8, both
anchorings) and its cross-mamba streams (A, B from the reference, C from the query), and bad input."""

from __future__ import annotations

import math

import pytest
import torch

import ssmblocks
from ssmblocks._weights import PretrainedUnavailableError
from ssmblocks.blocks.clip_blocks import DAMB, S2TMB, T2SMB
from ssmblocks.blocks.s2t_mamba import S2TMamba, t2s_mamba
from ssmblocks.blocks.tgfn import TGFN
from ssmblocks.necks.cross_mamba_alignment import DeformableCrossMambaAlignment, sinusoidal_encoding_2d
from ssmblocks.scan_orders import FrameMajor


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- the model -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("frames", "height", "width"), [(3, 8, 11), (6, 6, 9), (7, 9, 6)])
def test_clips_of_3_6_7_frames_and_non_square_frames(frames, height, width):
    model = ssmblocks.create_model("test_vsrm").eval()
    clip = torch.rand(1, frames, 3, height, width, generator=_gen())
    with torch.no_grad():
        out = model(clip)
    assert out.shape == (1, frames, 3, 4 * height, 4 * width)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "paper_count"), [("vsrm", 17.1e6), ("vsrm_ablation", 8.61e6)])
def test_parameter_counts_are_within_one_percent_of_the_paper(name, paper_count):
    with torch.device("meta"):
        model = ssmblocks.create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - paper_count) <= 0.01 * paper_count, count


def test_no_weights_cfg_points_to_the_training_recipe():
    cfg = ssmblocks.get_pretrained_cfg("vsrm")
    assert cfg.tag == "none" and not cfg.has_weights
    assert "ssmblocks train --model vsrm" in cfg.notes and ssmblocks.create_model("test_vsrm").contract.min_frames == 2
    with pytest.raises(PretrainedUnavailableError, match=r"vsrm\.none has no published weights"):
        ssmblocks.create_model("vsrm", pretrained=True)


@pytest.mark.parametrize(("clip", "message"), [
    (torch.rand(1, 1, 3, 8, 8), "at least 2 frames"),
    (torch.rand(1, 3, 8, 8), "video"),
    (torch.rand(1, 2, 1, 8, 8), "3 channels"),
    ((torch.rand(1, 2, 3, 8, 8) * 255).to(torch.uint8), "float"),
])
def test_bad_clips_are_refused_with_a_message(clip, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ssmblocks.create_model("test_vsrm")(clip)


# ---- mixers: which outputs one token can reach -------------------------------------------------------------------
def _reach(mixer: torch.nn.Module, shape=(1, 3, 2, 3, 8), token=(1, 1, 1)) -> torch.Tensor:
    """Bool (T, H, W): the outputs that change when the input token at (t, h, w) = ``token`` changes."""
    x = torch.randn(*shape, generator=_gen(1))
    y = x.clone()
    y[(0, *token)] += torch.randn(shape[-1], generator=_gen(2))
    with torch.no_grad():
        return (mixer(y) - mixer(x)).abs().amax(-1)[0] > 1e-6


def _order_positions(frames: int, height: int, width: int, time_major: bool) -> torch.Tensor:
    """(T, H, W): each token's step in the frame-major (t, h, w) or time-major ((h, w), t) order."""
    t, p = torch.meshgrid(torch.arange(frames), torch.arange(height * width), indexing="ij")
    step = p * frames + t if time_major else t * height * width + p
    return step.view(frames, height, width)


def test_t2s_mixer_is_causal_in_its_time_major_order():
    torch.manual_seed(0)
    changed = _reach(t2s_mamba(8, d_state=4))
    step = _order_positions(3, 2, 3, time_major=True)
    perturbed = step[1, 1, 1]
    assert not changed[step < perturbed].any()
    assert changed[step >= perturbed].all()


@pytest.mark.parametrize("share_directions", [True, False])
def test_s2t_mixer_reaches_both_directions_of_its_frame_major_order(share_directions):
    torch.manual_seed(0)
    changed = _reach(S2TMamba(8, d_state=4, share_directions=share_directions))
    assert changed.all()                                  # earlier and later frames alike: not causal
    only_forward = _reach(t2s_mamba(8, d_state=4, scan_order=FrameMajor()))
    step = _order_positions(3, 2, 3, time_major=False)
    assert not only_forward[step < step[1, 1, 1]].any()  # its forward path alone is causal in frame-major order


def test_separate_directions_with_copied_parameters_equal_shared_directions():
    torch.manual_seed(0)
    shared = S2TMamba(8, d_state=4)
    separate = S2TMamba(8, d_state=4, share_directions=False)
    assert {"conv1d_b.weight", "x_proj_b.weight", "dt_proj_b.weight", "A_b_log", "D_b"} <= set(
        separate.state_dict())
    state = shared.state_dict()
    state.update({"conv1d_b.weight": state["conv1d.weight"], "conv1d_b.bias": state["conv1d.bias"],
                  "x_proj_b.weight": state["x_proj.weight"], "dt_proj_b.weight": state["dt_proj.weight"],
                  "dt_proj_b.bias": state["dt_proj.bias"], "A_b_log": state["A_log"], "D_b": state["D"]})
    separate.load_state_dict(state)
    x = torch.randn(2, 3, 4, 5, 8, generator=_gen())
    torch.testing.assert_close(separate(x), shared(x), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        separate.A_b_log.add_(0.5)                         # the backward path really reads its own parameters
    assert not torch.allclose(separate(x), shared(x), atol=1e-4)


def test_s2t_equals_gated_forward_plus_gated_backward_scan_through_one_out_projection():
    """Eq. 4: out = Linear(x1 z + x2 z), x1/x2 the forward / backward scans of the frame-major sequence."""
    torch.manual_seed(0)
    mixer = S2TMamba(8, d_state=4)
    forward_only = t2s_mamba(8, d_state=4, scan_order=mixer.scan_order.orders[0])
    backward_only = t2s_mamba(8, d_state=4, scan_order=mixer.scan_order.orders[1])
    forward_only.load_state_dict(mixer.state_dict())
    backward_only.load_state_dict(mixer.state_dict())
    x = torch.randn(1, 3, 4, 5, 8, generator=_gen())
    torch.testing.assert_close(mixer(x), forward_only(x) + backward_only(x), rtol=1e-4, atol=1e-5)


def test_damb_is_s2tmbs_then_one_t2smb_and_blocks_keep_clip_shapes():
    damb = DAMB(8, depth=3, d_state=4)
    assert [type(b) for b in damb] == [S2TMB, S2TMB, S2TMB, T2SMB]
    x = torch.randn(1, 2, 3, 5, 8, generator=_gen())
    assert damb(x).shape == x.shape
    with pytest.raises(ValueError, match="at least one S2TMB"):
        DAMB(8, depth=0)


@pytest.mark.parametrize(("kernel", "frames_reached"), [((3, 3, 3), [1, 2, 3]), ((1, 3, 3), [2])])
def test_tgfn_mixes_a_space_time_neighbourhood(kernel, frames_reached):
    torch.manual_seed(0)
    ffn = TGFN(8, kernel_size=kernel)
    changed = _reach(ffn, shape=(1, 5, 5, 5, 8), token=(2, 2, 2))
    assert changed.any(dim=(1, 2)).nonzero().flatten().tolist() == frames_reached
    assert changed.any(dim=(0, 1)).nonzero().flatten().tolist() == [1, 2, 3]     # 3x3 in space


# ---- DCA ---------------------------------------------------------------------------------------------------------
def _streams(dca: DeformableCrossMambaAlignment, query, reference, flow):
    """The inputs of the cross-mamba's reference projection (A, B, x) and query projection (C), and the output."""
    seen = {}
    hooks = [dca.cross_mamba.in_proj.register_forward_hook(lambda m, a, o: seen.__setitem__("ref", a[0])),
             dca.cross_mamba.in_proj_b.register_forward_hook(lambda m, a, o: seen.__setitem__("query", a[0]))]
    with torch.no_grad():
        out = dca(query, reference, flow)
    for hook in hooks:
        hook.remove()
    return seen["ref"], seen["query"], out


def test_dca_takes_c_from_the_query_and_a_b_from_the_reference():
    torch.manual_seed(0)
    dca = DeformableCrossMambaAlignment(8, d_state=4, headdim=8)
    with torch.no_grad():
        for p in dca.offset_net.parameters():               # non-zero offsets: the sampling depends on them too
            p.add_(0.05 * torch.randn_like(p))
    query, reference = torch.randn(2, 1, 8, 6, 7, generator=_gen()).unbind(0)
    flow = torch.randn(1, 2, 6, 7, generator=_gen(1))
    ref0, qry0, out0 = _streams(dca, query, reference, flow)
    ref1, qry1, out1 = _streams(dca, query + 1.0, reference, flow)
    assert torch.equal(ref1, ref0) and not torch.allclose(qry1, qry0) and not torch.allclose(out1, out0)
    ref2, qry2, out2 = _streams(dca, query, reference + 1.0, flow)
    assert torch.equal(qry2, qry0) and not torch.allclose(ref2, ref0) and not torch.allclose(out2, out0)


@pytest.mark.parametrize("snap_to_grid", [True, False])
def test_dca_samples_the_reference_region_around_the_flow_target(snap_to_grid):
    """Zero offsets (the init), no encodings: pixel (y, x) with flow (1.5, 0) reads the 3x3 reference region
    centred at (y, floor(x + 1.5)) (Eq. 8) or, not snapped, at (y, x + 1.5) (bilinear), zeros outside."""
    dca = DeformableCrossMambaAlignment(4, d_state=4, headdim=4, positional_encoding=False, snap_to_grid=snap_to_grid)
    reference = torch.randn(1, 4, 5, 6, generator=_gen())
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0] = 1.5
    tokens, _, _ = _streams(dca, torch.zeros_like(reference), reference, flow)
    tokens = tokens.view(5, 6, 9, 4)
    padded = torch.nn.functional.pad(reference[0], (2, 4, 1, 1))              # (C, 7, 12): index + (1, 2)
    for y, x in [(0, 0), (2, 3), (4, 5)]:
        for k, (i, j) in enumerate((i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)):
            cx = x + 1 if snap_to_grid else x + 1.5
            lo, frac = math.floor(cx + j), (cx + j) - math.floor(cx + j)
            expected = (1 - frac) * padded[:, y + i + 1, lo + 2] + frac * padded[:, y + i + 1, lo + 3]
            torch.testing.assert_close(tokens[y, x, k], expected)


def test_sinusoidal_encoding_formula():
    py, px = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.5])
    pe = sinusoidal_encoding_2d(py, px, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    w = 10000 ** -0.5
    expected = [math.sin(2), math.sin(2 * w), math.cos(2), math.cos(2 * w),
                math.sin(-1.5), math.sin(-1.5 * w), math.cos(-1.5), math.cos(-1.5 * w)]
    torch.testing.assert_close(pe[1], torch.tensor(expected))


def test_dca_refuses_bad_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        DeformableCrossMambaAlignment(6)
    dca = DeformableCrossMambaAlignment(4, headdim=4)
    with pytest.raises(ValueError, match="one shape"):
        dca(torch.zeros(1, 4, 5, 5), torch.zeros(1, 4, 5, 6), torch.zeros(1, 2, 5, 5))
