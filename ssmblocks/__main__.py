"""``python -m ssmblocks``: the demo (``ssmblocks demo``): the bundled sample restored offline by the bundled
default model, with PSNR/SSIM against the original; ``python -m ssmblocks --out DIR`` chooses the folder."""

from __future__ import annotations

import sys

from ssmblocks.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
