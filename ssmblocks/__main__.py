"""``python -m ssmblocks``: the ``ssmblocks`` command (``python -m ssmblocks demo`` restores the bundled sample)."""

from __future__ import annotations

import sys

from ssmblocks.cli import main

if __name__ == "__main__":
    sys.exit(main())
