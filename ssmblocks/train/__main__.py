"""``python -m ssmblocks.train``: see ``ssmblocks.train.cli``."""

from ssmblocks.train.cli import main

raise SystemExit(main())
