"""Compiles the native CPU kernels on first use and caches the shared library.

The kernels (every ``*.cpp`` here: the selective scan and path gather, the deformable im2col; shared ``*.h``) need
no torch headers, so one plain ``c++`` call builds them into one library in a few seconds. The library lands in
``$SSMBLOCKS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ssmblocks`` or ``~/.cache/ssmblocks``), under a name that
hashes the sources, the compiler, the flags and the CPU (``-march=native`` code must not run on another CPU).
Concurrent first uses are safe: each compiles to a temporary file and renames it into place.

The cache is not trusted because a file exists (issue 24: a truncated library made every later run die with a bus
error when it was mapped). Each build writes, after the library is fsync'd, a sidecar ``native_<key>.so.sha256``
holding the library's size and SHA-256; ``build`` returns a cached library only when it matches its sidecar, and
rebuilds it (with a warning saying what was wrong) otherwise. The library is installed with mode 0755 and the
sidecar with 0644, so other users of a shared cache can load them.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
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


def _sidecar(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _fingerprint(path: Path) -> str:
    """'<size> <sha256>' of a file."""
    data = path.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


NO_RECORD = "it has no size/hash record (written by an older version, or its build was interrupted)"


def damage(library: Path) -> str | None:
    """Why the cached ``library`` cannot be trusted (missing, no sidecar, size or content changed), or None when it
    matches the fingerprint its build recorded."""
    if not library.exists():
        return None if not _sidecar(library).exists() else "the library is missing"
    try:
        recorded = _sidecar(library).read_text().strip()
    except OSError:
        return NO_RECORD
    actual = _fingerprint(library)
    if actual != recorded:
        size, expected = actual.split()[0], recorded.split()[0]
        if size != expected:
            return f"it has {size} bytes where its build wrote {expected}: truncated or damaged"
        return "its content differs from what its build wrote: damaged"
    return None


def _write_synced(path: Path, data: bytes | None, mode: int) -> None:
    """fsyncs ``path`` (writing ``data`` first when given) and sets its ``mode``."""
    with open(path, "wb" if data is not None else "rb+") as f:
        if data is not None:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)


def _install(tmp: Path, target: Path) -> None:
    """Moves a freshly compiled library into place with its sidecar, both synced to disk and readable by all."""
    _write_synced(tmp, None, 0o755)
    record = tmp.with_name(tmp.name + ".sha256")
    _write_synced(record, (_fingerprint(tmp) + "\n").encode(), 0o644)
    os.replace(record, _sidecar(target))
    os.replace(tmp, target)
    try:  # the renames themselves
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def build() -> Path:
    """Returns the path of the compiled library, compiling it if no intact copy is cached. Raises BuildError."""
    compiler = find_compiler()
    if compiler is None:
        raise BuildError("no C++ compiler found (looked for $CXX, c++, g++, clang++); install one (e.g. "
                         "`apt install g++`) to get the fast CPU path")
    errors = []
    for arch in ARCH_FLAGS:
        target = _library_path(compiler, arch)
        problem = damage(target)
        if problem is None and target.exists():
            return target
        if problem not in (None, NO_RECORD):   # an older version's library is replaced without a word
            warnings.warn(f"ssmblocks: the cached native kernel {target} is not intact ({problem}); rebuilding it",
                          RuntimeWarning, stacklevel=3)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so.part", dir=target.parent)
            os.close(fd)
        except OSError as err:
            raise BuildError(f"cannot write the kernel cache {target.parent} ({err}); set SSMBLOCKS_CACHE_DIR to a "
                             f"writable folder") from err
        cmd = [compiler, *BASE_FLAGS, *arch, *map(str, SOURCES), "-o", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode == 0:
            _install(Path(tmp), target)
            return target
        os.unlink(tmp)
        errors.append(f"$ {' '.join(cmd)}\n{result.stderr.strip()}")
    raise BuildError(f"compiling the native kernels with {compiler} failed:\n" + "\n".join(errors))
