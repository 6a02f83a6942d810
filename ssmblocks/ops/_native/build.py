"""Compiles the native CPU kernels on first use and caches the shared library.

The kernels (every ``*.cpp`` here: the selective scan and path gather, the deformable im2col; shared ``*.h``) need
no torch headers, so one plain ``c++`` call builds them into one library in a few seconds. The library lands in
``$SSMBLOCKS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ssmblocks`` or ``~/.cache/ssmblocks``), under a name that
hashes the sources, the compiler, the flags and the CPU (``-march=native`` code must not run on another CPU).
Concurrent first uses are safe: each compiles to a temporary file and renames it into place.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

_HERE = Path(__file__).parent
SOURCES = sorted(_HERE.glob("*.cpp"))
HEADERS = sorted(_HERE.glob("*.h"))
BASE_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-ffp-contract=fast", "-fno-math-errno"]
# Tried in order: tuned for this CPU first, then portable.
ARCH_FLAGS = (["-march=native"], [])


class BuildError(RuntimeError):
    """The native kernel could not be compiled; the message carries the compiler output."""


def cache_dir() -> Path:
    root = os.environ.get("SSMBLOCKS_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ssmblocks"


def find_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
        model = next((line for line in text.splitlines() if line.startswith("model name")), "")
        return model + flags
    except OSError:
        return platform.processor() + platform.machine()


def _library_path(compiler: str, arch: list[str]) -> Path:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256()
    sources = [path.name.encode() + path.read_bytes() for path in SOURCES + HEADERS]
    for part in (*sources, compiler.encode(), version.encode(), " ".join(BASE_FLAGS + arch).encode(),
                 _cpu_signature().encode(), platform.machine().encode()):
        key.update(part)
    return cache_dir() / f"native_{key.hexdigest()[:16]}.so"


def build() -> Path:
    """Returns the path of the compiled library, compiling it if it is not cached. Raises BuildError."""
    compiler = find_compiler()
    if compiler is None:
        raise BuildError("no C++ compiler found (looked for $CXX, c++, g++, clang++)")
    errors = []
    for arch in ARCH_FLAGS:
        target = _library_path(compiler, arch)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        cmd = [compiler, *BASE_FLAGS, *arch, *map(str, SOURCES), "-o", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode == 0:
            os.replace(tmp, target)
            return target
        os.unlink(tmp)
        errors.append(f"$ {' '.join(cmd)}\n{result.stderr.strip()}")
    raise BuildError("compiling the native kernels failed:\n" + "\n".join(errors))
