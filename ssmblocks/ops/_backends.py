"""Backend selection for the scan ops.

Each op (``"selective_scan"``, ``"ssd_scan"``) has a list of backends in priority order. A call picks the first one
that is available for its device, unless the user has chosen one:

* ``ssmblocks.ops.use_backend(op, name)`` — a context manager (innermost wins),
* ``ssmblocks.ops.set_backend(op, name)`` — a process-wide setting (``None`` or ``"auto"`` resets it),
* the environment variables ``SSMBLOCKS_SELECTIVE_SCAN_BACKEND`` / ``SSMBLOCKS_SSD_SCAN_BACKEND``, read per call.

Precedence: context manager > setter > environment variable > automatic choice.
``ssmblocks.ops.get_backend(op, device)`` tells which backend a call on ``device`` would use. A backend can also
lack a feature of one particular call (the native SSD scan takes no ``initial_states``): the op passes it in
``get_backend(..., unsupported={name: reason})``, the automatic choice then skips it and forcing it raises.

The state is a plain module global (not thread-local) so that ``torch.compile`` can guard on it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Callable, Iterator, Mapping

import torch

# Priority order per op; "reference" is the sequential test oracle and is never chosen automatically.
_BACKENDS: dict[str, tuple[str, ...]] = {
    "selective_scan": ("cuda", "native", "torch", "parallel", "reference"),
    "ssd_scan": ("cuda", "native", "torch", "reference"),
    "path_gather": ("native", "torch"),
    "deform_conv": ("native", "torch"),
}
_ENV_VARS = {op: f"SSMBLOCKS_{op.upper()}_BACKEND" for op in _BACKENDS}
_AUTO = ("auto", "", None)

_settings: dict[str, str | None] = {op: None for op in _BACKENDS}
_overrides: dict[str, list[str]] = {op: [] for op in _BACKENDS}


# Availability is fixed for the life of a process: torch.compile evaluates these once at trace time.
@torch.compiler.assume_constant_result
@functools.cache
def mamba_ssm_available() -> bool:
    """Whether ``mamba_ssm`` (with its compiled CUDA extension) imports; checked once per process."""
    try:
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
        importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
    except Exception:  # ImportError, or a broken CUDA/triton install raising anything else
        return False
    return True


@torch.compiler.assume_constant_result
def _native_available() -> bool:
    from ssmblocks.ops._native import native_library

    return native_library() is not None


_CUDA_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# (device, dtype of the inputs) -> can this backend run the call?
_AVAILABILITY: dict[str, Callable[[torch.device, torch.dtype], bool]] = {
    "cuda": lambda device, dtype: device.type == "cuda" and dtype in _CUDA_DTYPES and mamba_ssm_available(),
    "native": lambda device, dtype: device.type == "cpu" and _native_available(),
    "torch": lambda device, dtype: True,
    "parallel": lambda device, dtype: True,
    "reference": lambda device, dtype: True,
}


def _check_op(op: str) -> None:
    if op not in _BACKENDS:
        raise ValueError(f"unknown op {op!r}; ops with backends: {sorted(_BACKENDS)}")


def _check_name(op: str, name: str) -> None:
    if name not in _BACKENDS[op]:
        raise ValueError(f"unknown {op} backend {name!r}; choose one of {list(_BACKENDS[op])} or 'auto'")


def available_backends(
    op: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> list[str]:
    """Backends of ``op`` that can run on ``device`` for ``dtype`` inputs here, in automatic-priority order."""
    _check_op(op)
    device = torch.device(device)
    return [name for name in _BACKENDS[op] if _AVAILABILITY[name](device, dtype)]


def set_backend(op: str, name: str | None) -> None:
    """Force ``op`` to use backend ``name`` from now on (``None``/``"auto"`` restores the automatic choice)."""
    _check_op(op)
    if name not in _AUTO:
        _check_name(op, name)
    _settings[op] = None if name in _AUTO else name


@contextlib.contextmanager
def use_backend(op: str, name: str) -> Iterator[None]:
    """Context manager: calls of ``op`` inside the block use backend ``name`` (``"auto"`` for the default)."""
    _check_op(op)
    if name not in _AUTO:
        _check_name(op, name)
    _overrides[op].append(name or "auto")
    try:
        yield
    finally:
        _overrides[op].pop()


def _requested(op: str) -> str | None:
    if _overrides[op]:
        name = _overrides[op][-1]
        return None if name == "auto" else name
    if _settings[op] is not None:
        return _settings[op]
    env = os.environ.get(_ENV_VARS[op], "").strip().lower()
    if env in _AUTO:
        return None
    if env not in _BACKENDS[op]:
        raise ValueError(f"{_ENV_VARS[op]}={env!r} is not a {op} backend; use one of {list(_BACKENDS[op])} or 'auto'")
    return env


def get_backend(
    op: str,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    unsupported: Mapping[str, str] | None = None,
) -> str:
    """The backend a call of ``op`` on ``device`` with ``dtype`` inputs uses now (after overrides).

    ``unsupported`` maps backends that cannot take this particular call to the reason ("takes no initial_states");
    the automatic choice skips them. Raises RuntimeError if a backend forced by the user cannot run the call.
    """
    _check_op(op)
    device = torch.device(device)
    unsupported = unsupported or {}
    name = _requested(op)
    if name is None:
        return next(n for n in _BACKENDS[op]
                    if n != "reference" and n not in unsupported and _AVAILABILITY[n](device, dtype))
    if name in unsupported:
        raise RuntimeError(f"{op} backend {name!r} cannot run this call: it {unsupported[name]}")
    if not _AVAILABILITY[name](device, dtype):
        why = {
            "cuda": "needs CUDA tensors in float32/float16/bfloat16 and an importable mamba_ssm "
            "(pip install 'ssmblocks[cuda]')",
            "native": "needs CPU tensors and the native kernel, which failed to build (see the earlier warning)",
        }[name]
        raise RuntimeError(f"{op} backend {name!r} cannot run on {device} ({dtype}): it {why}")
    return name
