"""flow_warp and deform_conv2d against direct references, plain convolution and exact shifts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scan_inputs import needs_compiler

from ssmblocks.export import portable_backends
from ssmblocks.ops import (
    _native,
    available_backends,
    compose_flows,
    deform_conv2d,
    deform_conv2d_ref,
    flow_warp,
    flow_warp_ref,
    get_backend,
    use_backend,
)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---- flow_warp ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("size", [(5, 7), (2, 6), (8, 8)], ids=str)
def test_flow_warp_matches_reference_values_and_gradients(padding_mode, size):
    x = _rand(2, 3, *size, seed=1).requires_grad_()
    flow = (_rand(2, 2, *size, seed=2) * 3).requires_grad_()       # reaches outside the map
    out = flow_warp(x, flow, padding_mode)
    ref = flow_warp_ref(x, flow, padding_mode)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    grad_out = _rand(*out.shape, seed=3)
    gx, gf = torch.autograd.grad(out, (x, flow), grad_out)
    rx, rf = torch.autograd.grad(ref, (x, flow), grad_out)
    torch.testing.assert_close(gx, rx, rtol=0, atol=1e-12)
    # the flow gradient differs only where a sample lies exactly on a pixel row/column (a kink); none here
    torch.testing.assert_close(gf, rf, rtol=0, atol=1e-10)


def test_flow_warp_integer_flow_is_a_shift_with_zeros_entering():
    x = _rand(1, 2, 6, 6, seed=4)
    flow = torch.zeros(1, 2, 6, 6, dtype=torch.float64)
    flow[:, 0] = 1.0                        # every pixel reads its right neighbour
    flow[:, 1] = -2.0                       # ... two rows up
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[..., 2:, :5], x[..., :4, 1:], rtol=0, atol=1e-12)
    assert out[..., :2, :].abs().max() < 1e-12 and out[..., :, 5].abs().max() < 1e-12
    torch.testing.assert_close(flow_warp(x, torch.zeros_like(flow)), x, rtol=0, atol=1e-12)


def test_compose_flows_of_constant_flows_adds_them():
    a = torch.full((1, 2, 9, 9), 0.5, dtype=torch.float64)
    b = torch.full((1, 2, 9, 9), 1.25, dtype=torch.float64)
    composed = compose_flows(a, b)
    torch.testing.assert_close(composed[..., :7, :7], a[..., :7, :7] + b[..., :7, :7], rtol=0, atol=1e-12)


def test_flow_warp_bad_input_names_the_problem():
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"flow must have shape \(B, 2, H, W\)"):
        flow_warp(x, torch.zeros(1, 8, 8, 2))
    with pytest.raises(ValueError, match="padding_mode"):
        flow_warp(x, torch.zeros(1, 2, 8, 8), "reflection")


# ---- deform_conv2d -----------------------------------------------------------------------------------------------
CASES = {  # (batch, C_in, C_out, H, W, kernel, stride, padding, dilation, groups, offset_groups, mask, bias)
    "medvsr_like": (1, 8, 4, 5, 6, 3, 1, 1, 1, 1, 4, True, True),
    "groups": (2, 4, 6, 4, 5, 3, 1, 1, 1, 2, 2, True, False),
    "strided_dilated": (1, 3, 2, 7, 6, (3, 2), 2, (2, 1), (1, 2), 1, 1, False, True),
    "one_by_one": (1, 2, 3, 3, 3, 1, 1, 0, 1, 1, 2, True, True),
    "far_offsets": (1, 4, 4, 4, 4, 3, 1, 1, 1, 1, 2, True, True),    # offsets x 4 below: many samples outside
}
DCN_BACKENDS = ["native", "torch"]


@needs_compiler
def test_deform_conv_native_backend_is_built_here():
    # CI machines have a C++ compiler: the native kernel must be available and chosen on CPU, not silently skipped
    assert available_backends("deform_conv", "cpu") == DCN_BACKENDS
    assert get_backend("deform_conv", "cpu", torch.float32) == "native"


def _dcn_inputs(batch, c_in, c_out, h, w, kernel, stride, padding, dilation, groups, offset_groups, mask, bias):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return {
        "x": _rand(batch, c_in, h, w, seed=10),
        "offset": _rand(batch, 2 * offset_groups * kh * kw, out_h, out_w, seed=11) * (4 if h == w == 4 else 2),
        "weight": _rand(c_out, c_in // groups, kh, kw, seed=12),
        "bias": _rand(c_out, seed=13) if bias else None,
        "mask": torch.sigmoid(_rand(batch, offset_groups * kh * kw, out_h, out_w, seed=14)) if mask else None,
    }, {"stride": stride, "padding": padding, "dilation": dilation}


@pytest.mark.parametrize("backend", [pytest.param("native", marks=needs_compiler), "torch"])
@pytest.mark.parametrize("case", CASES)
def test_deform_conv_matches_the_per_pixel_loop(case, backend):
    tensors, geometry = _dcn_inputs(*CASES[case])
    leaves = {k: v.requires_grad_() for k, v in tensors.items() if v is not None}
    with use_backend("deform_conv", backend):
        out = deform_conv2d(**tensors, **geometry)
    ref = deform_conv2d_ref(**tensors, **geometry)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    grad_out = _rand(*out.shape, seed=15)
    grads = torch.autograd.grad(out, list(leaves.values()), grad_out)
    ref_grads = torch.autograd.grad(ref, list(leaves.values()), grad_out)
    for name, g, r in zip(leaves, grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-10, msg=name)


@needs_compiler
@pytest.mark.parametrize("case", ["medvsr_like", "groups", "strided_dilated"])
def test_deform_conv_float32_backends_agree_with_the_float64_loop(case):
    tensors, geometry = _dcn_inputs(*CASES[case])
    grad_out = _rand(*deform_conv2d_ref(**tensors, **geometry).shape, seed=16)
    results = {}
    for backend in DCN_BACKENDS:
        low = {k: v.float().requires_grad_() for k, v in tensors.items() if v is not None}
        with use_backend("deform_conv", backend):
            out = deform_conv2d(**low, **geometry)
        assert out.dtype == torch.float32
        results[backend] = (out, *torch.autograd.grad(out, list(low.values()), grad_out.float()))
    leaves = {k: v.requires_grad_() for k, v in tensors.items() if v is not None}
    ref = deform_conv2d_ref(**tensors, **geometry)
    expected = (ref, *torch.autograd.grad(ref, list(leaves.values()), grad_out))
    for backend, got in results.items():
        for name, g, r in zip(["out", *leaves], got, expected, strict=True):
            torch.testing.assert_close(g.double(), r, rtol=1e-5, atol=1e-5, msg=f"{backend} {name}")
    for name, g, r in zip(["out", *leaves], results["native"], results["torch"], strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5, msg=f"native vs torch {name}")


@pytest.mark.parametrize("with_mask", [True, False])
def test_deform_im2col_op_passes_opcheck(with_mask):
    tensors, _ = _dcn_inputs(*CASES["strided_dilated"])
    mask = torch.rand(1, 6, 5, 3, dtype=torch.float64, requires_grad=True) if with_mask else None
    args = (tensors["x"].requires_grad_(), tensors["offset"].requires_grad_(), mask, [3, 2], [2, 2], [2, 1], [1, 2])
    torch.library.opcheck(torch.ops.ssmblocks.deform_im2col.default, args)
    with pytest.raises(ValueError, match="deform_im2col got inconsistent inputs"):
        torch.ops.ssmblocks.deform_im2col(args[0], args[1][..., :-1], *args[2:])


def test_deform_conv_backend_choice_decides_whether_the_kernel_runs(monkeypatch):
    tensors, geometry = _dcn_inputs(*CASES["medvsr_like"])
    calls = []
    original = _native.deform_im2col
    monkeypatch.setattr(_native, "deform_im2col", lambda *a: calls.append(1) or original(*a))
    native = deform_conv2d(**tensors, **geometry)
    assert calls == [1]
    with use_backend("deform_conv", "torch"):
        forced = deform_conv2d(**tensors, **geometry)
    with portable_backends():                              # what ONNX export uses: the pure-PyTorch path
        portable = deform_conv2d(**tensors, **geometry)
    assert calls == [1]
    torch.testing.assert_close(forced, native, rtol=0, atol=1e-12)
    torch.testing.assert_close(portable, native, rtol=0, atol=1e-12)
    deform_conv2d(**{k: v.float() for k, v in tensors.items()}, **geometry)
    deform_conv2d(**{**tensors, "offset": tensors["offset"].float()}, **geometry)   # mixed dtypes: torch path
    assert calls == [1, 1]


def test_deform_conv_with_zero_offsets_is_a_convolution():
    tensors, geometry = _dcn_inputs(*CASES["groups"])
    tensors["offset"] = torch.zeros_like(tensors["offset"])
    tensors["mask"] = torch.ones_like(tensors["mask"])
    expected = F.conv2d(tensors["x"], tensors["weight"], None, groups=2, **geometry)
    torch.testing.assert_close(deform_conv2d(**tensors, **geometry), expected, rtol=0, atol=1e-12)


def test_deform_conv_integer_offset_shifts_the_input():
    x = _rand(1, 2, 6, 6, seed=20)
    weight = torch.zeros(2, 2, 1, 1, dtype=torch.float64)
    weight[0, 0] = weight[1, 1] = 1.0
    offset = torch.zeros(1, 2, 6, 6, dtype=torch.float64)
    offset[:, 0] = 1.0                                   # y + 1: each output reads the row below
    out = deform_conv2d(x, offset, weight)
    torch.testing.assert_close(out[..., :5, :], x[..., 1:, :], rtol=0, atol=1e-12)
    assert out[..., 5, :].abs().max() == 0


def test_deform_conv_bad_shapes_name_the_argument():
    tensors, geometry = _dcn_inputs(*CASES["medvsr_like"])
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(**{**tensors, "offset": tensors["offset"][..., :-1]}, **geometry)
    with pytest.raises(ValueError, match="mask must have shape"):
        deform_conv2d(**{**tensors, "mask": tensors["mask"][:, :-1]}, **geometry)
    with pytest.raises(ValueError, match="x must be a float"):
        deform_conv2d(**{**tensors, "x": tensors["x"].long()}, **geometry)


def test_deform_conv_in_bfloat16_keeps_the_dtype_and_samples_at_float32_positions():
    tensors, geometry = _dcn_inputs(*CASES["medvsr_like"])
    low = {k: v.bfloat16() for k, v in tensors.items()}
    out = deform_conv2d(**low, **geometry)
    # the reference sees the same (rounded) inputs; only products and sums are rounded further
    ref = deform_conv2d_ref(**{k: v.double() for k, v in low.items()}, **geometry)
    assert out.dtype == torch.bfloat16
    assert (out.double() - ref).abs().max() < 0.05 * ref.abs().max()
