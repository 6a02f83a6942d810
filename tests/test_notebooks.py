"""The example notebooks (examples/*.ipynb) run top to bottom without an error, on CPU, from examples/.

They are stored without outputs; each is executed here with nbclient in a fresh ``python3`` kernel, which imports
this checkout's ``ssmblocks``. The notebooks that use the official DVMSR release find it through
SSMBLOCKS_DVMSR_WEIGHTS, by default ../shared/weights/dvmsr beside the checkout (not part of the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
TIMEOUT_S = 300  # per cell; all notebooks together take about two minutes on two CPU cores


def test_the_examples_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_scan_orders", "03_compose",
                                           "04_official_checkpoints", "05_video"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_is_stored_without_outputs(path: Path, monkeypatch: pytest.MonkeyPatch):
    # the kernel imports this checkout's ssmblocks, installed or not
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "store notebooks without outputs"
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()  # raises CellExecutionError (with the cell and its traceback) on the first failing cell
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors
    assert all(cell.execution_count is not None for cell in code)
