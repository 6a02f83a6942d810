"""The selective scan's API surface: backend choice and overrides, custom-op registration, bad input, fallback."""

from __future__ import annotations

import warnings

import pytest
import torch
from scan_inputs import needs_compiler, scan_inputs

from ssmblocks.ops import _native, get_backend, selective_scan_fn, selective_scan_ref, set_backend, use_backend
from ssmblocks.ops._native import build


@pytest.fixture(autouse=True)
def _reset_backend():
    yield
    set_backend("selective_scan", None)


# ---- backend choice -----------------------------------------------------------------------------------------
@needs_compiler
def test_automatic_choice_on_cpu_is_native():
    assert get_backend("selective_scan", "cpu") == "native"
    assert get_backend("ssd_scan", "cpu") == "native"


@needs_compiler
def test_context_manager_setter_and_env_var(monkeypatch):
    monkeypatch.setenv("SSMBLOCKS_SELECTIVE_SCAN_BACKEND", "reference")
    assert get_backend("selective_scan") == "reference"
    set_backend("selective_scan", "torch")
    assert get_backend("selective_scan") == "torch"  # setter beats the environment
    with use_backend("selective_scan", "native"):
        assert get_backend("selective_scan") == "native"  # context manager beats the setter
        with use_backend("selective_scan", "auto"):
            assert get_backend("selective_scan") == "native"
    assert get_backend("selective_scan") == "torch"
    set_backend("selective_scan", "auto")
    assert get_backend("selective_scan") == "reference"


@needs_compiler
def test_override_changes_the_code_that_runs(monkeypatch):
    calls = []
    original = _native.forward
    monkeypatch.setattr(_native, "forward", lambda *a: calls.append(1) or original(*a))
    kwargs = scan_inputs(1, 4, 10, 2)
    with use_backend("selective_scan", "torch"):
        selective_scan_fn(**kwargs)
    assert calls == []
    selective_scan_fn(**kwargs)
    assert calls == [1]


def test_bad_backend_names_and_impossible_choices(monkeypatch):
    with pytest.raises(ValueError, match="unknown selective_scan backend 'fast'"):
        set_backend("selective_scan", "fast")
    with pytest.raises(ValueError, match="unknown op"):
        get_backend("scan")
    with pytest.raises(ValueError, match=r"unknown ssd_scan backend 'parallel'"):
        set_backend("ssd_scan", "parallel")
    monkeypatch.setenv("SSMBLOCKS_SELECTIVE_SCAN_BACKEND", "gpu")
    with pytest.raises(ValueError, match="SSMBLOCKS_SELECTIVE_SCAN_BACKEND='gpu'"):
        get_backend("selective_scan")
    monkeypatch.delenv("SSMBLOCKS_SELECTIVE_SCAN_BACKEND")
    with use_backend("selective_scan", "cuda"), pytest.raises(RuntimeError, match="'cuda' cannot run on cpu"):
        selective_scan_fn(**scan_inputs(1, 4, 10, 2))


# ---- custom op ----------------------------------------------------------------------------------------------
@needs_compiler
def test_custom_op_passes_opcheck():
    kwargs = scan_inputs(2, 8, 70, 4, 2, dtype=torch.float64)
    args = [kwargs[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
    args = [a.requires_grad_() for a in args]
    torch.library.opcheck(torch.ops.ssmblocks.selective_scan.default, (*args, True, True))


class _TinySSM(torch.nn.Module):
    def __init__(self, dim: int = 8, dstate: int = 4):
        super().__init__()
        self.A_log = torch.nn.Parameter(torch.randn(dim, dstate))
        self.D = torch.nn.Parameter(torch.ones(dim))

    def forward(self, u, delta, B, C):
        return selective_scan_fn(u, delta, -torch.exp(self.A_log), B, C, self.D, delta_softplus=True)


def test_torch_compile_sees_one_op():
    model = _TinySSM()
    kwargs = scan_inputs(2, 8, 40, 4)
    inputs = (kwargs["u"], kwargs["delta"], kwargs["B"], kwargs["C"])
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(*inputs)
    assert torch.allclose(out, model(*inputs), atol=1e-6)
    out.sum().backward()
    assert model.A_log.grad is not None and torch.isfinite(model.A_log.grad).all()


@needs_compiler
def test_torch_export_records_the_op():
    model = _TinySSM()
    kwargs = scan_inputs(2, 8, 40, 4)
    inputs = (kwargs["u"], kwargs["delta"], kwargs["B"], kwargs["C"])
    exported = torch.export.export(model, inputs)
    assert "ssmblocks.selective_scan" in str(exported.graph)
    assert torch.allclose(exported.module()(*inputs), model(*inputs), atol=1e-6)


# ---- bad input ----------------------------------------------------------------------------------------------
def _bad(**changes):
    kwargs = scan_inputs(2, 8, 16, 4, 2)
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"u": torch.randn(8, 16)}, r"u must have shape \(batch, dim, seqlen\), got 2-D"),
        ({"delta": torch.randn(2, 8, 15)}, r"delta must have shape \(batch, dim, seqlen\) = \(2, 8, 16\)"),
        ({"A": torch.randn(7, 4)}, r"A must have shape \(dim, dstate\) with dim = 8"),
        ({"A": torch.randn(8, 4, dtype=torch.complex64)}, "A is complex"),
        ({"B": torch.randn(2, 3, 4, 16), "C": torch.randn(2, 3, 4, 16)}, "B has 3 groups, which do not divide dim = 8"),
        ({"B": torch.randn(2, 4, 5, 16)}, r"B must have shape \(batch, groups, dstate, seqlen\) = \(2, 4, 4, 16\)"),
        ({"C": torch.randn(2, 4, 16)}, "B and C must have the same number of groups"),
        ({"D": torch.randn(9)}, r"D must have shape \(dim,\) = \(8\)"),
        ({"z": torch.randn(2, 8, 17)}, r"z must have shape \(batch, dim, seqlen\)"),
        ({"delta_bias": torch.randn(8, 1)}, r"delta_bias must have shape \(dim,\)"),
        ({"u": torch.ones(2, 8, 16, dtype=torch.int64)}, "u must be a floating-point tensor"),
        ({"D": torch.ones(8, device="meta")}, "all tensors must be on one device"),
    ],
)
def test_bad_input_names_the_argument(changes, message):
    with pytest.raises(ValueError, match=message):
        selective_scan_fn(**_bad(**changes))
    with pytest.raises(ValueError, match=message):
        selective_scan_ref(**_bad(**changes))


# ---- no compiler --------------------------------------------------------------------------------------------
def test_missing_compiler_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("SSMBLOCKS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(build, "find_compiler", lambda: None)
    _native.native_library.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert get_backend("selective_scan", "cpu") == "torch"
            assert get_backend("ssd_scan", "cpu") == "torch"
            kwargs = scan_inputs(1, 4, 10, 2)
            out = selective_scan_fn(**kwargs)
            assert get_backend("selective_scan", "cpu") == "torch"
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1 and "no C++ compiler found" in messages[0]
        assert torch.allclose(out, selective_scan_ref(**kwargs), atol=1e-5)
    finally:
        _native.native_library.cache_clear()


@needs_compiler
def test_compile_cache_is_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("SSMBLOCKS_CACHE_DIR", str(tmp_path))
    first = build.build()
    stamp = first.stat().st_mtime_ns
    assert build.build() == first and first.stat().st_mtime_ns == stamp
