"""Shared fixtures and hooks of tests/: the ``needs_golden`` skips and the parity report (tests/_golden.py), a
loopback HTTP server, the hand-built Hugging Face cache, a stand-in for gdown. (The no-network guard is the
repository's conftest.py.)"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants as hf_constants

from tests import _golden

# ---- golden data: skips and the report ---------------------------------------------------------------------------
_GOLDEN_STEMS = pytest.StashKey[dict]()   # nodeid -> the golden cases the test checks


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def pytest_report_header(config) -> list[str]:
    bundled = len(_golden.golden_stems_in(_golden.BUNDLED))
    if _golden.full_set_present():
        full = f"the full set {_golden.GOLDEN} ({len(_golden.golden_stems_in(_golden.GOLDEN))} cases)"
    else:
        full = f"the full set is absent ({_golden.GOLDEN}; {_golden.GOLDEN_DIR_ENV} names another folder)"
    return [f"golden parity data: {full}, {bundled} cases bundled in {_golden.BUNDLED}"]


def pytest_collection_modifyitems(config, items) -> None:
    stems = config.stash.setdefault(_GOLDEN_STEMS, {})
    for item in items:
        marks = list(item.iter_markers("golden"))
        if not marks:
            continue
        stems[item.nodeid] = {stem for mark in marks for stem in mark.args}
        for mark in marks:
            reason = _golden.absent_reason(mark)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
                break


def pytest_report_collectionfinish(config, start_path, items) -> list[str]:
    stems = config.stash.get(_GOLDEN_STEMS, {})
    selected = {item.nodeid for item in items}
    wanted = set().union(*(s for node, s in stems.items() if node in selected)) if stems else set()
    if not wanted:
        return []
    absent = sorted(s for s in wanted if not _golden.has_golden(s))
    line = f"golden parity: the selected tests check {_cases(len(wanted))}, {len(wanted) - len(absent)} available"
    return [line + (f"; absent (their tests skip): {', '.join(absent)}" if absent else "")]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    stems = config.stash.get(_GOLDEN_STEMS, {})
    reported = {r.nodeid for outcome in ("passed", "failed", "skipped", "error")
                for r in terminalreporter.stats.get(outcome, [])}
    passed = {r.nodeid for r in terminalreporter.stats.get("passed", []) if r.when == "call"}
    ran = set().union(*(s for node, s in stems.items() if node in passed)) if stems else set()
    if any(stems.get(node) for node in reported):       # tests that name golden cases were run
        names = "".join(f", {stem}" for stem in sorted(ran)).replace(", ", ": ", 1)
        terminalreporter.write_line(f"golden parity: {_cases(len(ran))} checked by passing tests{names}")


# ---- a Hugging Face cache built by hand (no network) --------------------------------------------------------------
def _hand_built_cache(cache: Path, repo_id: str, folder: Path, files: list[str]) -> None:
    """The layout huggingface_hub itself writes: blobs, refs/main -> commit, snapshots/<commit>/file -> blob."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in files:
        data = (folder / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture
def hand_built_cache() -> Callable[[Path, str, Path, list[str]], None]:
    """``build(cache, repo_id, folder, files)``: puts ``files`` of ``folder`` into a Hugging Face cache at ``cache``
    as huggingface_hub lays one out, so ``HF_HUB_OFFLINE`` loads find them."""
    return _hand_built_cache


# ---- a loopback HTTP server --------------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path, monkeypatch):
    """``(root, base_url)``: a loopback HTTP server over the temporary folder ``root`` (downloads allowed:
    HF_HUB_OFFLINE off)."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# ---- gdown up to the network ---------------------------------------------------------------------------------------
class _FakeGdown:
    """gdown's API (>= 5.1) up to the network: ``download_folder(..., skip_download=True)`` lists the folder as
    (id, path, local_path) entries; ``download(id=, output=)`` writes the file the id names."""

    def __init__(self, folder_id: str, files: dict[str, tuple[str, object]]):
        self.folder_id, self.files, self.calls = folder_id, files, []      # path in folder -> (id, what to save)

    def download_folder(self, id, output, quiet, skip_download):
        self.calls.append(("list", id, skip_download))
        assert id == self.folder_id and skip_download and not list(Path(output).iterdir())
        return [types.SimpleNamespace(id=file_id, path=path, local_path=str(Path(output) / path))
                for path, (file_id, _) in self.files.items()]

    def download(self, id, output, quiet):
        self.calls.append(("download", id))
        content = next(obj for file_id, obj in self.files.values() if file_id == id)
        torch.save(content, output)
        return output


@pytest.fixture
def fake_gdown() -> type:
    """The class ``FakeGdown(folder_id, {path in folder: (file id, object to torch.save)})``: gdown's API up to the
    network, recording its calls in ``.calls``."""
    return _FakeGdown
