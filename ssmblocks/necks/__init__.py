"""What sits between feature extraction and the head: upsamplers (more to come: flow, alignment, propagation)."""

from ssmblocks.necks.upsample import PixelShuffleDirect, PixelShuffleUpsample

__all__ = ["PixelShuffleDirect", "PixelShuffleUpsample"]
