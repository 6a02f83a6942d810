"""The ops' one dispatch mechanism: the registry, per-thread overrides (also under torch.compile), an import that
does not load torch._dynamo, and a kernel cache that is verified before it is loaded."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch
from scan_inputs import needs_compiler, scan_inputs

import ssmblocks
from ssmblocks.ops import _backends, _native, get_backend, selective_scan_fn, set_backend, use_backend
from ssmblocks.ops._native import build

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter that imports this checkout's ssmblocks."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=900)


# ---- the registry -------------------------------------------------------------------------------------------------
def test_every_op_registers_its_backends_in_priority_order():
    assert {op: list(_backends._REGISTRY[op]) for op in _backends.ops_with_backends()} == {
        "selective_scan": ["cuda", "native", "torch", "parallel", "reference"],
        "ssd_scan": ["cuda", "native", "torch", "reference"],
        "path_gather": ["native", "torch"],
        "deform_conv": ["native", "torch"],
    }
    automatic = {op: [n for n, b in _backends._REGISTRY[op].items() if b.automatic] for op in ("selective_scan",
                                                                                                 "ssd_scan")}
    assert automatic == {"selective_scan": ["cuda", "native", "torch"], "ssd_scan": ["cuda", "native", "torch"]}


def test_dispatch_runs_the_registered_implementation(monkeypatch):
    calls = []
    torch_backend = _backends._REGISTRY["selective_scan"]["torch"]
    recording = dataclasses.replace(torch_backend, run=lambda *a: calls.append(len(a)) or torch_backend.run(*a))
    monkeypatch.setitem(_backends._REGISTRY["selective_scan"], "torch", recording)
    with use_backend("selective_scan", "torch"):
        selective_scan_fn(**scan_inputs(1, 4, 10, 2))
    assert calls == [9]                       # u, delta, A, B, C, D, z, delta_bias, delta_softplus


def test_registering_a_name_twice_or_a_reserved_name_fails():
    with pytest.raises(ValueError, match="already registered or reserved"):
        _backends.register_backend("path_gather", "torch", lambda *a: None)
    with pytest.raises(ValueError, match="already registered or reserved"):
        _backends.register_backend("path_gather", "auto", lambda *a: None)
    assert list(_backends._REGISTRY["path_gather"]) == ["native", "torch"]


def test_forcing_a_backend_that_cannot_take_the_inputs_says_what_it_needs():
    src, index = torch.randn(1, 2, 6, dtype=torch.float16), torch.arange(6).view(1, 6)
    with use_backend("path_gather", "native"), pytest.raises(RuntimeError, match="needs CPU float32/float64"):
        ssmblocks.ops.path_gather(src, index, index, True, False)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    offset, weight = torch.zeros(1, 18, 5, 5), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    assert ssmblocks.ops.deform_conv2d(x, offset, weight, padding=1).shape == (1, 3, 5, 5)   # automatic: torch
    with use_backend("deform_conv", "native"), pytest.raises(RuntimeError, match="x, offset and mask of one dtype"):
        ssmblocks.ops.deform_conv2d(x, offset, weight, padding=1)


# ---- per-thread overrides -----------------------------------------------------------------------------------------
def _in_thread(fn):
    """Runs ``fn`` in a new thread; returns its result (or raises its exception)."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as err:
            result["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=900)
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_use_backend_in_one_thread_leaves_other_threads_alone():
    automatic = get_backend("selective_scan", "cpu")
    inside, release = threading.Event(), threading.Event()

    def hold_parallel():
        with use_backend("selective_scan", "parallel"):
            inside.set()
            release.wait(60)
            return get_backend("selective_scan", "cpu")

    thread_result = {}
    thread = threading.Thread(target=lambda: thread_result.setdefault("backend", hold_parallel()))
    thread.start()
    try:
        assert inside.wait(60)
        assert get_backend("selective_scan", "cpu") == automatic     # the other thread's context is not ours
        with use_backend("selective_scan", "reference"):
            assert get_backend("selective_scan", "cpu") == "reference"
    finally:
        release.set()
        thread.join(60)
    assert thread_result == {"backend": "parallel"}                  # and ours was not the other thread's


def test_set_backend_is_process_wide_and_a_thread_context_still_wins():
    try:
        set_backend("ssd_scan", "reference")
        assert _in_thread(lambda: get_backend("ssd_scan", "cpu")) == "reference"

        def inner():
            with use_backend("ssd_scan", "torch"):
                return get_backend("ssd_scan", "cpu")

        assert _in_thread(inner) == "torch"
    finally:
        set_backend("ssd_scan", None)


def test_compiled_code_follows_the_calling_threads_choice():
    def which(x):
        return x + 1 if get_backend("selective_scan", x.device, x.dtype) == "reference" else x - 1

    compiled = torch.compile(which, fullgraph=True, backend="eager")
    x = torch.zeros(2)
    assert get_backend("selective_scan", "cpu") != "reference"     # never the automatic choice
    assert compiled(x).tolist() == [-1, -1]

    def forced():
        with use_backend("selective_scan", "reference"):
            return compiled(x).tolist()

    assert _in_thread(forced) == [1, 1]                               # guards see this thread's context
    assert compiled(x).tolist() == [-1, -1]
    assert _in_thread(lambda: compiled(x).tolist()) == [-1, -1]


def test_onnx_export_in_one_thread_and_a_budgeted_restore_in_another(monkeypatch, tmp_path):
    pytest.importorskip("onnxscript")
    from ssmblocks.export import export_onnx

    # The export traces with the "parallel" scan; it is held inside that context (at its first parallel call)
    # while another thread restores with a memory budget (which measures with the native scan), then finishes.
    exporting, restored = threading.Event(), threading.Event()
    parallel_threads = set()
    parallel = _backends._REGISTRY["selective_scan"]["parallel"]

    def recording_parallel(*args):
        parallel_threads.add(threading.current_thread().name)
        if threading.current_thread().name == "export":
            exporting.set()
            restored.wait(600)
        return parallel.run(*args)

    monkeypatch.setitem(_backends._REGISTRY["selective_scan"], "parallel",
                        dataclasses.replace(parallel, run=recording_parallel))
    torch.manual_seed(0)
    model = ssmblocks.create_model("test_mambair_light").eval()
    x = torch.rand(1, 3, 12, 12)
    expected = ssmblocks.restore(model, x, progress=False)
    errors = {}

    def export():
        try:
            export_onnx(ssmblocks.create_model("test_mambair_light"), tmp_path / "m.onnx", x)
        except Exception as err:
            errors["export"] = err
        finally:
            exporting.set()

    thread = threading.Thread(target=export, name="export")
    thread.start()
    try:
        assert exporting.wait(600)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")    # tiling of a tiny image may warn about its cost
            out = ssmblocks.restore(model, x, memory_budget="20MB", progress=False)
    finally:
        restored.set()
        thread.join(600)
    assert errors == {}
    assert parallel_threads == {"export"}                              # the restore ran its own backend
    assert (tmp_path / "m.onnx").stat().st_size > 0
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


# ---- import time --------------------------------------------------------------------------------------------------
def test_import_does_not_load_torch_dynamo_or_sympy():
    # torch._dynamo (torch.compiler.assume_constant_result at module level) and sympy (symbolic_shapes) were most
    # of the import time beyond torch's (benchmarks/import_time.py)
    result = _python("import sys, ssmblocks, ssmblocks.ops, ssmblocks.export\n"
                     "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'sympy'))))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_constant_marker_is_what_torch_compile_reads():
    # _assume_constant spares the torch._dynamo import by setting the marker torch's decorator sets; if torch
    # changes its decorator this fails (and torch.compile would trace into the availability checks)
    from torch._dynamo.decorators import assume_constant_result

    def probe() -> bool:
        return True

    marked = {k: v for k, v in vars(assume_constant_result(probe)).items() if k != "__wrapped__"}
    assert marked == {"_dynamo_marked_constant": True}
    assert _backends.native_available._dynamo_marked_constant
    assert _backends.mamba_ssm_available._dynamo_marked_constant


# ---- the kernel cache ---------------------------------------------------------------------------------------------
def test_damage_compares_the_library_with_its_build_record(tmp_path):
    library = tmp_path / "native_0.so"
    assert build.damage(library) is None                              # nothing cached: build it
    library.write_bytes(b"\x7fELF" + bytes(100))
    assert "no size/hash record" in build.damage(library)
    build._sidecar(library).write_text(build._fingerprint(library) + "\n")
    assert build.damage(library) is None
    library.write_bytes(b"\x7fELF" + bytes(50))
    assert "has 54 bytes where its build wrote 104: truncated" in build.damage(library)
    library.write_bytes(b"\x7fELF" + bytes(99) + b"\x01")
    assert "content differs" in build.damage(library)
    library.unlink()
    assert "missing" in build.damage(library)


_LOAD_AND_SCAN = """
import warnings
warnings.simplefilter("always")
import torch
from ssmblocks.ops import _native, selective_scan_fn, selective_scan_ref, use_backend
assert _native.native_library() is not None
u, delta = torch.randn(1, 4, 10), torch.rand(1, 4, 10)
A, B, C = -torch.rand(4, 2), torch.randn(1, 2, 10), torch.randn(1, 2, 10)
with use_backend("selective_scan", "native"):
    out = selective_scan_fn(u, delta, A, B, C)
assert torch.allclose(out, selective_scan_ref(u, delta, A, B, C), atol=1e-5)
print("ok")
"""


@needs_compiler
def test_truncated_cached_kernel_is_rebuilt_not_mapped(tmp_path):
    first = _python(_LOAD_AND_SCAN, SSMBLOCKS_CACHE_DIR=str(tmp_path))
    assert first.returncode == 0 and first.stdout.strip() == "ok", first.stderr
    (library,) = tmp_path.glob("native_*.so")
    size = library.stat().st_size
    for path in (library, build._sidecar(library)):           # other users of a shared cache can read them
        assert path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH) == stat.S_IRGRP | stat.S_IROTH
    os.truncate(library, 100_000)                              # issue 24: a Bus error on every later run
    second = _python(_LOAD_AND_SCAN, SSMBLOCKS_CACHE_DIR=str(tmp_path))
    assert second.returncode == 0 and second.stdout.strip() == "ok", (second.returncode, second.stderr)
    assert "100000 bytes where its build wrote" in second.stderr and "rebuilding" in second.stderr
    assert library.stat().st_size == size and build.damage(library) is None


@needs_compiler
def test_a_library_that_does_not_load_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMBLOCKS_CACHE_DIR", str(tmp_path))
    library = build._library_path(build.find_compiler(), build.ARCH_FLAGS[0])
    library.write_bytes(b"not a shared library")
    build._sidecar(library).write_text(build._fingerprint(library))   # intact as recorded, but no ELF file
    _native.native_library.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _native.native_library() is None
            assert get_backend("selective_scan", "cpu") == "torch"
    finally:
        _native.native_library.cache_clear()
    (message,) = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert f"the compiled library {library} does not load" in message
    assert "compiler" not in message
