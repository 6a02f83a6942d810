"""nn.Modules with parameters: SSM mixers that take a scan order, small layers, the named blocks and their groups.

Every block constructor takes ``dim`` then keyword-only options and ``device=None, dtype=None``; groups take a block
class with a ``Schedule`` of scan orders or a block factory (see docs/blocks.md).
"""

from ssmblocks.blocks.cab import CAB, CAB_VARIANTS, ChannelAttention
from ssmblocks.blocks.groups import BlockSequence, ResidualGroup
from ssmblocks.blocks.mamba import Mamba
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.vimm import ViMM, ViMMGroup
from ssmblocks.blocks.vss_block import VSSBlock

__all__ = ["CAB", "CAB_VARIANTS", "SS2D", "BlockSequence", "ChannelAttention", "Mamba", "ResidualGroup", "VSSBlock",
           "ViMM", "ViMMGroup"]
