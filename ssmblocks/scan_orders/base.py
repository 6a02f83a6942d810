"""The scan-order abstraction: a feature map becomes K one-dimensional paths and back, by cached index gathers.

Layouts: a feature map is (B, C, *spatial) — (B, C, H, W) for images, (B, C, T, H, W) for clips. The paths are
(B, K, C, L), channel-major like the scan kernel. ``merge`` maps path outputs (B, K, C, L) back to
(B, K, C, *spatial), un-permuted per path, so a mixer can apply per-path operations before ``merge_sum``.

Every order is defined by ``build_paths(shape)``: a (K, L) int64 tensor of indices into the flattened input,
where an index >= ``prod(shape)`` that no input provides stands for a zero token (padding). An order with several
inputs (the cross-scale order: a fine and a coarse map) flattens them into one source (``flatten_inputs``) and
indexes past ``prod(shape)`` into the extra ones. From the paths the base class derives, once per (shape, device),
the inverse (position of every output pixel in every path) used by ``merge``. Orders hold no parameters
and no tensors that could end up in a state_dict; the caches are plain dicts.
"""

from __future__ import annotations

import math
from functools import reduce

import torch
from torch import Tensor

from ssmblocks.ops import _native

__all__ = ["Concat", "Reversed", "ScanOrder", "concat"]


class ScanOrder:
    """Base class. Subclasses set ``ndim`` (spatial rank) and ``num_paths`` and implement ``build_paths``."""

    ndim: int = 2
    num_paths: int = 1

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[Tensor, Tensor]] = {}

    # ---- what a subclass defines ------------------------------------------------------------------------------
    def build_paths(self, shape: tuple[int, ...]) -> Tensor:
        """(K, L) int64 indices into the row-major flattened map; ``prod(shape)`` is the zero (padding) token."""
        raise NotImplementedError

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raises ValueError if the order cannot scan a map of this spatial shape."""

    def source_size(self, shape: tuple[int, ...]) -> int:
        """Tokens in the flattened input(s) for an output map of ``shape``; this index is the zero token."""
        return math.prod(shape)

    @property
    def padding(self) -> str:
        """The padding rule in words (what is padded, with what, and what is cropped back)."""
        return "none: every path visits exactly the map's pixels"

    # ---- derived ----------------------------------------------------------------------------------------------
    def seq_len(self, shape: tuple[int, ...]) -> int:
        """Length L of every path for a map of spatial ``shape``."""
        return self.paths(tuple(shape), torch.device("cpu")).shape[1]

    def paths(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """Cached (K, L) gather indices for ``shape`` on ``device``."""
        return self._indices(tuple(shape), torch.device(device))[0]

    def inverse(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """Cached (K, prod(shape)) positions: ``inverse[k, p]`` is where pixel p sits in path k."""
        shape = tuple(shape)
        return self._indices(shape, torch.device(device))[1][:, : math.prod(shape)]

    def _indices(self, shape: tuple[int, ...], device: torch.device) -> tuple[Tensor, Tensor]:
        """(paths (K, L), source inverse (K, source_size)), built once per (shape, device)."""
        key = (shape, device)
        if key not in self._cache:
            self.check_shape(shape)
            paths = self.build_paths(shape).to(torch.int64)
            inverse = _invert(paths, self.source_size(shape), repr(self))
            self._cache[key] = (paths.to(device), inverse.to(device))
        return self._cache[key]

    def _check_map(self, x: Tensor, name: str = "x") -> tuple[int, ...]:
        if not isinstance(x, Tensor) or x.dim() != self.ndim + 2:
            layout = "(B, C, H, W)" if self.ndim == 2 else "(B, C, T, H, W)"
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__} scans {name} of layout {layout}, got {got}")
        return tuple(x.shape[2:])

    def flatten_inputs(self, *maps: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """The inputs of ``scan`` as one source (B, C, N) and the spatial shape of the output map."""
        if len(maps) != 1:
            raise ValueError(f"{self!r} scans one map, got {len(maps)}")
        shape = self._check_map(maps[0])
        return maps[0].flatten(2), shape

    # ---- the operations ---------------------------------------------------------------------------------------
    def scan(self, *maps: Tensor) -> Tensor:
        """(B, C, *spatial) -> (B, K, C, L). Orders with several inputs take them all (see ``flatten_inputs``)."""
        src, shape = self.flatten_inputs(*maps)
        paths, source_inverse = self._indices(shape, src.device)
        return _PathGather.apply(src.contiguous(), paths, source_inverse, True, False)

    def merge(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        """(B, K, C, L) path outputs -> (B, K, C, *shape), each path un-permuted; padding tokens dropped."""
        return self._merge(y, shape, sum_paths=False)

    def merge_sum(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        """(B, K, C, L) -> (B, C, *shape): the sum over paths of ``merge``."""
        return self._merge(y, shape, sum_paths=True)

    def _merge(self, y: Tensor, shape: tuple[int, ...], sum_paths: bool) -> Tensor:
        self._check_paths(y, shape)
        shape = tuple(shape)
        paths, inverse = self.paths(shape, y.device), self.inverse(shape, y.device).contiguous()
        return _PathGather.apply(y.contiguous(), inverse, paths, False, sum_paths).unflatten(-1, shape)

    def _check_paths(self, y: Tensor, shape: tuple[int, ...]) -> None:
        shape = tuple(shape)
        if len(shape) != self.ndim:
            raise ValueError(f"{type(self).__name__} merges onto a {self.ndim}-D map, got shape {shape}")
        length = self.paths(shape, y.device).shape[1]
        if y.dim() != 4 or y.shape[1] != self.num_paths or y.shape[3] != length:
            raise ValueError(f"{type(self).__name__} merges paths of layout (B, K={self.num_paths}, C, L={length}) "
                             f"for a map of shape {shape}, got {tuple(y.shape)}")

    # ---- composition ------------------------------------------------------------------------------------------
    def reversed(self) -> ScanOrder:
        """The same paths, each walked backwards."""
        return Reversed(self)

    def __add__(self, other: ScanOrder) -> ScanOrder:
        return Concat(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _gather(src: Tensor, index: Tensor, shared_source: bool, sum_paths: bool) -> Tensor:
    """out[b, k, c, m] = src[b, (k,) c, index[k, m]], 0 where index >= src.shape[-1]; summed over k if asked.

    src: (B, C, N) when ``shared_source`` (every path reads the same map) else (B, K, C, N); index (K, M).
    Returns (B, K, C, M), or (B, C, M) with ``sum_paths``. Native kernel on CPU float32/64, torch.gather otherwise.
    """
    native = _native.gather_paths(src, index, shared_source, sum_paths)
    if native is not None:
        return native
    if shared_source:
        src = src[:, None].expand(-1, index.shape[0], -1, -1)
    zero = src.new_zeros(*src.shape[:-1], 1)
    padded = torch.cat([src, zero], dim=-1)                           # index N (or more) reads the zero
    idx = index.clamp(max=src.shape[-1])[None, :, None, :].expand(src.shape[0], -1, src.shape[2], -1)
    out = torch.gather(padded, -1, idx)
    return out.sum(1) if sum_paths else out


# How each gather's gradient is itself a gather: scan (shared source) <-> per-path gather summed over paths
# (every source token sits exactly once in every path); merge (per path) <-> per path; merge_sum <-> scan.
_ADJOINT = {(True, False): (False, True), (False, True): (True, False), (False, False): (False, False)}


class _PathGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, src, index, adjoint_index, shared_source, sum_paths):
        ctx.save_for_backward(index, adjoint_index)
        ctx.mode = (shared_source, sum_paths)
        return _gather(src, index, shared_source, sum_paths)

    @staticmethod
    def backward(ctx, grad):
        index, adjoint_index = ctx.saved_tensors
        shared, summed = _ADJOINT[ctx.mode]
        return _PathGather.apply(grad.contiguous(), adjoint_index, index, shared, summed), None, None, None, None


def _invert(paths: Tensor, source_size: int, name: str) -> Tensor:
    """(K, L) paths -> (K, source_size) position of every source token in every path (index source_size, the
    zero token, may repeat). Checks that every path visits every source token exactly once."""
    positions = torch.arange(paths.shape[1]).expand_as(paths)
    inverse = torch.full((paths.shape[0], source_size + 1), -1, dtype=torch.int64).scatter_(1, paths, positions)
    counts = torch.zeros_like(inverse).scatter_add_(1, paths, torch.ones_like(paths))
    if paths.max() > source_size or (counts[:, :source_size] != 1).any():
        raise AssertionError(f"{name}: a path does not visit every source token exactly once")
    return inverse[:, :source_size]


class Reversed(ScanOrder):
    """Every path of ``order`` walked backwards (the ``_flip`` of the official code bases)."""

    def __init__(self, order: ScanOrder) -> None:
        super().__init__()
        self.order, self.ndim, self.num_paths = order, order.ndim, order.num_paths

    def build_paths(self, shape):
        return self.order.build_paths(shape).flip(-1)

    def check_shape(self, shape):
        self.order.check_shape(shape)

    def flatten_inputs(self, *maps):
        return self.order.flatten_inputs(*maps)

    def source_size(self, shape):
        return self.order.source_size(shape)

    @property
    def padding(self) -> str:
        return self.order.padding

    def __repr__(self) -> str:
        return f"{self.order!r}.reversed()"


class Concat(ScanOrder):
    """The paths of several orders, in the order given (K = sum of their K). All must share L for a shape."""

    def __init__(self, *orders: ScanOrder) -> None:
        super().__init__()
        if not orders or len({o.ndim for o in orders}) != 1:
            raise ValueError("Concat needs one or more orders of the same spatial rank")
        flat = []
        for order in orders:
            flat.extend(order.orders if isinstance(order, Concat) else [order])
        self.orders, self.ndim = tuple(flat), orders[0].ndim
        self.num_paths = sum(o.num_paths for o in self.orders)

    def build_paths(self, shape):
        parts = [o.build_paths(shape) for o in self.orders]
        if len({p.shape[1] for p in parts}) != 1:
            lengths = ", ".join(f"{o!r}: {p.shape[1]}" for o, p in zip(self.orders, parts, strict=True))
            raise ValueError(f"orders in a Concat must have equal path lengths for shape {shape}; got {lengths}")
        return torch.cat(parts)

    def check_shape(self, shape):
        for order in self.orders:
            order.check_shape(shape)

    def flatten_inputs(self, *maps):
        return self.orders[0].flatten_inputs(*maps)

    def source_size(self, shape):
        return self.orders[0].source_size(shape)

    @property
    def padding(self) -> str:
        rules = dict.fromkeys(o.padding for o in self.orders)
        return "; ".join(rules)

    def __repr__(self) -> str:
        return reduce(lambda a, b: f"{a} + {b}", (repr(o) for o in self.orders))


def concat(*orders: ScanOrder) -> ScanOrder:
    """The paths of ``orders`` one after another (VMamba's 4-path set is concat(row, col, row.rev, col.rev))."""
    return orders[0] if len(orders) == 1 else Concat(*orders)
