"""Reading checkpoint files and loading them strictly into models.

Formats: safetensors (preferred) and PyTorch pickles read with ``torch.load(weights_only=True)``. Wrappers used by
BasicSR and others are unwrapped (``params_ema`` > ``params`` > ``state_dict`` > ``model`` > ``net``) and a shared
``module.`` prefix (DataParallel) is stripped. Loading is strict: a missing, unexpected or mis-shaped key is an
error that lists them — nothing is half-loaded. Files from strangers are read defensively: only dense tensors whose
data is really in the file are accepted (a zero-stride or storage-overflowing tensor — a few bytes claiming gigabytes
— sparse, quantized, meta and complex tensors are refused), keys must be strings, and a tensor must be of the kind
(floating point or integer) the model's tensor is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

__all__ = ["CHECKPOINT_SUFFIXES", "CheckpointError", "load_state_dict_strict", "read_checkpoint", "read_state_dict",
           "unwrap_state_dict"]

_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net")
_MAX_LISTED = 12
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not match the model it is loaded into."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Reads a checkpoint file and returns its (unwrapped) state dict of tensors. A file that is not a checkpoint
    at all (an image, a text), a corrupt one, and one holding Python objects that ``weights_only`` loading refuses
    (which could run code when unpickled) each get their own message."""
    return unwrap_state_dict(read_checkpoint(path), str(path))


def read_checkpoint(path: str | Path) -> object:
    """Reads a checkpoint file as it is stored (``read_state_dict`` without the unwrapping), with the same
    messages: what self-describing formats (``ssmblocks._formats``) look at."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            raw = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # SafetensorError, UnpicklingError, EOFError, ... : all mean "unreadable"
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        with path.open("rb") as file:
            head = file.read(9)
        # torch.save writes a zip (PK..) or, before torch 1.6, a pickle (protocol byte 0x80); safetensors starts with
        # the 8-byte length of its JSON header, whose first character is '{'
        known = head.startswith((b"PK\x03\x04", b"\x80")) or head[8:9] == b"{"
        if refused:
            message = (f"cannot read checkpoint {path}: it holds Python objects besides tensors "
                       f"({refused.group(1).rstrip('.')}), which are not unpickled because unpickling them can run "
                       f"code; save the state dict's tensors alone")
        elif not known:
            message = (f"{path} is not a checkpoint: the file is corrupt or not a safetensors/PyTorch checkpoint (it "
                       f"starts with neither format's header)")
        else:
            message = (f"cannot read checkpoint {path}: the file is corrupt or not a safetensors/PyTorch checkpoint "
                       f"({type(err).__name__}: {str(err).split('. ')[0]})")
        raise CheckpointError(message) from err
    return raw


def unwrap_state_dict(obj: object, origin: str = "checkpoint") -> dict[str, Tensor]:
    """Unwraps BasicSR-style containers and strips a shared ``module.`` prefix."""
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        key = next((k for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise CheckpointError(f"{origin} holds no state dict: top-level keys {sorted(map(str, obj))[:10]}")
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{origin} holds no tensors")
    state = dict(obj)
    for key, tensor in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{origin}: the state dict has a key that is not a string ({key!r}); a checkpoint "
                                  f"maps parameter names to tensors")
        problem = _tensor_problem(tensor)
        if problem:
            raise CheckpointError(f"{origin}: tensor {key!r} {problem}; the file is refused")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _tensor_problem(tensor: Tensor) -> str:
    """Why ``tensor`` cannot be a weight read from a file ('' if it can)."""
    if tensor.is_meta:
        return "is a meta tensor (it holds no data)"
    if tensor.layout != torch.strided:
        return f"is a {tensor.layout} tensor (weights are dense)"
    if tensor.is_quantized:
        return "is quantized"
    if tensor.is_complex():
        return f"is complex ({tensor.dtype})"
    if tensor.numel() == 0:
        return ""
    if any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride(), strict=True)):
        return (f"has a zero stride: {tensor.numel():,} elements of shape {tuple(tensor.shape)} repeat one stored "
                f"value (a file of a few bytes would build a model of that size)")
    last = tensor.storage_offset() + sum((size - 1) * abs(stride)
                                         for size, stride in zip(tensor.shape, tensor.stride(), strict=True))
    if (last + 1) * tensor.element_size() > tensor.untyped_storage().nbytes():
        return (f"claims {(last + 1) * tensor.element_size():,} bytes of data but its storage holds "
                f"{tensor.untyped_storage().nbytes():,}")
    return ""


def _dtype_kind(tensor: Tensor) -> str:
    return "floating point" if tensor.is_floating_point() else "bool" if tensor.dtype == torch.bool else "integer"


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor], origin: str = "checkpoint",
                          assign: bool = False) -> None:
    """Loads ``state_dict`` into ``model`` only if every key and shape matches; else raises CheckpointError.
    ``assign`` takes the tensors themselves (for a model built on the meta device)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
                  if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    mismatched += [f"{k} is {_dtype_kind(state_dict[k])} ({state_dict[k].dtype}) where the model's is "
                   f"{_dtype_kind(v)} ({v.dtype})" for k, v in expected.items()
                   if k in state_dict and _dtype_kind(state_dict[k]) != _dtype_kind(v)]
    if missing or unexpected or mismatched:
        parts = [f"{origin} does not match {type(model).__name__}:"]
        if missing:
            parts.append(f"missing {len(missing)} keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_listing(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape or dtype mismatches: {_listing(mismatched)}")
        raise CheckpointError("\n  ".join(parts))
    if assign:
        # The file's tensors become the parameters, in the model's dtypes and as fresh allocations: a tensor viewed
        # into the file's buffer can sit at any byte offset, and the CPU kernels pick their vector paths by
        # alignment, so an unaligned weight gives last-bit different outputs from the same model built normally.
        state_dict = {k: v.to(expected[k].dtype, memory_format=torch.contiguous_format, copy=True)
                      for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=assign)
