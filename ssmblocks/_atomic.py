"""Files and folders appear whole or not at all: write under a temporary name beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_dir", "atomic_path"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yields a temporary path beside ``path``; when the block ends without an exception the file written there
    becomes ``path`` (with the permissions a plain ``open`` would give it); otherwise it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yields an empty staging folder; when the block ends without an exception, the files written there appear in
    ``path`` whole. A folder that does not exist yet appears at once: the staging folder is renamed to ``path`` (with
    the permissions ``mkdir`` would give it). Into an existing folder each file is moved by a rename, replacing a
    file of the same name, so other files there (a training log) stay and no file is ever half-written. On an
    exception the staging folder is removed and ``path`` is left as it was."""
    path = Path(path)
    existing = path.is_dir()
    parent = path if existing else path.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}."))
    try:
        yield staging
        if existing:
            for item in staging.iterdir():
                os.replace(item, path / item.name)
        else:
            os.chmod(staging, 0o777 & ~_umask())   # mkdtemp makes it 0700
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
