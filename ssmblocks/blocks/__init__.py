"""nn.Modules with parameters: SSM mixers that take a scan order, small layers, and the named blocks."""

from ssmblocks.blocks.cab import CAB, CAB_VARIANTS, ChannelAttention
from ssmblocks.blocks.cross_mamba import CrossMamba2
from ssmblocks.blocks.cssb import CSSB
from ssmblocks.blocks.issr import Mamba2Block, WindowedMamba2Layer
from ssmblocks.blocks.mamba2 import Mamba2
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.blocks.resblock import ConvResidualBlocks, ResidualBlockNoBN
from ssmblocks.blocks.rmsnorm import RMSNormGated
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.vss_block import ResidualGroup, VSSBlock

__all__ = [
    "CAB",
    "CAB_VARIANTS",
    "CSSB",
    "SS2D",
    "ChannelAttention",
    "ConvResidualBlocks",
    "CrossMamba2",
    "GatedMLP",
    "Mamba2",
    "Mamba2Block",
    "RMSNormGated",
    "ResidualBlockNoBN",
    "ResidualGroup",
    "VSSBlock",
    "WindowedMamba2Layer",
]
