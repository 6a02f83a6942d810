"""Backend dispatch for the library's ops: one registry, one way to choose.

Every op (``"selective_scan"``, ``"ssd_scan"``, ``"path_gather"``, ``"deform_conv"``) registers its backends here
with ``register_backend`` in priority order: a name, the implementation, when it can run (device and dtype of the
call) and what it needs (for the error when it is forced where it cannot run). A call asks ``dispatch(op, device,
dtype)`` for its backend and runs ``backend.run``. The automatic choice is the first available backend marked
``automatic``, unless the user has chosen one:

* ``ssmblocks.ops.use_backend(op, name)`` — a context manager for the calling thread (innermost wins),
* ``ssmblocks.ops.set_backend(op, name)`` — a process-wide setting (``None`` or ``"auto"`` resets it),
* the environment variable ``SSMBLOCKS_<OP>_BACKEND`` (e.g. ``SSMBLOCKS_SELECTIVE_SCAN_BACKEND``), read per call.

Precedence: context manager > setter > environment variable > automatic choice.
``ssmblocks.ops.get_backend(op, device)`` tells which backend a call on ``device`` would use. A backend can also
lack a feature of one particular call (the native SSD scan takes no ``initial_states``): the op passes it in
``dispatch(..., unsupported={name: reason})``, the automatic choice then skips it and forcing it raises.

``use_backend`` holds its choice in a ``threading.local``, so a context opened in one thread (``export_onnx``
tracing with the pure-PyTorch backends, ``memory_budget`` measuring with the native scan) never changes what
another thread runs. Not a ``contextvars.ContextVar``: torch.compile (Dynamo, torch 2.13) cannot trace
``ContextVar.get`` ("Dynamo does not know how to trace method get of class ContextVar"), while it reads a
thread-local's attributes and guards on them, so a compiled model recompiles when the thread's choice differs.

Availability (a compiler for the native kernel, an importable mamba_ssm) is fixed for the life of a process and
marked as a constant result for torch.compile (``_assume_constant``), which evaluates it once at trace time.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

_AUTO = ("auto", "", None)


def _assume_constant(fn: Callable[[], bool]) -> Callable[[], bool]:
    """``torch.compiler.assume_constant_result`` without importing ``torch._dynamo`` (about half of
    ``import ssmblocks`` otherwise): that decorator only sets this marker on the function
    (``torch/_dynamo/decorators.py``); tests/test_ops_dispatch.py checks that it still does."""
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


@_assume_constant
@functools.cache
def mamba_ssm_available() -> bool:
    """Whether ``mamba_ssm`` (with its compiled CUDA extension) imports; checked once per process."""
    try:
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
        importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
    except Exception:  # ImportError, or a broken CUDA/triton install raising anything else
        return False
    return True


@_assume_constant
def native_available() -> bool:
    """Whether the native CPU kernel library is loaded (built on first use; see ``ssmblocks.ops._native``)."""
    from ssmblocks.ops._native import native_library

    return native_library() is not None


def always(device: torch.device, dtype: torch.dtype) -> bool:
    """Availability of the pure-PyTorch backends: everywhere."""
    return True


@dataclass(frozen=True)
class Backend:
    """One implementation of an op.

    ``run`` takes the op's implementation arguments (each op documents them); ``available(device, dtype)`` says
    whether it can run a call with inputs on ``device`` computing in ``dtype``; ``needs`` completes "it ..." in the
    error raised when the backend is forced where it cannot run; ``automatic`` backends may be chosen without
    being asked for (the test oracles and memory-heavy variants are not).
    """

    name: str
    run: Callable[..., Any]
    available: Callable[[torch.device, torch.dtype], bool] = always
    needs: str = ""
    automatic: bool = True


_REGISTRY: dict[str, dict[str, Backend]] = {}   # op -> backends in priority order
_settings: dict[str, str] = {}                   # op -> backend forced by set_backend (process-wide)
_local = threading.local()                       # attribute op -> tuple of use_backend names, innermost last


def register_backend(op: str, name: str, run: Callable[..., Any], *,
                     available: Callable[[torch.device, torch.dtype], bool] = always, needs: str = "",
                     automatic: bool = True) -> None:
    """Adds backend ``name`` of ``op`` after the ones registered before it (the automatic priority order)."""
    backends = _REGISTRY.setdefault(op, {})
    if name in backends or name in _AUTO:
        raise ValueError(f"{op} backend {name!r} is already registered or reserved")
    backends[name] = Backend(name, run, available, needs, automatic)


def ops_with_backends() -> list[str]:
    """The ops that have registered backends."""
    return list(_REGISTRY)


def env_var(op: str) -> str:
    """The environment variable that forces a backend of ``op``."""
    return f"SSMBLOCKS_{op.upper()}_BACKEND"


def _backends_of(op: str) -> dict[str, Backend]:
    if op not in _REGISTRY:
        raise ValueError(f"unknown op {op!r}; ops with backends: {sorted(_REGISTRY)}")
    return _REGISTRY[op]


def _check_name(op: str, name: str | None) -> None:
    backends = _backends_of(op)
    if name not in _AUTO and name not in backends:
        raise ValueError(f"unknown {op} backend {name!r}; choose one of {list(backends)} or 'auto'")


def available_backends(
    op: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> list[str]:
    """Backends of ``op`` that can run on ``device`` for ``dtype`` inputs here, in automatic-priority order."""
    device = torch.device(device)
    return [name for name, backend in _backends_of(op).items() if backend.available(device, dtype)]


def set_backend(op: str, name: str | None) -> None:
    """Force ``op`` to use backend ``name`` from now on, in every thread (``None``/``"auto"`` restores the automatic
    choice). ``use_backend`` contexts still win inside their thread."""
    _check_name(op, name)
    if name in _AUTO:
        _settings.pop(op, None)
    else:
        _settings[op] = name


@contextlib.contextmanager
def use_backend(op: str, name: str) -> Iterator[None]:
    """Context manager: calls of ``op`` made by this thread inside the block use backend ``name`` (``"auto"`` for
    the automatic choice). Other threads are not affected."""
    _check_name(op, name)
    outer = getattr(_local, op, ())
    setattr(_local, op, (*outer, name or "auto"))
    try:
        yield
    finally:
        setattr(_local, op, outer)


def _requested(op: str) -> str | None:
    stack = getattr(_local, op, ())
    if stack:
        return None if stack[-1] == "auto" else stack[-1]
    if op in _settings:
        return _settings[op]
    env = os.environ.get(env_var(op), "").strip().lower()
    if env in _AUTO:
        return None
    if env not in _REGISTRY[op]:
        raise ValueError(f"{env_var(op)}={env!r} is not a {op} backend; use one of {list(_REGISTRY[op])} or 'auto'")
    return env


def dispatch(
    op: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    unsupported: Mapping[str, str] | None = None,
) -> Backend:
    """The backend a call of ``op`` on ``device`` with ``dtype`` inputs runs now (after overrides).

    ``unsupported`` maps backends that cannot take this particular call to the reason ("takes no initial_states");
    the automatic choice skips them. Raises RuntimeError if a backend forced by the user cannot run the call.
    """
    backends = _backends_of(op)
    device = torch.device(device)
    unsupported = unsupported or {}
    name = _requested(op)
    if name is None:
        return next(b for b in backends.values()
                    if b.automatic and b.name not in unsupported and b.available(device, dtype))
    if name in unsupported:
        raise RuntimeError(f"{op} backend {name!r} cannot run this call: it {unsupported[name]}")
    backend = backends[name]
    if not backend.available(device, dtype):
        raise RuntimeError(f"{op} backend {name!r} cannot run on {device} ({dtype}): it {backend.needs}")
    return backend


def get_backend(
    op: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    unsupported: Mapping[str, str] | None = None,
) -> str:
    """The name of the backend ``dispatch`` picks for a call of ``op`` on ``device`` with ``dtype`` inputs."""
    return dispatch(op, device, dtype, unsupported=unsupported).name


def native_needs(inputs: str = "CPU tensors") -> str:
    """What a native backend needs, for the error when "native" is forced where it cannot run."""
    return f"needs {inputs} and the native kernel, which failed to build or was disabled (see the earlier warning)"


def native_on_cpu(dtypes: tuple[torch.dtype, ...] | None = None) -> Callable[[torch.device, torch.dtype], bool]:
    """Availability of a native backend: CPU inputs (of one of ``dtypes``, when given) and a loaded kernel."""

    def available(device: torch.device, dtype: torch.dtype) -> bool:
        return device.type == "cpu" and (dtypes is None or dtype in dtypes) and native_available()

    return available


_CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAMBA_SSM_NEEDS = ("needs CUDA tensors in float32/float16/bfloat16 and an importable mamba_ssm "
                   "(pip install 'ssmblocks[cuda]')")


def mamba_ssm_on_cuda(device: torch.device, dtype: torch.dtype) -> bool:
    """Availability of the ``cuda`` backends (mamba_ssm's kernels): CUDA inputs in a dtype they take."""
    return device.type == "cuda" and dtype in _CUDA_DTYPES and mamba_ssm_available()
