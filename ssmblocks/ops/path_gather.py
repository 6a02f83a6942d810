"""The path gather that scan orders run: the scan (a map into K paths) and the merge (K paths back onto a map).

    out = path_gather(src, index, adjoint_index, shared_source, sum_paths)

Layouts: ``src`` is (B, C, N) when ``shared_source`` (every path reads the same map, as in a scan) else (B, K, C, N)
(every path reads its own row, as in a merge); ``index`` (K, M) int64. ``out[b, k, c, m] = src[b, (k,) c,
index[k, m]]``, and 0 where ``index[k, m] >= N`` (the zero token that stands for padding). Returns (B, K, C, M), or
(B, C, M) summed over the paths with ``sum_paths``.

The gradient of a gather is again a gather: ``adjoint_index`` (K, N) holds, for every source token, its position
in every path (``index[k, adjoint_index[k, n]] == n``); the scan's adjoint is the per-path gather summed over the
paths, the summed merge's adjoint is the scan, the per-path merge's adjoint is the per-path gather. So the
backward costs what the forward does.

Backends: ``native`` (the C++ kernel, CPU float32/float64) runs as the torch custom op
``torch.ops.ssmblocks.path_gather`` with a fake implementation and its own backward, so torch.compile and
torch.export see one op; everywhere else (half precision, GPUs, no compiler) the pure-PyTorch gather
``path_gather_ref`` runs (backend ``torch``), ordinary differentiable torch code that traces as such. Choose as for
the scans: ``use_backend("path_gather", "torch")``, ``set_backend``, ``SSMBLOCKS_PATH_GATHER_BACKEND``, or
``SSMBLOCKS_DISABLE_NATIVE=1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssmblocks.ops import _native
from ssmblocks.ops._backends import dispatch, native_needs, native_on_cpu, register_backend

__all__ = ["path_gather", "path_gather_ref"]


def _out_shape(src: Tensor, index: Tensor, sum_paths: bool) -> tuple:
    batch, channels = src.shape[0], src.shape[-2]
    paths, length = index.shape
    return (batch, channels, length) if sum_paths else (batch, paths, channels, length)


@torch.library.custom_op("ssmblocks::path_gather", mutates_args=())
def _native_gather_op(src: Tensor, index: Tensor, adjoint_index: Tensor, shared_source: bool,
                      sum_paths: bool) -> Tensor:
    """The native kernel; ``adjoint_index`` is only read by the backward."""
    return _native.gather_paths(src, index, shared_source, sum_paths)


@_native_gather_op.register_fake
def _(src, index, adjoint_index, shared_source, sum_paths):
    return src.new_empty(_out_shape(src, index, sum_paths))


# (shared_source, sum_paths) of the gather whose gradient is computed -> the same flags of its adjoint gather.
# Every source token sits exactly once in every path, so scan <-> per-path gather summed over paths, merge <-> merge.
_ADJOINT = {(True, False): (False, True), (False, True): (True, False), (False, False): (False, False)}


def _setup_context(ctx, inputs, output):
    _, index, adjoint_index, shared_source, sum_paths = inputs
    ctx.save_for_backward(index, adjoint_index)
    ctx.adjoint = _ADJOINT[(shared_source, sum_paths)]


def _backward(ctx, grad):
    index, adjoint_index = ctx.saved_tensors
    return _native_gather_op(grad.contiguous(), adjoint_index, index, *ctx.adjoint), None, None, None, None


torch.library.register_autograd("ssmblocks::path_gather", _backward, setup_context=_setup_context)


def path_gather_ref(src: Tensor, index: Tensor, adjoint_index: Tensor | None, shared_source: bool,
                    sum_paths: bool) -> Tensor:
    """The pure-PyTorch gather (same signature and result as ``path_gather``; ``adjoint_index`` is not needed:
    autograd differentiates it). The non-native backend and the test oracle."""
    padded = F.pad(src, (0, 1))                                      # index N reads the zero token
    index = index.clamp(max=src.shape[-1])
    if shared_source:
        out = padded[:, :, index].transpose(1, 2).contiguous()       # (B, C, K, M) -> (B, K, C, M), as native
    else:
        out = padded.gather(-1, index[None, :, None, :].expand(src.shape[0], -1, src.shape[2], -1))
    return out.sum(1) if sum_paths else out


def _native_gather(src: Tensor, index: Tensor, adjoint_index: Tensor, shared_source: bool, sum_paths: bool) -> Tensor:
    return _native_gather_op(src.contiguous(), index, adjoint_index, shared_source, sum_paths)


# Backends in automatic-priority order; each runs path_gather's arguments, validated.
register_backend("path_gather", "native", _native_gather, available=native_on_cpu(tuple(_native.GATHER_DTYPES)),
                 needs=native_needs("CPU float32/float64 tensors"))
register_backend("path_gather", "torch", path_gather_ref)


def path_gather(src: Tensor, index: Tensor, adjoint_index: Tensor, shared_source: bool, sum_paths: bool) -> Tensor:
    """Gathers K paths out of ``src`` (or back); see the module docstring for layouts and semantics."""
    if index.dtype != torch.int64 or adjoint_index.dtype != torch.int64:
        raise TypeError(f"path_gather takes int64 indices, got index {index.dtype}, adjoint_index "
                        f"{adjoint_index.dtype}")
    if shared_source and sum_paths:
        raise ValueError("path_gather: shared_source and sum_paths together (every path read from one map, then "
                         "summed) is K times one gather; gather once instead")
    return dispatch("path_gather", src.device, src.dtype).run(src, index, adjoint_index, shared_source, sum_paths)
