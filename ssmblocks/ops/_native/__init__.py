"""ctypes bindings of the native CPU kernels: the selective scan and path gather (``selective_scan.cpp``) and the
deformable-convolution im2col (``deform_conv.cpp``).

``native_library()`` builds/loads the library once per process (a cached library is loaded only when it matches
the size/hash record of its build, see ``build``). If that fails (no compiler, a broken toolchain, a library that
does not load) it warns once, saying which, and returns ``None``; the ops then run on the pure-PyTorch path.
Set ``SSMBLOCKS_DISABLE_NATIVE=1`` to skip the native kernel entirely.
"""

from __future__ import annotations

import ctypes
import functools
import os
import warnings

import torch

from ssmblocks.ops import _memory
from ssmblocks.ops._native import build as _build

_ABI_VERSION = 2
CHECKPOINT_INTERVAL = 128  # kChunk in selective_scan.cpp; checked when the library loads


class _ScanProblem(ctypes.Structure):
    _fields_ = [
        ("batch", ctypes.c_int64),
        ("dim", ctypes.c_int64),
        ("len", ctypes.c_int64),
        ("dstate", ctypes.c_int64),
        ("groups", ctypes.c_int64),
        *[(name, ctypes.c_void_p) for name in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")],
        ("softplus", ctypes.c_int32),
        ("num_threads", ctypes.c_int32),
    ]


class _DeformGeometry(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("batch", "channels", "height", "width", "groups", "kh", "kw", "sh",
                                                    "sw", "ph", "pw", "dh", "dw", "out_h", "out_w")]


def _unavailable(reason: str) -> None:
    warnings.warn(f"ssmblocks: the native CPU kernels are unavailable: {reason}. Falling back to the slower "
                  "pure-PyTorch ops.", RuntimeWarning, stacklevel=3)


@functools.cache
def native_library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None (with one warning) when it cannot be built here."""
    if os.environ.get("SSMBLOCKS_DISABLE_NATIVE", "") not in ("", "0"):
        return None
    try:
        path = _build.build()
    except _build.BuildError as err:
        return _unavailable(str(err))
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        return _unavailable(f"the compiled library {path} does not load: {err}; delete it to have it rebuilt")
    lib.ssm_checkpoint_interval.restype = ctypes.c_int64
    if lib.ssm_abi_version() != _ABI_VERSION or lib.ssm_checkpoint_interval() != CHECKPOINT_INTERVAL:
        return _unavailable(f"the library {path} was built from other sources than this version's "
                            f"(ABI {lib.ssm_abi_version()}, expected {_ABI_VERSION}); delete it to have it rebuilt")
    problem = ctypes.POINTER(_ScanProblem)
    for suffix in ("f32", "f64"):
        getattr(lib, f"ssm_forward_{suffix}").argtypes = [problem] + [ctypes.c_void_p] * 3
        getattr(lib, f"ssm_backward_{suffix}").argtypes = [problem] + [ctypes.c_void_p] * 10
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.ssm_gather_paths.argtypes = [ctypes.c_int, ptr, i64, i64, i64, i64, ctypes.c_int, ptr, i64, ctypes.c_int,
                                     ptr, ctypes.c_int]
    geometry = ctypes.POINTER(_DeformGeometry)
    lib.ssm_deform_im2col.argtypes = [ctypes.c_int, geometry] + [ptr] * 4 + [ctypes.c_int]
    lib.ssm_deform_im2col_backward.argtypes = [ctypes.c_int, geometry] + [ptr] * 7 + [ctypes.c_int]
    _memory.apply_default()  # the CPU path is in use: keep freed activations for reuse (bounded, see _memory)
    return lib


def checkpoint_count(length: int) -> int:
    """Number of stored states per (batch, channel) that the backward needs for a sequence of ``length``."""
    return (length + CHECKPOINT_INTERVAL - 1) // CHECKPOINT_INTERVAL


def checkpoint_shape(batch: int, dim: int, length: int, dstate: int) -> tuple[int]:
    """Shape of the saved states, (batch, dim, n_chunks, dstate) flattened to one dimension: a traced program
    (torch.export with a dynamic length) would otherwise specialise on n_chunks == 1 at short example lengths."""
    return (batch * dim * checkpoint_count(length) * dstate,)


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _problem(u, delta, A, B, C, D, z, delta_bias, softplus) -> _ScanProblem:
    batch, dim, length = u.shape
    return _ScanProblem(
        batch, dim, length, A.shape[1], B.shape[1],
        *[_ptr(t) for t in (u, delta, A, B, C, D, z, delta_bias)],
        int(softplus), torch.get_num_threads(),
    )


def _suffix(dtype: torch.dtype) -> str:
    if dtype == torch.float32:
        return "f32"
    if dtype == torch.float64:
        return "f64"
    raise TypeError(f"the native kernel computes in float32 or float64, got {dtype}")


def forward(u, delta, A, B, C, D, z, delta_bias, softplus: bool, save_for_backward: bool):
    """Runs the scan. All tensors: contiguous, one dtype (float32/float64), CPU; B and C grouped (b, G, N, L).

    Returns (out (b, D, L), last_state (b, D, N), checkpoints (``checkpoint_shape``) or an empty tensor).
    """
    batch, dim, length = u.shape
    out = torch.empty_like(u)
    last_state = u.new_empty(batch, dim, A.shape[1])
    shape = checkpoint_shape(batch, dim, length, A.shape[1]) if save_for_backward else (0,)
    checkpoints = u.new_empty(shape)
    problem = _problem(u, delta, A, B, C, D, z, delta_bias, softplus)
    getattr(native_library(), f"ssm_forward_{_suffix(u.dtype)}")(
        ctypes.byref(problem), _ptr(out), _ptr(last_state), _ptr(checkpoints) if save_for_backward else None
    )
    return out, last_state, checkpoints


def backward(dout, u, delta, A, B, C, D, z, delta_bias, softplus: bool, checkpoints):
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias); entries for absent optional inputs are None."""
    du, ddelta = torch.empty_like(u), torch.empty_like(delta)
    dA, dB, dC = torch.empty_like(A), torch.empty_like(B), torch.empty_like(C)
    dD = torch.empty(A.shape[0], dtype=u.dtype)
    ddelta_bias = torch.empty(A.shape[0], dtype=u.dtype)
    dz = torch.empty_like(z) if z is not None else None
    problem = _problem(u, delta, A, B, C, D, z, delta_bias, softplus)
    getattr(native_library(), f"ssm_backward_{_suffix(u.dtype)}")(
        ctypes.byref(problem), _ptr(checkpoints), _ptr(dout),
        *[_ptr(t) for t in (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias)],
    )
    return (du, ddelta, dA, dB, dC, dD if D is not None else None, dz,
            ddelta_bias if delta_bias is not None else None)


GATHER_DTYPES = {torch.float32: 0, torch.float64: 1}


def gather_paths(src: torch.Tensor, index: torch.Tensor, shared_source: bool, sum_paths: bool) -> torch.Tensor:
    """Native path gather for scan orders (see ``ssmblocks.ops.path_gather``); needs the loaded library.

    src: (B, C, N) when ``shared_source`` else (B, K, C, N), CPU float32/float64 (``GATHER_DTYPES``); index (K, M)
    int64. Returns (B, K, C, M), or (B, C, M) with ``sum_paths``; entries whose index is >= N are 0.
    """
    src, index = src.contiguous(), index.contiguous()
    paths, out_len = index.shape
    batch, channels, src_len = src.shape[0], src.shape[-2], src.shape[-1]
    out = src.new_empty((batch, channels, out_len) if sum_paths else (batch, paths, channels, out_len))
    native_library().ssm_gather_paths(GATHER_DTYPES[src.dtype], src.data_ptr(), batch, paths, channels, src_len,
                                      int(shared_source), index.data_ptr(), out_len, int(sum_paths), out.data_ptr(),
                                      torch.get_num_threads())
    return out


def _deform_geometry(x, offset, kernel, stride, padding, dilation) -> _DeformGeometry:
    batch, channels, height, width = x.shape
    groups = offset.shape[1] // (2 * kernel[0] * kernel[1])
    return _DeformGeometry(batch, channels, height, width, groups, *kernel, *stride, *padding, *dilation,
                           *offset.shape[-2:])


def deform_im2col(x, offset, mask, kernel, stride, padding, dilation) -> torch.Tensor:
    """Bilinear deformable im2col (see ``deform_conv.cpp``); needs the loaded library.

    x (B, C, H, W); offset (B, 2 G kh kw, H_out, W_out); mask (B, G kh kw, H_out, W_out) or None; all contiguous CPU
    tensors of one dtype in ``GATHER_DTYPES``; kernel, stride, padding, dilation: (rows, columns) pairs.
    Returns the columns (B, C kh kw, H_out W_out), row c * kh * kw + k holding channel c at tap k.
    """
    taps = kernel[0] * kernel[1]
    columns = x.new_empty(x.shape[0], x.shape[1] * taps, offset.shape[-2] * offset.shape[-1])
    geometry = _deform_geometry(x, offset, kernel, stride, padding, dilation)
    native_library().ssm_deform_im2col(GATHER_DTYPES[x.dtype], ctypes.byref(geometry), _ptr(x), _ptr(offset),
                                       _ptr(mask), _ptr(columns), torch.get_num_threads())
    return columns


def deform_im2col_backward(grad_columns, x, offset, mask, kernel, stride, padding, dilation):
    """Gradients (x, offset, mask or None) of ``deform_im2col`` for ``grad_columns`` (same layouts and rules)."""
    grad_x, grad_offset = torch.empty_like(x), torch.empty_like(offset)
    grad_mask = None if mask is None else torch.empty_like(mask)
    geometry = _deform_geometry(x, offset, kernel, stride, padding, dilation)
    native_library().ssm_deform_im2col_backward(
        GATHER_DTYPES[x.dtype], ctypes.byref(geometry), _ptr(grad_columns), _ptr(x), _ptr(offset), _ptr(mask),
        _ptr(grad_x), _ptr(grad_offset), _ptr(grad_mask), torch.get_num_threads())
    return grad_x, grad_offset, grad_mask
