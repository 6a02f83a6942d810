"""The golden data a clone has (tests/data/golden, see its README.md) and how tests/_golden.py finds cases: the
bundled copies are the official cases byte for byte, every supported family with cases in the full set has one
bundled, a case absent from both folders skips naming itself, and a run without the full set (as a fresh clone)
still checks a parity case of every bundled family."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ssmblocks._builder import supported_families
from tests import _golden
from tests._golden import BUNDLED, GOLDEN, golden_meta, golden_stems_in, needs_golden

REPO = Path(__file__).resolve().parents[1]
BUNDLED_STEMS = golden_stems_in(BUNDLED)


def _families(folder: Path) -> set[str]:
    return {json.loads((folder / f"{stem}.json").read_text())["family"] for stem in golden_stems_in(folder)}


def test_there_are_bundled_cases():
    assert len(BUNDLED_STEMS) >= 4


@pytest.mark.parametrize("stem", BUNDLED_STEMS)
def test_bundled_case_is_the_official_case_byte_for_byte(stem):
    recorded = json.loads((BUNDLED / f"{stem}.json").read_text())["files"]
    for suffix in ("pth", "safetensors"):
        path = BUNDLED / f"{stem}.{suffix}"
        assert path.is_file(), f"{path.name} is missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[f"{suffix}_sha256"], f"{path.name} differs"


@needs_golden
def test_every_supported_family_in_the_full_set_has_a_bundled_case():
    wanted = _families(GOLDEN) & set(supported_families())
    missing = wanted - _families(BUNDLED)
    assert not missing, f"copy one small case of {', '.join(sorted(missing))} into {BUNDLED} (see its README.md)"


def test_lookup_falls_back_to_the_bundled_case_and_names_an_absent_one(tmp_path, monkeypatch):
    full = tmp_path / "full"
    monkeypatch.setattr(_golden, "GOLDEN", full)              # no full set, as in a fresh clone
    stem = BUNDLED_STEMS[0]
    assert _golden.golden_file(stem, "json") == BUNDLED / f"{stem}.json"
    assert golden_meta(stem)["stem"] == stem
    assert _golden.absent_reason(needs_golden(stem).mark) is None
    reason = _golden.absent_reason(needs_golden(stem, "no_such_case_tiny").mark)
    assert reason is not None and "no_such_case_tiny" in reason and stem not in reason
    assert "full golden set" in _golden.absent_reason(needs_golden.mark)   # bare: needs the full set
    with pytest.raises(FileNotFoundError, match="golden case 'no_such_case_tiny' is neither in"):
        _golden.golden_file("no_such_case_tiny", "pth")
    full.mkdir()
    (full / f"{stem}.json").write_text(json.dumps({"stem": "the full set's copy"}))
    (full / f"{stem}.safetensors").write_bytes(b"")
    assert golden_meta(stem)["stem"] == "the full set's copy"     # the full set first


@pytest.mark.slow
def test_a_clone_without_the_full_set_runs_a_parity_case_of_every_bundled_family(tmp_path):
    """The parity tests of the families in a fresh pytest, with SSMBLOCKS_GOLDEN_DIR at a missing folder: every
    bundled case is checked by a passing test, and the other cases skip naming themselves."""
    env = {**os.environ, _golden.GOLDEN_DIR_ENV: str(tmp_path / "no-full-set")}
    modules = ["tests/test_mambair_parity.py", "tests/test_mambacsr.py", "tests/test_dvmsr.py", "tests/test_medvsr.py",
               "tests/test_eamamba.py", "tests/test_mair.py", "tests/test_mambairv2.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
                          "-k", "golden or official_checkpoint", *modules],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"the full set is absent ({tmp_path / 'no-full-set'}" in run.stdout                  # the header
    assert f"cases, {len(BUNDLED_STEMS)} available; absent (their tests skip): " in run.stdout   # after collection
    checked = re.search(r"golden parity: \d+ cases? checked by passing tests: (.*)", run.stdout)
    assert checked is not None, run.stdout[-4000:]
    assert set(checked.group(1).split(", ")) == set(BUNDLED_STEMS)
    assert "golden case mambair_sr_x2_tiny absent" in run.stdout
