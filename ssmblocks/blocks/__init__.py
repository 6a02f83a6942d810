"""nn.Modules with parameters: SSM mixers that take a scan order, small layers, the named blocks of every paper, and
the groups that stack them.

Every block constructor takes ``dim`` then keyword-only options and ``device=None, dtype=None`` factory arguments;
groups take a block class with a ``Schedule`` of scan orders or a block factory. Layouts (docs/architecture.md):
token blocks take channels-last tokens (B, H, W, C), clip blocks (B, T, H, W, C), groups feature maps (B, C, H, W);
docs/blocks.md lists every block with its layout.
"""

from ssmblocks.blocks.assm import ASSM, PromptedSelectiveScan
from ssmblocks.blocks.attentive_layer import ASSB, AttentiveLayer
from ssmblocks.blocks.biattn import BiAttn
from ssmblocks.blocks.cab import CAB, CAB_VARIANTS, ChannelAttention
from ssmblocks.blocks.clip_blocks import DAMB, S2TMB, T2SMB
from ssmblocks.blocks.conv_ffn import ConvFFN, SpatialGateFFN
from ssmblocks.blocks.cross_mamba import CrossMamba2
from ssmblocks.blocks.cssb import CSSB
from ssmblocks.blocks.eamamba_block import EAMambaBlock, SimpleGateFFN
from ssmblocks.blocks.groups import BLOCK_LAYOUTS, BlockSequence, ResidualGroup
from ssmblocks.blocks.local_ss2d import LocalSS2D
from ssmblocks.blocks.mair_block import MaIRBlock, MaIRMixer
from ssmblocks.blocks.mamba import Mamba
from ssmblocks.blocks.mamba2 import Mamba2
from ssmblocks.blocks.mhssm import MHSSM
from ssmblocks.blocks.mlp import GatedMLP
from ssmblocks.blocks.path_merge import BiAttnMerge, PathMerge, pixel_means, pixel_weights
from ssmblocks.blocks.resblock import ConvResidualBlocks, ResidualBlockNoBN
from ssmblocks.blocks.rlmb import RLMB
from ssmblocks.blocks.rmsnorm import RMSNormGated
from ssmblocks.blocks.s2t_mamba import S2TMamba, t2s_mamba
from ssmblocks.blocks.ss2d import SS2D
from ssmblocks.blocks.ssa import SSA
from ssmblocks.blocks.tgfn import TGFN
from ssmblocks.blocks.vimm import ViMM
from ssmblocks.blocks.vss_block import VSSBlock
from ssmblocks.blocks.window_attention import WindowAttention, relative_position_index, shifted_window_mask
from ssmblocks.blocks.windowed_mamba2 import Mamba2Block, WindowedMamba2Layer

__all__ = [
    "ASSB",
    "ASSM",
    "BLOCK_LAYOUTS",
    "CAB",
    "CAB_VARIANTS",
    "CSSB",
    "DAMB",
    "MHSSM",
    "RLMB",
    "S2TMB",
    "SS2D",
    "SSA",
    "T2SMB",
    "TGFN",
    "AttentiveLayer",
    "BiAttn",
    "BiAttnMerge",
    "BlockSequence",
    "ChannelAttention",
    "ConvFFN",
    "ConvResidualBlocks",
    "CrossMamba2",
    "EAMambaBlock",
    "GatedMLP",
    "LocalSS2D",
    "MaIRBlock",
    "MaIRMixer",
    "Mamba",
    "Mamba2",
    "Mamba2Block",
    "PathMerge",
    "PromptedSelectiveScan",
    "RMSNormGated",
    "ResidualBlockNoBN",
    "ResidualGroup",
    "S2TMamba",
    "SimpleGateFFN",
    "SpatialGateFFN",
    "VSSBlock",
    "ViMM",
    "WindowAttention",
    "WindowedMamba2Layer",
    "pixel_means",
    "pixel_weights",
    "relative_position_index",
    "shifted_window_mask",
    "t2s_mamba",
]
