"""The example notebooks (examples/*.ipynb): the expected set, stored without outputs, and executed by the docs.

They run once in CI, when the documentation site is built (.ci/run: ``mkdocs build --strict``): mkdocs-jupyter
executes each notebook top to bottom in a fresh ``python3`` kernel, renders its outputs into the site, and with
``allow_errors: false`` fails the build on the first cell that raises (with the cell and its traceback). Its cache
is off: it is keyed on the notebook's own bytes, so a cached page would not see a library change that breaks the
notebook. Locally: ``mkdocs build --strict`` (the notebooks that use the official DVMSR release find it through
SSMBLOCKS_DVMSR_WEIGHTS, by default ../shared/weights/dvmsr beside the checkout). They used to be executed here as
well, a second time in every CI run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))


def test_the_examples_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_scan_orders", "03_compose",
                                           "04_official_checkpoints", "05_video", "06_multihead_scan"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path):
    code = [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code), \
        "store notebooks without outputs"


def test_the_docs_build_executes_every_notebook_and_fails_on_an_error():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    plugin = next(p["mkdocs-jupyter"] for p in config["plugins"] if isinstance(p, dict) and "mkdocs-jupyter" in p)
    assert plugin["execute"] is True and plugin["allow_errors"] is False and plugin["cache"] is False
    assert config["strict"] is True
    pages = [page for section in config["nav"] if isinstance(section, dict)
             for entry in section.values() if isinstance(entry, list) for item in entry for page in item.values()]
    assert [f"examples/{p.name}" for p in NOTEBOOKS] == [p for p in pages if p.endswith(".ipynb")]
