"""The SSD scan (Mamba-2) backends against the sequential reference, and against the Mamba-1 scan it generalises."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scan_inputs import needs_compiler

from ssmblocks.ops import (
    _native,
    available_backends,
    get_backend,
    selective_scan_ref,
    ssd_scan,
    ssd_scan_ref,
    use_backend,
)

SSD_GRAD_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias")


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


def _gradcheck(backend: str, kwargs: dict) -> bool:
    """torch.autograd.gradcheck of ssd_scan on ``backend`` with respect to every tensor of ``kwargs``."""
    names = list(kwargs)
    leaves = [kwargs[k].clone().requires_grad_() for k in names]

    def fn(*tensors):
        with use_backend("ssd_scan", backend):
            return ssd_scan(**dict(zip(names, tensors, strict=True)), chunk_size=4, dt_softplus=True)

    return torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


def test_gradcheck_chunked():
    assert _gradcheck("torch", ssd_inputs(1, 10, 2, 2, 1, 3))


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


# ---- the native backend: the SSD as one selective scan on the C++ kernel ------------------------------------
def _without(kwargs, *names):
    return {k: v for k, v in kwargs.items() if k not in names}


NATIVE_SHAPES = [  # batch, L, heads, headdim, groups, dstate
    (2, 1, 4, 8, 1, 16),      # L = 1
    (1, 100, 6, 5, 3, 7),     # three groups of two heads, headdim and N not multiples of 4
    (2, 77, 4, 16, 2, 4),     # odd L, two groups
    (1, 300, 2, 16, 1, 20),   # several checkpoint chunks, N > 16
]
OPTIONALS = {
    "all": (),
    "none": ("D", "z", "dt_bias"),
    "D_2d": (),
    "z_only": ("D", "dt_bias"),
}


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", NATIVE_SHAPES, ids=str)
@pytest.mark.parametrize("optional", list(OPTIONALS))
def test_native_matches_reference(dtype, shape, optional):
    kwargs = _without(ssd_inputs(*shape, dtype=dtype, d_2d=optional == "D_2d"), "initial_states",
                      *OPTIONALS[optional])
    softplus = optional != "none"
    if not softplus:  # dt must stay >= 0 without softplus
        kwargs["dt"] = kwargs["dt"].abs()
    ref, ref_final = ssd_scan_ref(**kwargs, dt_softplus=softplus, return_final_states=True)
    with use_backend("ssd_scan", "native"):
        out, final = ssd_scan(**kwargs, chunk_size=64, dt_softplus=softplus, return_final_states=True)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    assert out.shape == kwargs["x"].shape and out.dtype == dtype and out.is_contiguous()
    assert final.shape == (shape[0], shape[2], shape[3], shape[5]) and final.dtype == dtype
    assert _rel(out, ref) < tol and _rel(final, ref_final) < tol


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", NATIVE_SHAPES[1:], ids=str)
@pytest.mark.parametrize("optional", ["all", "none", "D_2d"])
def test_native_gradients_match_reference(dtype, shape, optional):
    kwargs = _without(ssd_inputs(*shape, dtype=dtype, d_2d=optional == "D_2d", seed=1), "initial_states",
                      *OPTIONALS[optional])
    grad_out = torch.randn(kwargs["x"].shape, dtype=dtype, generator=torch.Generator().manual_seed(2))
    names = [k for k in SSD_GRAD_NAMES if k in kwargs]

    def grads(fn, **extra):
        leaves = {k: v.clone().requires_grad_() for k, v in kwargs.items()}
        return torch.autograd.grad(fn(**leaves, **extra, dt_softplus=True), [leaves[k] for k in names], grad_out)

    expected = grads(ssd_scan_ref)
    with use_backend("ssd_scan", "native"):
        got = grads(ssd_scan, chunk_size=64)
    tol = 1e-11 if dtype == torch.float64 else 2e-4
    for name, g, e in zip(names, got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype, name
        assert _rel(g, e) < tol, name


@needs_compiler
def test_gradcheck_native():
    assert _gradcheck("native", _without(ssd_inputs(1, 10, 4, 2, 2, 3), "initial_states"))


@needs_compiler
@settings(max_examples=20, deadline=None)
@given(length=st.integers(1, 150), heads_per_group=st.integers(1, 3), groups=st.integers(1, 3),
       headdim=st.integers(1, 20), dstate=st.integers(1, 18), softplus=st.booleans())
def test_native_fuzz_shapes(length, heads_per_group, groups, headdim, dstate, softplus):
    kwargs = _without(ssd_inputs(2, length, heads_per_group * groups, headdim, groups, dstate, dtype=torch.float32,
                                 seed=length), "initial_states")
    # dt + dt_bias >= 0 also without softplus: a decaying recurrence (a growing one overflows float32 to inf in both
    # implementations, and inf - inf is NaN)
    kwargs["dt"], kwargs["dt_bias"] = kwargs["dt"].abs(), kwargs["dt_bias"].abs()
    ref = ssd_scan_ref(**kwargs, dt_softplus=softplus)
    with use_backend("ssd_scan", "native"):
        assert _rel(ssd_scan(**kwargs, chunk_size=16, dt_softplus=softplus), ref) < 2e-5


@needs_compiler
def test_native_half_inputs_return_half():
    kwargs = {k: v.to(torch.bfloat16) for k, v in _without(ssd_inputs(1, 40, 2, 4, 1, 8), "initial_states").items()}
    with use_backend("ssd_scan", "native"):
        out, final = ssd_scan(**kwargs, chunk_size=16, dt_softplus=True, return_final_states=True)
    assert out.dtype == torch.bfloat16 and final.dtype == torch.float32
    assert _rel(out.float(), ssd_scan_ref(**kwargs, dt_softplus=True).float()) < 1e-2


# ---- which backend a call takes -------------------------------------------------------------------------------
@needs_compiler
def test_native_is_listed_and_chosen_on_cpu():
    assert available_backends("ssd_scan", "cpu") == ["native", "torch", "reference"]
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert get_backend("ssd_scan", "cpu", dtype) == "native"
    assert get_backend("ssd_scan", "cpu", unsupported={"native": "lacks something"}) == "torch"


@pytest.fixture
def native_calls(monkeypatch):
    calls = []
    original = _native.forward
    monkeypatch.setattr(_native, "forward", lambda *a: calls.append(1) or original(*a))
    return calls


@needs_compiler
def test_automatic_choice_runs_the_native_kernel_when_it_can(native_calls):
    kwargs = _without(ssd_inputs(1, 30, 2, 4, 1, 8, dtype=torch.float32), "initial_states")
    ssd_scan(**kwargs, chunk_size=8, dt_softplus=True)
    ssd_scan(**kwargs, chunk_size=8, dt_softplus=True, return_final_states=True)  # no gradient recorded: native
    assert native_calls == [1, 1]
    with use_backend("ssd_scan", "torch"):
        ssd_scan(**kwargs, chunk_size=8)
    assert native_calls == [1, 1]


def test_calls_the_native_kernel_cannot_take_go_to_torch(native_calls):
    kwargs = ssd_inputs(1, 30, 2, 4, 1, 8)
    # initial states: the kernel starts from zero
    out, final = ssd_scan(**kwargs, chunk_size=8, dt_softplus=True, return_final_states=True)
    ref, ref_final = ssd_scan_ref(**kwargs, dt_softplus=True, return_final_states=True)
    assert _rel(out, ref) < 1e-11 and _rel(final, ref_final) < 1e-11
    # final states while autograd records: the kernel's last state has no gradient, torch's does
    leaves = {k: v.clone().requires_grad_() for k, v in _without(kwargs, "initial_states").items()}
    _, final = ssd_scan(**leaves, chunk_size=8, dt_softplus=True, return_final_states=True)
    (grad_x,) = torch.autograd.grad(final.sum(), [leaves["x"]])
    _, ref_final = ssd_scan_ref(**leaves, dt_softplus=True, return_final_states=True)
    (ref_grad_x,) = torch.autograd.grad(ref_final.sum(), [leaves["x"]])
    assert _rel(grad_x, ref_grad_x) < 1e-11
    assert native_calls == []


@needs_compiler
def test_forcing_native_on_a_call_it_cannot_take_raises():
    kwargs = ssd_inputs(1, 30, 2, 4, 1, 8)
    with use_backend("ssd_scan", "native"), pytest.raises(RuntimeError, match=r"'native' cannot .* initial_states"):
        ssd_scan(**kwargs, chunk_size=8)
    leaves = {k: v.clone().requires_grad_() for k, v in _without(kwargs, "initial_states").items()}
    with use_backend("ssd_scan", "native"), pytest.raises(RuntimeError, match="final states without gradients"):
        ssd_scan(**leaves, chunk_size=8, return_final_states=True)


class _TinyMamba2Scan(torch.nn.Module):
    def __init__(self, heads: int = 2):
        super().__init__()
        self.A_log = torch.nn.Parameter(torch.zeros(heads))
        self.D = torch.nn.Parameter(torch.ones(heads))

    def forward(self, x, dt, B, C):
        return ssd_scan(x, dt, -torch.exp(self.A_log), B, C, 8, D=self.D, dt_softplus=True)


@needs_compiler
def test_native_compiles_and_exports_as_one_selective_scan_op():
    model = _TinyMamba2Scan()
    kw = ssd_inputs(2, 20, 2, 4, 1, 8, dtype=torch.float32)
    inputs = (kw["x"], kw["dt"], kw["B"], kw["C"])
    expected = model(*inputs)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    assert torch.allclose(compiled(*inputs), expected, atol=1e-6)
    compiled(*inputs).sum().backward()
    assert model.A_log.grad is not None and torch.isfinite(model.A_log.grad).all()
    graph = str(torch.export.export(model, inputs).graph)
    assert graph.count("torch.ops.ssmblocks.selective_scan.default") == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_backend_matches_reference():
    from ssmblocks.ops import available_backends

    if "cuda" not in available_backends("ssd_scan", "cuda"):
        pytest.skip("mamba_ssm is not installed")
    kwargs = {k: v.float() for k, v in ssd_inputs(2, 300, 4, 16, 1, 16).items()}
    ref = ssd_scan_ref(**kwargs, dt_softplus=True)
    out = ssd_scan(**{k: v.cuda() for k, v in kwargs.items()}, chunk_size=64, dt_softplus=True)
    assert _rel(out.cpu(), ref) < 1e-3
