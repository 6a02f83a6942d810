"""Stacks of blocks: a plain sequence, and THE residual group every image family uses.

Blocks are built from a block class with a ``Schedule`` of scan orders (block i gets ``schedule[i]``) or from a
factory (block index -> module).

Facts: the residual group of MambaIR (csguoh/MambaIR ``basicsr/archs/mambair_arch.py``, ``ResidualGroup`` at 33d7b34),
of MambaCSR (renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py``, ``ResidualLocalGroup`` at f71199e) and of DVMSR
(nathan66666/DVMSR ``models/team07_DVMSR.py``, ``RMMB`` at 86663ce) all compute x + conv3x3(blocks(x)) with the blocks
under ``residual_group.blocks.{i}`` and the conv under ``conv``; MambaCSR's dual-interleaved groups give block i the
direction pair i % 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ssmblocks.blocks._keys import keyed, resolve
from ssmblocks.blocks._layout import check_layout
from ssmblocks.blocks.vss_block import VSSBlock
from ssmblocks.scan_orders import ScanOrder, Schedule

__all__ = ["BLOCK_LAYOUTS", "BlockSequence", "ResidualGroup"]

BLOCK_LAYOUTS = ("channels_last", "channels_first")


def _build(dim: int, depth: int, block: Callable[..., nn.Module] | None,
           schedule: Schedule | Sequence[ScanOrder] | None, block_factory: Callable[[int], nn.Module] | None,
           dd: dict, block_kwargs: dict) -> list[nn.Module]:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be an integer >= 0, got {depth!r}")
    if block_factory is not None:
        if block is not None or schedule is not None or block_kwargs:
            raise ValueError("block_factory builds every block itself: do not also pass block, schedule or block "
                             f"options (got block={block!r}, schedule={schedule!r}, options={sorted(block_kwargs)})")
        return [block_factory(i) for i in range(depth)]
    block = VSSBlock if block is None else block
    if schedule is None:
        return [block(dim, **block_kwargs, **dd) for _ in range(depth)]
    if "scan_order" in block_kwargs:
        raise ValueError("pass either scan_order (every block) or schedule (block i gets schedule[i]), not both")
    schedule = schedule if isinstance(schedule, Schedule) else Schedule(schedule)
    return [block(dim, scan_order=schedule[i], **block_kwargs, **dd) for i in range(depth)]


class BlockSequence(nn.Sequential):
    """``depth`` blocks run one after another, in the blocks' own layout (VSSBlock: (B, H, W, C)). Keys ``{i}.…``.

    Args:
        dim: channels C.
        depth: number of blocks.
        block: a block class (or any callable ``block(dim, *, scan_order=..., **options, device=, dtype=)``);
            default ``VSSBlock``.
        schedule: a ``Schedule`` (or a list of scan orders, cycled): block i gets ``scan_order=schedule[i]``.
        block_factory: instead of ``block``/``schedule``/options: a function block index -> module.
        device, dtype: factory arguments, passed to ``block`` when given (a factory handles them itself).
        **block_kwargs: options given to every block.
    """

    def __init__(self, dim: int, depth: int, *, block: Callable[..., nn.Module] | None = None,
                 schedule: Schedule | Sequence[ScanOrder] | None = None,
                 block_factory: Callable[[int], nn.Module] | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **block_kwargs) -> None:
        dd = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        super().__init__(*_build(dim, depth, block, schedule, block_factory, dd, block_kwargs))


class ResidualGroup(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + conv3x3(blocks(x)).

    The layout convention of the library: groups and models pass feature maps (B, C, H, W); token blocks (VSSBlock,
    RLMB, ViMM, ...) take channels-last tokens (B, H, W, C), which the group hands them as a permuted view of the map
    (no copy; with a channels-last map the conv reads them in place too).

    Args:
        dim: channels C.
        depth: number of blocks.
        block, schedule, block_factory, **block_kwargs: the blocks, as ``BlockSequence`` builds them (default
            VSSBlock, MambaIR's).
        blocks_key: the blocks' key path in the group's state dict ('residual_group.blocks', the official name of
            MambaIR / MambaCSR / DVMSR checkpoints: keys ``residual_group.blocks.{i}.…``).
        block_layout: 'channels_last' (blocks take (B, H, W, C) tokens) or 'channels_first' ((B, C, H, W) maps).
        conv_bias: bias of the 3x3 conv (key ``conv``).
        device, dtype: factory arguments for the parameters.
    """

    def __init__(self, dim: int, depth: int, *, block: Callable[..., nn.Module] | None = None,
                 schedule: Schedule | Sequence[ScanOrder] | None = None,
                 block_factory: Callable[[int], nn.Module] | None = None,
                 blocks_key: str = "residual_group.blocks", block_layout: str = "channels_last",
                 conv_bias: bool = True, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 **block_kwargs) -> None:
        super().__init__()
        if block_layout not in BLOCK_LAYOUTS:
            raise ValueError(f"block_layout must be one of {BLOCK_LAYOUTS}, got {block_layout!r}")
        dd = {"device": device, "dtype": dtype}
        blocks = BlockSequence(dim, depth, block=block, schedule=schedule, block_factory=block_factory, **dd,
                               **block_kwargs)
        head, _, rest = blocks_key.partition(".")
        self.add_module(head, keyed(rest, blocks) if rest else blocks)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, bias=conv_bias, **dd)
        self.dim, self.blocks_key, self.block_layout = dim, blocks_key, block_layout

    @property
    def blocks(self) -> BlockSequence:
        """The blocks, wherever their key path puts them."""
        return resolve(self, self.blocks_key)

    def forward(self, x: Tensor) -> Tensor:
        check_layout(x, "(B, C, H, W)", self.dim, type(self).__name__)
        if self.block_layout == "channels_last":
            y = self.blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        else:
            y = self.blocks(x)
        out = self.conv(y)
        return out.add_(x) if not torch.is_grad_enabled() else out + x
