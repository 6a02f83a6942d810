"""What sits between a body and its output, one module per kind of piece:

- ``upsample``: pixel-shuffle heads (SwinIR / MambaIR);
- ``optical_flow``: SpyNet and the flows between neighbouring frames;
- ``alignment``: flow-guided deformable alignment (BasicVSR++ / MedVSR);
- ``cross_mamba_alignment``: deformable cross-mamba alignment (VSRM's DCA);
- ``propagation``: recurrent bidirectional second-order propagation;
- ``fusion``: position-aligned cross-scale fusion (MambaCSR).
"""

from ssmblocks.necks.alignment import SecondOrderDeformableAlignment
from ssmblocks.necks.cross_mamba_alignment import DeformableCrossMambaAlignment
from ssmblocks.necks.fusion import CrossScaleFusion
from ssmblocks.necks.optical_flow import MIN_FRAME_SIZE, SPYNET_SINTEL, SpyNet, neighbour_flows, spynet_sintel
from ssmblocks.necks.propagation import BRANCHES, second_order_propagation
from ssmblocks.necks.upsample import PixelShuffleDirect, PixelShuffleUpsample

__all__ = [
    "BRANCHES",
    "MIN_FRAME_SIZE",
    "SPYNET_SINTEL",
    "CrossScaleFusion",
    "DeformableCrossMambaAlignment",
    "PixelShuffleDirect",
    "PixelShuffleUpsample",
    "SecondOrderDeformableAlignment",
    "SpyNet",
    "neighbour_flows",
    "second_order_propagation",
    "spynet_sintel",
]
