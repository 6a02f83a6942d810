"""The installed package: imports with no extras, and the README's first command (the demo) runs."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_without_optional_extras():
    code = "import sys, ssmblocks; print(sorted(m for m in ('torchvision', 'mamba_ssm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_m_ssmblocks_runs_the_demo(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ssmblocks", "demo", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, check=True).stdout
    assert "scan backend on this CPU: native" in out
    assert "PSNR 27.20 dB" in out and (tmp_path / "demo" / "comparison.png").is_file()
