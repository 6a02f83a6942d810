"""The installed package: imports with no extras, the README's first command (the demo) runs, and the docs name
only commands and extras that exist and print what the code prints."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import ssmblocks
from ssmblocks.cli import _parser

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_core_imports_without_optional_extras():
    code = "import sys, ssmblocks; print(sorted(m for m in ('torchvision', 'mamba_ssm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_m_ssmblocks_runs_the_demo(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ssmblocks", "demo", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, check=True).stdout
    assert "scan backend on this CPU: native" in out
    assert "PSNR 27.20 dB" in out and (tmp_path / "demo" / "comparison.png").is_file()


def _code(text: str) -> str:
    """The fenced code blocks and inline code spans of a markdown text."""
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    return "\n".join(fenced + inline)


def _documented_commands() -> dict[str, set[str]]:
    """{command: files} for every `ssmblocks <command>` written as code in the README and docs/."""
    found: dict[str, set[str]] = {}
    for path in DOCS:
        code = re.sub(r"#.*", "", _code(path.read_text()))             # not the comments in examples
        for command in re.findall(r"(?<![\w./-])ssmblocks[ \t]+([a-z][\w-]*)", code):
            found.setdefault(command, set()).add(path.name)
    return found


def test_documented_commands_exist():
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    documented = _documented_commands()
    assert {"restore", "eval", "demo", "export", "train"} <= set(documented)     # the scan finds them
    assert {name: files for name, files in documented.items() if name not in commands} == {}


def _extras() -> set[str]:
    """The extras [project.optional-dependencies] of pyproject.toml declares."""
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, flags=re.MULTILINE))


def test_documented_extras_exist():
    """`".[x]"` and `ssmblocks[x]` in the README, docs/ and the library's own messages name declared extras."""
    sources = [*DOCS, *sorted((REPO / "ssmblocks").rglob("*.py"))]
    named = {(extra, path.name) for path in sources
             for group in re.findall(r"\"\.\[([\w,-]+)\]\"|ssmblocks\[([\w,-]+)\]", path.read_text())
             for extra in "".join(group).split(",")}
    assert {"video", "notebooks", "examples", "gdrive"} <= {extra for extra, _ in named}
    assert sorted(item for item in named if item[0] not in _extras()) == []


def test_the_readme_lists_every_extra():
    readme = (REPO / "README.md").read_text()
    assert sorted(extra for extra in _extras() if f'".[{extra}]"' not in readme) == []


def test_the_notebooks_extra_installs_what_runs_a_notebook():
    section = (REPO / "pyproject.toml").read_text().split("\nnotebooks = ", 1)[1].split("\n", 1)[0]
    assert '"jupyter"' in section


def test_documented_python_examples_print_what_the_code_prints():
    """Every `>>> expression` line in docs/ followed by an output line is evaluated and compared."""
    examples = [(path.name, expression, expected) for path in DOCS
                for expression, expected in re.findall(r"^>>> (.+?)(?:\s+#.*)?\n([^>`\n].*)$", path.read_text(),
                                                       flags=re.MULTILINE)]
    assert any("profile" in expression for _, expression, _ in examples)
    for name, expression, expected in examples:
        assert str(eval(expression, {"ssmblocks": ssmblocks})) == expected, (name, expression)
