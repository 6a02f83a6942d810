"""The two test tiers. The default run (``python -m pytest -q``) stays quick: the costly generic sweeps (torch.compile,
torch.export, ONNX, the full-size models) run there on one representative model of each kind; every other model
of a sweep is marked ``slow`` (``python -m pytest -m slow``; .ci/run runs it after the default run).
"""

from __future__ import annotations

import pytest

# One tiny model of each kind the library has: an image SR network, a U-Net (downsampling levels, padding to a
# multiple), a video network (recurrent over frames, flow alignment).
REPRESENTATIVES = {"image SR": "test_dvmsr", "U-Net": "test_mambairunet", "video": "test_medvsr"}


def sweep(names: list[str], keep: set[str] | None = None) -> list:
    """``names`` as ``pytest.param``s for a costly sweep: those in ``keep`` (by default the representatives) run in
    the default tier, the others are marked ``slow``."""
    keep = set(REPRESENTATIVES.values()) if keep is None else keep
    return [pytest.param(name, id=name, marks=() if name in keep else pytest.mark.slow) for name in names]
