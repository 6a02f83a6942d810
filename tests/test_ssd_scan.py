"""The chunked SSD scan (Mamba-2) against its sequential reference, and against the Mamba-1 scan it generalises."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmblocks.ops import selective_scan_ref, ssd_scan, ssd_scan_ref, use_backend


def ssd_inputs(batch, length, heads, headdim, groups, dstate, *, dtype=torch.float64, d_2d=False, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return {
        "x": rand(batch, length, heads, headdim),
        "dt": rand(batch, length, heads) * 0.5,
        "A": -(torch.rand(heads, generator=g, dtype=dtype) * 4 + 0.5),
        "B": rand(batch, length, groups, dstate),
        "C": rand(batch, length, groups, dstate),
        "D": rand(heads, headdim) if d_2d else rand(heads),
        "z": rand(batch, length, heads, headdim),
        "dt_bias": rand(heads) * 0.3,
        "initial_states": rand(batch, heads, headdim, dstate),
    }


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("shape", "chunk"),
    [((2, 1, 4, 8, 1, 16), 4), ((2, 256, 4, 16, 1, 16), 64), ((1, 100, 6, 5, 3, 7), 32), ((2, 77, 2, 16, 2, 4), 256)],
    ids=str,
)
@pytest.mark.parametrize("d_2d", [False, True])
def test_chunked_matches_reference(dtype, shape, chunk, d_2d):
    kwargs = ssd_inputs(*shape, dtype=dtype, d_2d=d_2d)
    ref, ref_final = ssd_scan_ref(**kwargs, dt_softplus=True, return_final_states=True)
    with use_backend("ssd_scan", "torch"):
        out, final = ssd_scan(**kwargs, chunk_size=chunk, dt_softplus=True, return_final_states=True)
    tol = 1e-11 if dtype == torch.float64 else 2e-5
    assert out.shape == kwargs["x"].shape and out.dtype == dtype
    assert final.shape == kwargs["initial_states"].shape
    assert _rel(out, ref) < tol and _rel(final, ref_final) < tol


def test_optional_arguments_can_be_left_out():
    kwargs = ssd_inputs(1, 50, 2, 4, 1, 8)
    for drop in ("D", "z", "dt_bias", "initial_states"):
        partial = {k: v for k, v in kwargs.items() if k != drop}
        with use_backend("ssd_scan", "torch"):
            out = ssd_scan(**partial, chunk_size=16)
        assert _rel(out, ssd_scan_ref(**partial)) < 1e-11, drop


def test_reference_equals_the_mamba1_scan_with_scalar_decay():
    # A Mamba-2 head is a Mamba-1 scan whose A is the same for every state and channel of the head.
    b, L, H, P, N = 2, 30, 3, 4, 5
    kw = ssd_inputs(b, L, H, P, 1, N)
    y = ssd_scan_ref(kw["x"], kw["dt"], kw["A"], kw["B"], kw["C"], D=kw["D"], dt_softplus=True)
    u = kw["x"].permute(0, 2, 3, 1).reshape(b, H * P, L)
    delta = kw["dt"].permute(0, 2, 1).repeat_interleave(P, dim=1)
    A = kw["A"].repeat_interleave(P)[:, None].expand(H * P, N)
    B, C = kw["B"][:, :, 0].transpose(1, 2), kw["C"][:, :, 0].transpose(1, 2)
    y1 = selective_scan_ref(u, delta, A, B, C, D=kw["D"].repeat_interleave(P), delta_softplus=True)
    assert _rel(y, y1.reshape(b, H, P, L).permute(0, 3, 1, 2)) < 1e-12


def test_chunked_is_stable_under_large_decay():
    kwargs = ssd_inputs(1, 512, 4, 8, 1, 16, dtype=torch.float32)
    kwargs["A"] = -torch.arange(1, 5.0) * 8     # |A| dt up to ~20 per step
    kwargs["dt"] = kwargs["dt"].abs() + 0.5
    with use_backend("ssd_scan", "torch"):
        out = ssd_scan(**kwargs, chunk_size=256, dt_softplus=True)
    assert torch.isfinite(out).all()
    assert _rel(out, ssd_scan_ref(**kwargs, dt_softplus=True)) < 2e-5


def test_gradcheck_chunked():
    kwargs = ssd_inputs(1, 10, 2, 2, 1, 3)
    names = list(kwargs)
    leaves = [kwargs[k].clone().requires_grad_() for k in names]

    def fn(*tensors):
        with use_backend("ssd_scan", "torch"):
            return ssd_scan(**dict(zip(names, tensors, strict=True)), chunk_size=4, dt_softplus=True)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


def test_half_inputs_return_half():
    kwargs = {k: v.to(torch.bfloat16) for k, v in ssd_inputs(1, 40, 2, 4, 1, 8).items()}
    out, final = ssd_scan(**kwargs, chunk_size=16, return_final_states=True)
    assert out.dtype == torch.bfloat16 and final.dtype == torch.float32


@settings(max_examples=20, deadline=None)
@given(length=st.integers(1, 150), heads_per_group=st.integers(1, 3), groups=st.integers(1, 2),
       headdim=st.integers(1, 6), dstate=st.integers(1, 9), chunk=st.sampled_from([1, 8, 16, 64]))
def test_fuzz_shapes(length, heads_per_group, groups, headdim, dstate, chunk):
    kwargs = ssd_inputs(2, length, heads_per_group * groups, headdim, groups, dstate, seed=length)
    with use_backend("ssd_scan", "torch"):
        out = ssd_scan(**kwargs, chunk_size=chunk, dt_softplus=True)
    assert _rel(out, ssd_scan_ref(**kwargs, dt_softplus=True)) < 1e-11


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x": torch.randn(2, 16, 4)}, r"x must have shape \(batch, seqlen, nheads, headdim\)"),
        ({"dt": torch.randn(2, 16, 3)}, r"dt must have shape \(batch, seqlen, nheads\) = \(2, 16, 4\)"),
        ({"A": torch.randn(4, 1)}, r"A must have shape \(nheads,\)"),
        ({"B": torch.randn(2, 16, 3, 8), "C": torch.randn(2, 16, 3, 8)}, "3 groups, which do not divide nheads = 4"),
        ({"C": torch.randn(2, 16, 1, 9)}, r"C must have shape \(batch, seqlen, ngroups, dstate\) = \(2, 16, 1, 8\)"),
        ({"D": torch.randn(4, 3)}, r"D must have shape \(nheads, headdim\) or \(nheads,\) = \(4, 8\)"),
        ({"initial_states": torch.randn(2, 4, 8, 7)}, r"initial_states must have shape"),
        ({"chunk_size": 0}, "chunk_size must be a positive int"),
    ],
)
def test_bad_input_names_the_argument(change, message):
    kwargs = {k: v.float() for k, v in ssd_inputs(2, 16, 4, 8, 1, 8).items()}
    kwargs["chunk_size"] = 8
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        ssd_scan(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_matches_reference():
    from ssmblocks.ops import available_backends

    if "cuda" not in available_backends("ssd_scan", "cuda"):
        pytest.skip("mamba_ssm is not installed")
    kwargs = {k: v.float() for k, v in ssd_inputs(2, 300, 4, 16, 1, 16).items()}
    ref = ssd_scan_ref(**kwargs, dt_softplus=True)
    out = ssd_scan(**{k: v.cuda() for k, v in kwargs.items()}, chunk_size=64, dt_softplus=True)
    assert _rel(out.cpu(), ref) < 1e-3
