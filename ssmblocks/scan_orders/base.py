"""The scan-order abstraction: a feature map becomes K one-dimensional paths and back, by index gathers.

Layouts: a feature map is (B, C, *spatial) — (B, C, H, W) for images, (B, C, T, H, W) for clips. The paths are
(B, K, C, L), channel-major like the scan kernel. ``merge`` maps path outputs (B, K, C, L) back to
(B, K, C, *spatial), un-permuted per path, so a mixer can apply per-path operations before ``merge_sum``.

Every order is defined by ``build_paths(shape)``: a (K, L) int64 tensor of indices into the flattened input,
where the index ``source_size(shape)`` (``prod(shape)`` for one input) stands for a zero token (padding). An order
with several inputs (the cross-scale order: a fine and a coarse map) flattens them into one source
(``flatten_inputs``) and indexes past ``prod(shape)`` into the extra ones. ``build_paths`` uses torch ops only
(arange, view, permute, flip, cat), so it also works on symbolic sizes: under ``torch.compile`` / ``torch.export``
the tables are built inside the graph (dynamic H, W, T); in eager mode they are built once per (order, shape,
device), outside inference mode (so a later training step can save them for backward), and kept in the shared
bounded ``index_cache``. From the paths the base class derives the inverse (position of every source token in
every path) used by ``merge`` and by the gradients.

Orders are values: two orders are equal (and share cached tables) when they have the same type and the same
attributes, which are their constructor parameters and nothing else. They hold no parameters and no tensors.
"""

from __future__ import annotations

import math
from functools import reduce
from typing import NamedTuple

import torch
from torch import Tensor

from ssmblocks.ops.path_gather import path_gather
from ssmblocks.scan_orders.cache import index_cache

__all__ = ["Concat", "Reversed", "ScanOrder", "concat"]


class _Tables(NamedTuple):
    paths: Tensor            # (K, L) source token visited at each step of each path
    source_inverse: Tensor   # (K, source_size) step of each path at which each source token is visited
    pixel_inverse: Tensor    # (K, prod(shape)) the same for the output map's pixels (a view of source_inverse)


def _symbolic(shape: tuple) -> bool:
    """True while torch.compile / torch.export trace (sizes may be symbolic: build the tables in the graph)."""
    return torch.compiler.is_compiling() or any(isinstance(s, torch.SymInt) for s in shape)


class ScanOrder:
    """Base class. Subclasses set ``ndim`` (spatial rank) and ``num_paths`` and implement ``build_paths``.

    Attributes are the order's parameters and its identity (equal orders share cached tables), so they must be
    hashable: setting a list, dict or tensor raises at once. ``build_paths`` must return ``num_paths`` paths.
    """

    ndim: int = 2
    num_paths: int = 1

    def __setattr__(self, name: str, value: object) -> None:
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.{name} = {value!r}: a scan order's attributes key the shared index "
                            f"cache, so they must be hashable (a tuple instead of a list, no tensors)") from None
        super().__setattr__(name, value)

    # ---- what a subclass defines ------------------------------------------------------------------------------
    def build_paths(self, shape: tuple[int, ...]) -> Tensor:
        """(K, L) int64 indices into the row-major flattened map; ``prod(shape)`` is the zero (padding) token.

        Torch ops only, no Python loops over sizes or data-dependent branches: ``shape`` may hold SymInts."""
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
        return self.paths(shape, "cpu").shape[1]

    def paths(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """(K, L) gather indices for ``shape`` on ``device``."""
        return self._tables(shape, device).paths

    def inverse(self, shape: tuple[int, ...], device: torch.device | str) -> Tensor:
        """(K, prod(shape)) positions: ``inverse[k, p]`` is where pixel p sits in path k."""
        return self._tables(shape, device).pixel_inverse

    def _tables(self, shape: tuple[int, ...], device: torch.device | str) -> _Tables:
        shape, device = tuple(shape), torch.device(device)
        self.check_shape(shape)
        if _symbolic(shape):
            return self._build(shape, device)
        return index_cache.get((self, shape, device), lambda: self._build_checked(shape, device))

    def _build(self, shape: tuple[int, ...], device: torch.device) -> _Tables:
        paths = self.build_paths(shape).to(device=device, dtype=torch.int64)
        if paths.dim() != 2 or paths.shape[0] != self.num_paths:
            raise ValueError(f"{self!r}.build_paths({shape}) returned a tensor of shape {tuple(paths.shape)}; it must "
                             f"be (num_paths={self.num_paths}, L)")
        size = self.source_size(shape)
        steps = torch.arange(paths.shape[1], device=device).expand_as(paths)
        # every path visits every source token once; the zero token (index ``size``) may repeat and is dropped
        source_inverse = paths.new_empty(paths.shape[0], size + 1).scatter(1, paths, steps)[:, :size].contiguous()
        # the same tensor unless the source has more than the output map (the coarse map of the cross-scale order)
        pixel_inverse = source_inverse[:, : math.prod(shape)].contiguous()
        return _Tables(paths, source_inverse, pixel_inverse)

    def _build_checked(self, shape: tuple[int, ...], device: torch.device) -> _Tables:
        """Eager tables for the cache: built outside inference mode (so autograd may save them later) and checked."""
        with torch.inference_mode(False):
            tables = self._build(shape, device)
            _check_visits_once(tables.paths, self.source_size(shape), repr(self))
        return tables

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
        tables = self._tables(shape, src.device)
        return path_gather(src, tables.paths, tables.source_inverse, True, False)

    def merge(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        """(B, K, C, L) path outputs -> (B, K, C, *shape), each path un-permuted; padding tokens dropped."""
        return self._merge(y, shape, sum_paths=False)

    def merge_sum(self, y: Tensor, shape: tuple[int, ...]) -> Tensor:
        """(B, K, C, L) -> (B, C, *shape): the sum over paths of ``merge``."""
        return self._merge(y, shape, sum_paths=True)

    def _merge(self, y: Tensor, shape: tuple[int, ...], sum_paths: bool) -> Tensor:
        shape = tuple(shape)
        if len(shape) != self.ndim:
            raise ValueError(f"{type(self).__name__} merges onto a {self.ndim}-D map, got shape {shape}")
        tables = self._tables(shape, y.device)
        length = tables.paths.shape[1]
        if y.dim() != 4 or y.shape[1] != self.num_paths or y.shape[3] != length:
            raise ValueError(f"{type(self).__name__} merges paths of layout (B, K={self.num_paths}, C, L={length}) "
                             f"for a map of shape {shape}, got {tuple(y.shape)}")
        return path_gather(y, tables.pixel_inverse, tables.paths, False, sum_paths).unflatten(-1, shape)

    # ---- composition and identity -----------------------------------------------------------------------------
    def reversed(self) -> ScanOrder:
        """The same paths, each walked backwards."""
        return Reversed(self)

    def __add__(self, other: ScanOrder) -> ScanOrder:
        return Concat(self, other)

    def _identity(self) -> tuple:
        return type(self), tuple(sorted(vars(self).items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScanOrder) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _check_visits_once(paths: Tensor, source_size: int, name: str) -> None:
    """Every path visits every source token exactly once (and otherwise only the zero token ``source_size``)."""
    visited = paths.sort(dim=1).values
    tokens = torch.arange(source_size, device=paths.device).expand(paths.shape[0], -1)
    if not (torch.equal(visited[:, :source_size], tokens) and (visited[:, source_size:] == source_size).all()):
        raise AssertionError(f"{name}: a path does not visit every source token exactly once")


class Reversed(ScanOrder):
    """Every path of ``order`` walked backwards (the ``_flip`` of the official code bases)."""

    def __init__(self, order: ScanOrder) -> None:
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
        if not orders or len({o.ndim for o in orders}) != 1:
            raise ValueError("Concat needs one or more orders of the same spatial rank")
        flat = []
        for order in orders:
            flat.extend(order.orders if isinstance(order, Concat) else [order])
        self.orders, self.ndim = tuple(flat), orders[0].ndim
        self.num_paths = sum(o.num_paths for o in self.orders)

    def build_paths(self, shape):
        parts = [o.build_paths(shape) for o in self.orders]
        if any(p.shape[1] != parts[0].shape[1] for p in parts):
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
