"""Checkpoint formats that describe their own model: a registered hook for files that carry the architecture and
its arguments beside the weights (EAMamba's ``{'model': {'name', 'args', 'sd', 'sd_e'}}``), and the choice between
several sets of weights in one file.

A family registers a format with ``register_checkpoint_format(name, matches=..., weights=(...))`` decorating a
``describe(raw, weights)`` function: ``matches(raw)`` looks at the loaded object (before any unwrapping) and says
whether the file is of this format; ``describe`` returns a ``DescribedCheckpoint`` — the registered architecture to
build, its complete constructor arguments and the state dict of the weight set ``weights`` (one of the names
registered, the first being the default). ``load_checkpoint`` builds from that description (the weights still
checked against the arguments, strictly); a file of no registered format is unwrapped and detected from its keys as
before. Any exception inside ``matches`` or ``describe`` becomes a CheckpointError naming the format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ssmblocks._checkpoint import CheckpointError, unwrap_state_dict

__all__ = ["DescribedCheckpoint", "checkpoint_formats", "describe_checkpoint", "register_checkpoint_format",
           "state_dict_of"]


@dataclass(frozen=True)
class DescribedCheckpoint:
    """What a self-describing file says: the architecture to build, its arguments, the chosen weights (``weights``
    names the set, ``default_weights`` the format's default; both filled in by ``describe_checkpoint``)."""

    architecture: str
    model_args: dict[str, Any]
    state_dict: Mapping[str, Tensor]
    variant: str = ""
    family: str = ""
    weights: str = ""
    default_weights: str = ""


DescribeFn = Callable[[Mapping[str, Any], str], DescribedCheckpoint]


@dataclass(frozen=True)
class _Format:
    name: str
    matches: Callable[[object], bool]
    describe: DescribeFn
    weights: tuple[str, ...]


_formats: dict[str, _Format] = {}


def register_checkpoint_format(name: str, *, matches: Callable[[object], bool],
                               weights: tuple[str, ...]) -> Callable[[DescribeFn], DescribeFn]:
    """Registers a self-describing checkpoint format (see the module docstring); decorates ``describe``.
    ``weights`` names the weight sets a file of the format holds, the default first."""
    if not weights:
        raise ValueError("a checkpoint format names at least one set of weights (the default first)")

    def decorator(describe: DescribeFn) -> DescribeFn:
        if name in _formats:
            raise ValueError(f"a checkpoint format {name!r} is registered twice")
        _formats[name] = _Format(name, matches, describe, tuple(weights))
        return describe

    return decorator


def checkpoint_formats() -> dict[str, tuple[str, ...]]:
    """The registered formats and the weight sets each holds (default first)."""
    return {name: fmt.weights for name, fmt in _formats.items()}


def _format_of(raw: object, origin: str) -> _Format | None:
    for fmt in _formats.values():
        try:
            if fmt.matches(raw):
                return fmt
        except Exception as err:
            raise CheckpointError(f"{origin}: the {fmt.name} checkpoint format test failed ({type(err).__name__}: "
                                  f"{err})") from err
    return None


def describe_checkpoint(raw: object, origin: str, weights: str | None = None) -> DescribedCheckpoint | None:
    """The description of a loaded self-describing file (its state dict checked like any file's), or None when
    ``raw`` is of no registered format. ``weights``: which weight set (default: the format's first)."""
    fmt = _format_of(raw, origin)
    if fmt is None:
        return None
    choice = fmt.weights[0] if weights is None else weights
    if choice not in fmt.weights:
        raise CheckpointError(f"{origin} is a {fmt.name} checkpoint, whose weight sets are {', '.join(fmt.weights)} "
                              f"(default {fmt.weights[0]}); got weights={weights!r}")
    try:
        described = fmt.describe(raw, choice)
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"{origin} is a {fmt.name} checkpoint, but it cannot be read ({type(err).__name__}: "
                              f"{err})") from err
    state = unwrap_state_dict(described.state_dict, f"{origin} [{choice}]")
    return dataclasses.replace(described, state_dict=state, weights=choice, default_weights=fmt.weights[0])


def state_dict_of(raw: object, origin: str, weights: str | None = None) -> dict[str, Tensor]:
    """The state dict of a loaded file: the chosen weight set of a self-describing format; otherwise the unwrapped
    state dict, or with ``weights`` the top-level entry of that name (BasicSR's 'params' beside 'params_ema')."""
    described = describe_checkpoint(raw, origin, weights)
    if described is not None:
        return dict(described.state_dict)
    if weights is not None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get(weights), Mapping):
            keys = sorted(map(str, raw))[:10] if isinstance(raw, Mapping) else type(raw).__name__
            raise CheckpointError(f"{origin} holds no weights named {weights!r} (top level: {keys})")
        raw = raw[weights]
    return unwrap_state_dict(raw, origin)
