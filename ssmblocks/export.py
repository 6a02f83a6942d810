"""Exporting models: ONNX files that run in onnxruntime, and ``torch.export`` programs.

ONNX has no selective-scan operator, and an opaque custom op would not run in onnxruntime. ``export_onnx``
therefore traces the model with the library's pure-PyTorch backends (the log-depth ``parallel`` scan,
``torch.gather`` for scan orders), so the scan is decomposed into standard operators (Mul, Exp, Pad, Add,
GatherElements, ...): about log2(L) doubling steps for a path of length L. The ONNX graph is specialised to the
example's size; the parallel scan holds (batch, channels, L, state) tensors, so memory grows with the size.
Outputs match PyTorch to ~1e-6 in float32 (tests/test_export.py checks 1e-4 on every image model).

``export_program`` is ``torch.export.export`` with H and W dynamic in the range and steps the model's contract
allows.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from ssmblocks._atomic import atomic_path
from ssmblocks._contract import contract_of
from ssmblocks.ops import use_backend
from ssmblocks.ops._backends import ops_with_backends

__all__ = ["MissingExportBackendError", "export_onnx", "export_program", "portable_backends"]


class MissingExportBackendError(ImportError):
    """onnx or onnxscript (the ``export`` extra, which torch's ONNX exporter needs) is not installed."""


def _require_exporter() -> None:
    for name in ("onnx", "onnxscript"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingExportBackendError(f"exporting to ONNX needs the optional {name} package (not installed): "
                                            f"pip install 'ssmblocks[export]'") from None


# The pure-PyTorch backend each op traces with: the selective scan in its log-depth form, whose graph has
# O(log L) operations (the chunked form unrolls O(sqrt L) Python steps into the graph).
_PORTABLE = {"selective_scan": "parallel"}


@contextlib.contextmanager
def portable_backends() -> Iterator[None]:
    """Every op of the library on a pure-PyTorch backend while the context is open, in the calling thread only
    (``use_backend`` is per thread: other threads keep their backends while an export traces), for tracing to
    formats that cannot hold the library's custom ops."""
    with contextlib.ExitStack() as stack:
        for op in ops_with_backends():
            stack.enter_context(use_backend(op, _PORTABLE.get(op, "torch")))
        yield


def export_onnx(model: nn.Module, path: str | Path, example: Tensor, *, opset_version: int | None = None) -> Path:
    """Writes ``model`` as a self-contained ONNX file for inputs of ``example``'s shape and dtype.

    Args:
        model: any model of the zoo (or a network of the library's blocks); exported in eval mode.
        path: the .onnx file; written atomically (a failed export leaves no file under this name).
        example: an input (B, C, H, W) — (B, T, C, H, W) for video models — of the size to export for.
        opset_version: ONNX opset (default: the exporter's).
    Returns the path. The graph's input is named ``input`` and its output ``output``. Raises
    MissingExportBackendError without onnx / onnxscript (``pip install 'ssmblocks[export]'``).
    """
    _require_exporter()
    path = Path(path)
    was_training = model.training
    try:
        with atomic_path(path, suffix=".onnx.part") as tmp, portable_backends(), torch.no_grad():
            torch.onnx.export(model.eval(), (example,), str(tmp), dynamo=True, optimize=True, external_data=False,
                              input_names=["input"], output_names=["output"], opset_version=opset_version,
                              verbose=False)
    finally:
        model.train(was_training)
    return path


def export_program(model: nn.Module, example: Tensor, *, max_side: int = 4096) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model`` (eval mode) for inputs like ``example`` — (B, C, H, W), or (B, T, C, H, W) for
    video models (T stays static: the recurrence loops over frames in Python) — with H and W symbolic from the
    contract's minimum size (at least 2) to ``max_side``, in steps of its ``multiple_of``. The custom ops stay single
    nodes; window partitions keep their window counts symbolic (the program runs where a map has one window and
    where it has many, whatever the example had). Save with ``torch.export.save``; importing ssmblocks registers the
    ops for loading."""
    contract = contract_of(model)
    step, low = contract.multiple_of, max(contract.min_size, 2)

    def side(name: str) -> Dim:
        if step == 1:
            return Dim(name, min=low, max=max_side)
        return step * Dim(name, min=-(-low // step), max=max_side // step)

    first = 3 if contract.is_video else 2
    was_training = model.training
    try:
        return torch.export.export(model.eval(), (example,),
                                   dynamic_shapes=({first: side("height"), first + 1: side("width")},))
    finally:
        model.train(was_training)
