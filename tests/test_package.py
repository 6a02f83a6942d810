"""The installed package: imports with no extras, and the README's first command (the demo) runs."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_without_optional_extras():
    code = "import sys, ssmblocks; print(sorted(m for m in ('torchvision', 'mamba_ssm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_demo_reports_backend_speed_and_agreement():
    out = subprocess.run([sys.executable, "-m", "ssmblocks", "--size", "16", "--channels", "16", "--repeats", "1"],
                         capture_output=True, text=True, check=True).stdout
    assert "backend: native" in out
    assert "speed-up:" in out
    diff = float(out.split("max |out - reference|:")[1].split()[0])
    assert diff < 1e-4
