"""nn.Modules with parameters: SSM mixers that take a scan order, small layers, the named blocks and their groups.

Every block constructor takes ``dim`` then keyword-only options and ``device=None, dtype=None``; groups take a block
class with a ``Schedule`` of scan orders or a block factory (see docs/blocks.md).
"""

from ssmblocks.blocks.biattn import BiAttn
from ssmblocks.blocks.cab import CAB, CAB_VARIANTS, ChannelAttention
from ssmblocks.blocks.cross_mamba import CrossMamba2
from ssmblocks.blocks.cssb import CSSB
from ssmblocks.blocks.groups import BLOCK_LAYOUTS, BlockSequence, ResidualGroup
from ssmblocks.blocks.issr import Mamba2Block, WindowedMamba2Layer
from ssmblocks.blocks.local_ss2d import LocalSS2D
from ssmblocks.blocks.mamba import Mamba
from ssmblocks.blocks.mamba2 import Mamba2
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.blocks.resblock import ConvResidualBlocks, ResidualBlockNoBN
from ssmblocks.blocks.rlmb import RLMB
from ssmblocks.blocks.rmsnorm import RMSNormGated
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.vimm import ViMM
from ssmblocks.blocks.vss_block import VSSBlock

__all__ = [
    "BLOCK_LAYOUTS",
    "CAB",
    "CAB_VARIANTS",
    "CSSB",
    "RLMB",
    "SS2D",
    "BiAttn",
    "BlockSequence",
    "ChannelAttention",
    "ConvResidualBlocks",
    "CrossMamba2",
    "GatedMLP",
    "LocalSS2D",
    "Mamba",
    "Mamba2",
    "Mamba2Block",
    "RMSNormGated",
    "ResidualBlockNoBN",
    "ResidualGroup",
    "VSSBlock",
    "ViMM",
    "WindowedMamba2Layer",
]
