"""A researcher's own model through the whole library: registered in a module of their own, saved with
save_for_hub, loaded back, and used from the ``ssmblocks`` command with ``--import``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ssmblocks

MODULE = textwrap.dedent('''
    import torch
    from torch import nn
    import ssmblocks
    from ssmblocks.blocks import ResidualGroup

    class TinyNet(nn.Module):
        def __init__(self, width, depth):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 3, padding=1)
            self.body = ResidualGroup(width, depth, d_state=4)
            self.head = nn.Conv2d(width, 3, 3, padding=1)
            self.contract = ssmblocks.ModelContract(scale=1)

        def forward(self, x):
            return x + self.head(self.body(self.stem(x)))

    @ssmblocks.registry.register_model
    def tiny_researcher_net(width=8, depth=1):
        return TinyNet(width, depth)
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The module on sys.path (and PYTHONPATH, for the command), imported here once."""
    (tmp_path / "my_nets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    if "tiny_researcher_net" not in ssmblocks.list_models():
        import my_nets  # noqa: F401
    return tmp_path


ROOT = Path(__file__).resolve().parents[1]


def _run(*args):
    """The command in a fresh interpreter, from the repository's root (so this checkout's package is the one run)."""
    return subprocess.run([sys.executable, "-m", "ssmblocks", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def test_a_registered_custom_model_records_its_defaults_and_saves_for_the_hub(plugin):
    model = ssmblocks.create_model("tiny_researcher_net", depth=2)
    assert model.model_args == {"width": 8, "depth": 2}
    folder = ssmblocks.save_for_hub(model, plugin / "hub")
    assert json.loads((folder / "config.json").read_text())["model_args"] == {"width": 8, "depth": 2}
    card = (folder / "README.md").read_text()
    assert "import my_nets" in card and "ssmblocks --import my_nets" in card
    loaded = ssmblocks.create_model(f"local-dir:{folder}").eval()
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_save_for_hub_of_a_plain_module_says_how_to_make_it_savable(tmp_path):
    with pytest.raises(ValueError, match=r"register_model def my_net.*records_hparams.*default_architecture"):
        ssmblocks.save_for_hub(torch.nn.Conv2d(3, 3, 3), tmp_path / "hub")


def test_the_command_uses_a_custom_model_with_import(plugin):
    folder = ssmblocks.save_for_hub(ssmblocks.create_model("tiny_researcher_net"), plugin / "hub")
    image = plugin / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((16, 20, 3)) * 255).astype(np.uint8)).save(image)
    info = _run("--import", "my_nets", "info", "tiny_researcher_net", "--no-flops")
    assert info.returncode == 0 and "tiny_researcher_net" in info.stdout, info.stderr
    done = _run("restore", str(image), "-o", str(plugin / "out"), "--model", f"local-dir:{folder}", "--import",
                "my_nets")
    assert done.returncode == 0, done.stderr
    assert Image.open(plugin / "out" / "photo.png").size == (20, 16)
    missing = _run("restore", str(image), "-o", str(plugin / "out2"), "--model", f"local-dir:{folder}")
    assert missing.returncode == 1 and "--import MODULE" in missing.stderr and len(missing.stderr.splitlines()) == 1
