"""What sits between feature extraction and the head: upsamplers, cross-scale fusion (more to come: flow,
alignment, propagation)."""

from ssmblocks.necks.cross_scale import CrossScaleFusion
from ssmblocks.necks.upsample import PixelShuffleDirect, PixelShuffleUpsample

__all__ = ["CrossScaleFusion", "PixelShuffleDirect", "PixelShuffleUpsample"]
