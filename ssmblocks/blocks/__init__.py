"""nn.Modules with parameters: SSM mixers that take a scan order, small layers, and the named blocks."""

from ssmblocks.blocks.cab import CAB, CAB_VARIANTS, ChannelAttention
from ssmblocks.blocks.mamba import Mamba
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.vimm import ViMM, ViMMGroup
from ssmblocks.blocks.vss_block import ResidualGroup, VSSBlock

__all__ = ["CAB", "CAB_VARIANTS", "SS2D", "ChannelAttention", "Mamba", "ResidualGroup", "VSSBlock", "ViMM", "ViMMGroup"]
