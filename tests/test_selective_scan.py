"""Every selective-scan backend against the sequential reference: values, last state, gradients, edge cases."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scan_inputs import needs_compiler, scan_inputs, tolerance

from ssmblocks.ops import available_backends, selective_scan_fn, selective_scan_ref, use_backend

CPU_BACKENDS = [b for b in ("native", "torch", "parallel") if b in available_backends("selective_scan", "cpu")]
GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


@needs_compiler
def test_native_backend_is_built_here():
    # CI machines have a C++ compiler: the native kernel must be available, not silently skipped.
    assert CPU_BACKENDS == ["native", "torch", "parallel"]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12)).item()


def _run(backend, kwargs, softplus=True):
    with use_backend("selective_scan", backend):
        return selective_scan_fn(**kwargs, delta_softplus=softplus, return_last_state=True)


SHAPES = [
    # batch, dim, L, N, groups
    (2, 5, 1, 3, None),      # L = 1
    (1, 16, 64, 16, 1),      # one full tile, exactly one checkpoint chunk
    (2, 40, 131, 10, 2),     # odd L, grouped, partial tiles, N not a multiple of 4
    (2, 36, 200, 20, 4),     # N > 16 (two state blocks)
    (3, 8, 77, 4, None),     # ungrouped (batch, N, L)
    (1, 48, 600, 16, 3),     # several forward blocks
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("optional", ["all", "none", "z_only"])
def test_forward_matches_reference(backend, dtype, shape, optional):
    b, d, L, N, G = shape
    kwargs = scan_inputs(b, d, L, N, G, dtype=dtype, with_D=optional == "all", with_z=optional != "none",
                         with_bias=optional == "all")
    softplus = optional != "none"
    if not softplus:  # dt must stay >= 0 without softplus, or the recurrence grows without bound
        kwargs["delta"] = kwargs["delta"].abs()
    ref, ref_last = selective_scan_ref(**kwargs, delta_softplus=softplus, return_last_state=True)
    out, last = _run(backend, kwargs, softplus)
    assert out.dtype == dtype and out.shape == (b, d, L)
    assert last.shape == (b, d, N)
    assert _rel_err(out, ref) < tolerance(dtype)
    assert _rel_err(last, ref_last) < tolerance(dtype)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES[1:5], ids=str)
def test_gradients_match_reference(backend, dtype, shape):
    kwargs = scan_inputs(*shape, dtype=dtype)
    grad_out = torch.randn(shape[0], shape[1], shape[2], dtype=dtype)

    def grads(fn):
        leaves = {k: v.clone().requires_grad_() for k, v in kwargs.items()}
        out = fn(**leaves, delta_softplus=True)
        return torch.autograd.grad(out, [leaves[k] for k in GRAD_NAMES], grad_out)

    expected = grads(selective_scan_ref)
    with use_backend("selective_scan", backend):
        got = grads(selective_scan_fn)
    for name, g, e in zip(GRAD_NAMES, got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype, name
        assert _rel_err(g, e) < 10 * tolerance(dtype), name


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("grouped", [False, True])
def test_gradcheck(backend, grouped):
    kwargs = scan_inputs(2, 6, 9, 3, 2 if grouped else None, dtype=torch.float64)
    names = list(GRAD_NAMES)
    leaves = [kwargs[k].clone().requires_grad_() for k in names]

    def fn(*tensors):
        with use_backend("selective_scan", backend):
            return selective_scan_fn(**dict(zip(names, tensors, strict=True)), delta_softplus=True)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_large_delta_stays_finite(backend):
    # A = -(1..16) (the standard init), mean dt ~ 0.6 after softplus: log-space chunking overflows here.
    b, d, L, N = 2, 32, 512, 16
    kwargs = scan_inputs(b, d, L, N, None, with_z=False, delta_scale=0.3)
    kwargs["A"] = -torch.arange(1, N + 1.0).repeat(d, 1)
    kwargs["delta_bias"] = torch.full((d,), 0.0)
    dt_mean = torch.nn.functional.softplus(kwargs["delta"]).mean().item()
    assert 0.55 < dt_mean < 0.75
    ref, _ = selective_scan_ref(**kwargs, delta_softplus=True, return_last_state=True)
    out, last = _run(backend, kwargs)
    assert torch.isfinite(out).all() and torch.isfinite(last).all()
    assert _rel_err(out, ref) < tolerance(torch.float32)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float32(backend, dtype):
    kwargs = scan_inputs(2, 24, 100, 8, 2, dtype=dtype)
    out, last = _run(backend, kwargs)
    assert out.dtype == dtype and last.dtype == torch.float32
    ref = selective_scan_ref(**{k: v.float() for k, v in kwargs.items()}, delta_softplus=True)
    assert _rel_err(out.float(), ref) < 1e-2  # the output rounding to half dominates


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_non_contiguous_inputs(backend):
    kwargs = scan_inputs(2, 16, 50, 8, 2)
    strided = {k: v.transpose(-1, -2).contiguous().transpose(-1, -2) if v.dim() >= 2 else v
               for k, v in kwargs.items()}
    assert not strided["u"].is_contiguous()
    out, _ = _run(backend, strided)
    ref = selective_scan_ref(**kwargs, delta_softplus=True)
    assert _rel_err(out, ref) < tolerance(torch.float32)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    tiles=st.integers(1, 3),
    per_group=st.integers(1, 40),
    length=st.integers(1, 300),
    dstate=st.integers(1, 24),
    grouped=st.booleans(),
    softplus=st.booleans(),
)
def test_fuzz_shapes(batch, tiles, per_group, length, dstate, grouped, softplus):
    groups = tiles if grouped else None
    kwargs = scan_inputs(batch, tiles * per_group, length, dstate, groups, seed=length)
    if not softplus:  # keep dt = delta + delta_bias >= 0, or the recurrence grows without bound
        kwargs["delta"], kwargs["delta_bias"] = kwargs["delta"].abs(), kwargs["delta_bias"].abs()
    ref = selective_scan_ref(**kwargs, delta_softplus=softplus)
    for backend in CPU_BACKENDS:
        out, _ = _run(backend, kwargs, softplus)
        assert _rel_err(out, ref) < tolerance(torch.float32), backend


def test_reference_is_the_mamba_recurrence():
    # The oracle itself, against the recurrence written out for one channel.
    kwargs = scan_inputs(1, 2, 5, 3, None, dtype=torch.float64)
    out = selective_scan_ref(**kwargs, delta_softplus=True)
    u, delta, A, B, C = (kwargs[k][0] if kwargs[k].dim() == 3 else kwargs[k] for k in ["u", "delta", "A", "B", "C"])
    d, h = 1, torch.zeros(3, dtype=torch.float64)
    dt = torch.nn.functional.softplus(delta[d] + kwargs["delta_bias"][d])
    for t in range(5):
        h = torch.exp(dt[t] * A[d]) * h + dt[t] * u[d, t] * B[:, t]
        y = (C[:, t] * h).sum() + kwargs["D"][d] * u[d, t]
        y = y * torch.nn.functional.silu(kwargs["z"][0, d, t])
        assert abs(out[0, d, t].item() - y.item()) < 1e-12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_matches_reference():
    if "cuda" not in available_backends("selective_scan", "cuda"):
        pytest.skip("mamba_ssm is not installed")
    kwargs = scan_inputs(2, 64, 300, 16, 4)
    ref = selective_scan_ref(**kwargs, delta_softplus=True)
    out = selective_scan_fn(**{k: v.cuda() for k, v in kwargs.items()}, delta_softplus=True)
    assert _rel_err(out.cpu(), ref) < 1e-4
