"""What sits between feature extraction and the head: upsamplers, optical flow (SpyNet), flow-guided deformable
alignment, recurrent second-order propagation, and cross-scale fusion."""

from ssmblocks.necks.alignment import SecondOrderDeformableAlignment
from ssmblocks.necks.cross_scale import CrossScaleFusion
from ssmblocks.necks.propagation import BRANCHES, second_order_propagation
from ssmblocks.necks.spynet import MIN_FRAME_SIZE, SPYNET_SINTEL, SpyNet, neighbour_flows, spynet_sintel
from ssmblocks.necks.upsample import PixelShuffleDirect, PixelShuffleUpsample

__all__ = [
    "BRANCHES",
    "MIN_FRAME_SIZE",
    "SPYNET_SINTEL",
    "CrossScaleFusion",
    "PixelShuffleDirect",
    "PixelShuffleUpsample",
    "SecondOrderDeformableAlignment",
    "SpyNet",
    "neighbour_flows",
    "second_order_propagation",
    "spynet_sintel",
]
