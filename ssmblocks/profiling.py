"""``ssmblocks.profile``: parameters, FLOPs (convolutions/matmuls and scans counted separately) and activation
memory of a model at an input size; and the dispatch modes behind it (also used to size tiles for a memory budget).

FLOPs use torch's own ``FlopCounterMode`` (2 per multiply-accumulate) with the scan formula registered in
``ssmblocks.ops._flops``. Papers that count with fvcore or thop report multiply-accumulates: about half these
numbers for the convolution/matmul part. Floating-point ops run on the meta device (shapes only, no arithmetic),
so profiling a full-size model at 1280x720 output takes seconds. Activation memory is the peak of the bytes held
by live intermediate tensors during one inference forward, counted op by op (kernel scratch space is not
included).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from ssmblocks.ops import (
    _flops,  # noqa: F401  (registers the scan's FLOP formula)
    available_backends,
    use_backend,
)

__all__ = ["LiveBytes", "ProfileResult", "SkipArithmetic", "profile", "run_without_arithmetic"]

_SCAN_OPS = (torch.ops.ssmblocks.selective_scan, torch.ops.ssmblocks.selective_scan_backward)


class LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created by ops while the mode is active; ``peak`` is their maximum."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # storage id -> [bytes, live tensor objects]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, Tensor):
                self._track(tensor)
        return out

    def _track(self, tensor: Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        entry = self._storages.get(key)
        if entry is None:
            entry = self._storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self.live -= entry[0]
                del self._storages[key]


class SkipArithmetic(TorchDispatchMode):
    """Skips floating-point arithmetic: ops on float tensors run on the meta device and return uninitialised
    tensors of the right shape (no pages touched), in-place float ops are skipped, views and integer ops (index
    construction, shape logic) run for real. Shapes and control flow are exact; the values are meaningless."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._overloadpacket not in flop_registry:
            with self:  # composite ops (conv2d, linear under inference mode) decompose into counted ones
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)]
        if func.is_view or not any(t.is_floating_point() for t in tensors):
            return func(*args, **kwargs)
        if func._schema.is_mutable:
            return args[0]
        device = tensors[0].device
        meta_args, meta_kwargs = tree_map(lambda t: t.to("meta") if isinstance(t, Tensor) else t, (args, kwargs))
        out = func(*meta_args, **meta_kwargs)
        return tree_map(lambda t: torch.empty_like(t, device=device) if isinstance(t, Tensor) else t, out)


def run_without_arithmetic(fn: Callable[[Tensor], Any], input_shape: Sequence[int], *modes: TorchDispatchMode,
                           dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
    """Runs ``fn`` on an input of ``input_shape`` under ``SkipArithmetic`` and then ``modes`` (which see every op
    with its true output shape). On CPU the native scan op is used so that the scan is one visible op."""
    native = "native" in available_backends("selective_scan", device)
    x = torch.zeros(tuple(input_shape), dtype=dtype, device=device)
    backend = use_backend("selective_scan", "native") if native else nullcontext()
    with backend, torch.inference_mode(), SkipArithmetic(), _stack(modes):
        fn(x)


def _stack(managers: Sequence[Any]) -> ExitStack:
    stack = ExitStack()
    for manager in managers:
        stack.enter_context(manager)
    return stack


@dataclass(frozen=True)
class ProfileResult:
    """What ``profile`` measured; FLOPs in torch's units (2 per multiply-accumulate)."""

    input_size: tuple[int, ...]
    params: int
    flops: int
    scan_flops: int
    activation_bytes: int

    @property
    def other_flops(self) -> int:
        """Convolutions, matmuls and the other ops torch's counter knows."""
        return self.flops - self.scan_flops

    def __str__(self) -> str:
        return (f"input {'x'.join(map(str, self.input_size))}: {self.params / 1e6:.3f} M parameters, "
                f"{self.flops / 1e9:.2f} GFLOPs ({self.other_flops / 1e9:.2f} conv/matmul + "
                f"{self.scan_flops / 1e9:.2f} scan), activations {self.activation_bytes / 2**20:.1f} MiB")


def profile(model: nn.Module, input_size: Sequence[int], *, dtype: torch.dtype = torch.float32) -> ProfileResult:
    """Parameters, FLOPs and peak activation memory of ``model`` on one input of ``input_size``.

    Args:
        input_size: (C, H, W) or a full shape with batch, e.g. (1, 3, 180, 320) or video (1, T, C, H, W).
    """
    shape = tuple(int(s) for s in input_size)
    if len(shape) == 3:
        shape = (1, *shape)
    params = sum(p.numel() for p in model.parameters())
    counter, live = FlopCounterMode(display=False), LiveBytes()
    was_training = model.training
    model.eval()
    try:
        run_without_arithmetic(model, shape, counter, live, dtype=dtype, device=_device(model))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts().get("Global", {})
    scan = sum(v for op, v in counts.items() if op in _SCAN_OPS)
    return ProfileResult(shape, params, counter.get_total_flops(), scan, live.peak)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
