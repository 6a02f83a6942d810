"""Pieces every zoo file shares: the official transformer-style init, the RGB mean shift of the SwinIR lineage, and
what detection needs (counting numbered keys, ratios from widths, the registered variant a checkpoint is)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["RGB_MEAN", "count_indices", "init_linear_and_norm", "mean_of", "variant_named", "width_ratio"]

RGB_MEAN = (0.4488, 0.4371, 0.4040)     # the DIV2K RGB mean of SwinIR / MambaIR / MambaCSR / DVMSR


def init_linear_and_norm(m: nn.Module) -> None:
    """The official constructors' ``_init_weights``: Linear trunc_normal(std 0.02) with zero bias; LayerNorm 1, 0.
    Use as ``model.apply(init_linear_and_norm)``."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def mean_of(x: Tensor, values: Sequence[float]) -> Tensor:
    """(1, C, 1, 1) mean for images ``x``: the official code keeps it as a float32 tensor cast to the input's dtype.
    A constant, not a buffer: models load on the meta device and take every tensor from the checkpoint."""
    return x.new_tensor(values, dtype=torch.float32).to(x.dtype).view(1, -1, 1, 1)


def count_indices(state: Mapping[str, Tensor], pattern: str) -> int:
    """How many distinct values the first group of ``pattern`` takes over the keys (e.g. blocks per layer)."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.fullmatch(k))})


def width_ratio(width: int, dim: int) -> float:
    """The ratio a constructor was given for a layer of ``width`` channels built as ``int(ratio * dim)``: a usual
    value or width / dim when it gives ``width`` back, else width / dim nudged up (a plain width / dim can land one
    short: int(60 / 44 * 44) == 59)."""
    for ratio in (4.0, 2.0, 1.5, 1.2, 1.0, width / dim):
        if int(ratio * dim) == width:
            return ratio
    return width / dim + 1e-9


def variant_named(variants: Mapping[str, Mapping[str, Any]], args: Mapping[str, Any], keys: Sequence[str],
                  default: str) -> str:
    """The first registered variant (``test_*`` sizes excluded) of a family's variant table whose values for ``keys``
    equal ``args``'s: the architecture detection names for a checkpoint; ``default`` when none does."""
    def same(a: Any, b: Any) -> bool:
        return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b

    return next((name for name, values in variants.items() if not name.startswith("test_")
                 and all(same(values.get(key), args.get(key)) for key in keys)), default)
