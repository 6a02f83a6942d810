"""The semantic-guided order of MambaIRv2: tokens scanned sorted by a class each token is routed to at run time.

Facts (csguoh/MambaIR ``basicsr/archs/mambairv2_arch.py`` at 33d7b34, ``ASSM.forward``): every token of the
(padded) map is routed to one of T classes; the tokens are gathered in order of their class index (``torch.sort``
of the (B, L) class indices along L), scanned as one sequence, and gathered back by the inverse permutation. Each
image of a batch has its own permutation.

This is the first order whose permutation comes from the data, so it has two parts:

* ``SemanticOrder(num_classes, tie_order=...)``: the rule, a value like every order (hashable, no tensors). It
  cannot scan by itself; ``order.route(classes)`` or ``order.route(logits=...)`` binds it to a routing.
* ``RoutedOrder``: the order bound to one routing (it holds the (B, L) permutation and its inverse), with the usual
  ``scan`` / ``merge`` / ``merge_sum`` through the path-gather op, ``paths`` / ``inverse`` (one image) and so
  ``render``. It is never cached: a new routing builds a new one.

Ties: T classes over L tokens tie almost everywhere. ``tie_order="stable"`` (default) keeps tied tokens in raster
order, on every backend, and is what ONNX / torch.export programs compute (the sort key ``class * L + position``
is unique, so any sort gives the stable order). ``tie_order="backend"`` calls ``torch.sort(stable=False)`` as the
official code does: its tie order is whatever the backend's kernel produces (on CPU, torch 2.13, not raster order
for sequences longer than 16; see shared/reference/mambairv2.md, quirk 2).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmblocks.ops.path_gather import path_gather
from ssmblocks.scan_orders.base import ScanOrder

__all__ = ["TIE_ORDERS", "RoutedOrder", "SemanticOrder"]

TIE_ORDERS = ("stable", "backend")


class SemanticOrder(ScanOrder):
    """Tokens sorted by their class (``num_classes`` classes), ties broken by ``tie_order`` (see the module
    docstring). Bind it to a routing with ``route``; the unbound order has no paths."""

    ndim = 2
    num_paths = 1

    def __init__(self, num_classes: int, *, tie_order: str = "stable") -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if tie_order not in TIE_ORDERS:
            raise ValueError(f"tie_order must be one of {TIE_ORDERS}, got {tie_order!r}")
        self.num_classes, self.tie_order = int(num_classes), tie_order

    def build_paths(self, shape):
        raise TypeError(f"{self!r} is data-dependent: bind it to a routing first, order.route(classes) or "
                        f"order.route(logits=...), then scan, merge or render the RoutedOrder it returns")

    def permutation(self, classes: Tensor) -> Tensor:
        """(B, L) integer classes -> (B, L) int64: position j of image b's sequence holds token perm[b, j]."""
        if classes.dim() != 2 or classes.is_floating_point() or classes.is_complex():
            raise ValueError(f"{type(self).__name__} sorts integer classes of layout (B, L), got a {classes.dtype} "
                             f"tensor of shape {tuple(classes.shape)}")
        classes = classes.to(torch.int64)
        if self.tie_order == "backend":
            return torch.sort(classes, dim=-1, stable=False).indices
        length = classes.shape[1]
        key = classes * length + torch.arange(length, device=classes.device)     # unique: ties in raster order
        return torch.argsort(key, dim=-1)

    def route(self, classes: Tensor | None = None, *, logits: Tensor | None = None) -> RoutedOrder:
        """The order bound to a routing of a (B, C, H, W) map: ``classes`` (B, H, W) integer class of every pixel,
        or ``logits`` (B, H, W, num_classes) (the class is their argmax)."""
        if (classes is None) == (logits is None):
            raise ValueError("route takes either classes (B, H, W) or logits (B, H, W, num_classes)")
        if logits is not None:
            if logits.dim() != 4 or logits.shape[-1] != self.num_classes:
                raise ValueError(f"{self!r}.route takes logits (B, H, W, {self.num_classes}), got shape "
                                 f"{tuple(logits.shape)}")
            classes = logits.argmax(dim=-1)
        if classes.dim() != 3:
            raise ValueError(f"{self!r}.route takes classes (B, H, W), got shape {tuple(classes.shape)}")
        shape = tuple(classes.shape[1:])
        perm = self.permutation(classes.flatten(1))
        return RoutedOrder(perm, inverse_permutation(perm), shape)


def inverse_permutation(perm: Tensor) -> Tensor:
    """(B, L) permutations -> their inverses: ``inv[b, perm[b, j]] == j`` (a scatter: exact, traceable)."""
    steps = torch.arange(perm.shape[1], device=perm.device).expand_as(perm)
    return torch.empty_like(perm).scatter(1, perm, steps)


class RoutedOrder(ScanOrder):
    """A ``SemanticOrder`` bound to one routing of a (B, C, H, W) map: one path per image, its own permutation.

    ``scan``: (B, C, H, W) -> (B, 1, C, L); ``merge``: (B, 1, C, L) -> (B, 1, C, H, W); ``merge_sum``:
    (B, 1, C, L) -> (B, C, H, W). ``paths`` / ``inverse`` (and so ``render``) need one image (B = 1); take one with
    ``image(b)``. Identity is the object itself (it holds tensors).
    """

    ndim = 2
    num_paths = 1

    def __init__(self, perm: Tensor, inverse: Tensor, shape: tuple[int, int]) -> None:
        # object.__setattr__: the tensors are state, not hashable parameters (this order is never a cache key)
        object.__setattr__(self, "perm", perm)
        object.__setattr__(self, "inv", inverse)
        object.__setattr__(self, "shape", tuple(shape))

    def _check_shape_of(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            raise ValueError(f"this routing is for a map of shape {self.shape}, got {tuple(shape)}")

    def image(self, b: int) -> RoutedOrder:
        """The routing of image ``b`` alone."""
        return RoutedOrder(self.perm[b:b + 1], self.inv[b:b + 1], self.shape)

    def paths(self, shape, device):
        self._check_shape_of(shape)
        if self.perm.shape[0] != 1:
            raise ValueError(f"a routing of {self.perm.shape[0]} images has one path per image: take one with "
                             f".image(b) to get its paths")
        return self.perm.to(device)

    def inverse(self, shape, device):
        self.paths(shape, device)
        return self.inv.to(device)

    def seq_len(self, shape):
        self._check_shape_of(shape)
        return self.perm.shape[1]

    def scan(self, *maps: Tensor) -> Tensor:
        src, shape = self.flatten_inputs(*maps)
        self._check_shape_of(shape)
        if src.shape[0] != self.perm.shape[0]:
            raise ValueError(f"this routing is for {self.perm.shape[0]} images, got a batch of {src.shape[0]}")
        # the batch as the path axis: image b's "path" reads image b's tokens in its own order
        out = path_gather(src.unsqueeze(0), self.perm, self.inv, False, False)      # (1, B, C, L)
        return out.transpose(0, 1)

    def merge(self, y: Tensor, shape) -> Tensor:
        return self.merge_sum(y, shape).unsqueeze(1)

    def merge_sum(self, y: Tensor, shape) -> Tensor:
        shape = tuple(shape)
        self._check_shape_of(shape)
        batch, length = self.perm.shape
        if y.dim() != 4 or y.shape[0] != batch or y.shape[1] != 1 or y.shape[3] != length:
            raise ValueError(f"this routing merges paths of layout (B={batch}, 1, C, L={length}), got "
                             f"{tuple(y.shape)}")
        out = path_gather(y.transpose(0, 1), self.inv, self.perm, False, False)     # (1, B, C, HW)
        return out[0].unflatten(-1, shape)

    def reversed(self) -> ScanOrder:
        return RoutedOrder(self.perm.flip(-1), inverse_permutation(self.perm.flip(-1)), self.shape)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"RoutedOrder(batch={self.perm.shape[0]}, shape={self.shape})"
