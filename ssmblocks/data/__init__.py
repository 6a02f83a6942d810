"""Files shipped with the package: the default model's weights (DVMSR's released student, MIT — see
LICENSE-DVMSR.txt beside them) and the demo's sample image (the DVMSR repository's ``utils/test.bmp``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["bundled_file"]


def bundled_file(name: str) -> Path:
    """The path of a file shipped in ``ssmblocks/data``."""
    path = Path(str(resources.files(__name__) / name))
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not shipped in {path.parent}; reinstall ssmblocks")
    return path
