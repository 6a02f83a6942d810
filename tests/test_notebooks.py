"""The example notebooks (examples/*.ipynb): stored without outputs, each one a page of the documentation, and
runnable from a plain clone (no file outside the repository).

They run once in CI, when the documentation site is built (.ci/run: ``mkdocs build --strict``, offline):
mkdocs-jupyter executes each notebook top to bottom and fails the build on the first cell that raises. A user runs
them from a clone as they are: the official DVMSR files are the bundled copy or downloaded (``pretrained=True``,
the release URLs). CI points them at local copies with SSMBLOCKS_DVMSR_WEIGHTS (a folder holding team07_DVMSR.pth
and DVMSR.pth).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def _code(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path):
    code = _code(path)
    assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code), \
        "store notebooks without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_reads_nothing_outside_the_repository(path: Path):
    """A clone has no ../shared: data comes from the package, a download, or a folder an environment variable
    names."""
    source = "".join("".join(cell["source"]) for cell in _code(path))
    assert "shared/" not in source and "../.." not in source


def test_every_notebook_is_a_page_of_the_docs():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(entry) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        items = entry.values() if isinstance(entry, dict) else entry
        return [page for item in items for page in pages(item)]

    assert {f"examples/{p.name}" for p in NOTEBOOKS} <= set(pages(config["nav"]))
