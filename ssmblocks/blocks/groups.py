"""Stacks of blocks: a plain sequence and the residual group, built from a block class with a ``Schedule`` of scan
orders (block i gets ``schedule[i]``) or from a factory (block index -> module).

Facts: MambaIR's residual group (csguoh/MambaIR ``basicsr/archs/mambair_arch.py``, ``ResidualGroup`` at 33d7b34) is
x + conv3x3(blocks(x)) with the blocks under ``residual_group.blocks.{i}``; MambaCSR's dual-interleaved groups
(renyulin-f/MambaCSR ``basicsr/archs/mambacsr_arch.py`` at f71199e) give block i the direction pair i % 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ssmblocks.blocks.vss_block import VSSBlock
from ssmblocks.scan_orders import ScanOrder, Schedule

__all__ = ["BlockSequence", "ResidualGroup"]


def _build(dim: int, depth: int, block: Callable[..., nn.Module] | None,
           schedule: Schedule | Sequence[ScanOrder] | None, block_factory: Callable[[int], nn.Module] | None,
           dd: dict, block_kwargs: dict) -> list[nn.Module]:
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
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
    """``depth`` token blocks run one after another; (B, H, W, C) -> (B, H, W, C). Keys ``{i}.…``.

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


class _Blocks(nn.Module):
    """Holds the sequence under ``.blocks`` so that keys read ``residual_group.blocks.{i}`` as in MambaIR."""

    def __init__(self, blocks: BlockSequence) -> None:
        super().__init__()
        self.blocks = blocks


class ResidualGroup(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): x + conv3x3(blocks(x)); the blocks see channels-last tokens (B, H, W, C).

    Takes the arguments of ``BlockSequence`` (a block class with a ``Schedule``, or a ``block_factory``). With a
    channels-last input (as the zoo models pass it) the tokens are views: no copies between the blocks and the conv.
    """

    def __init__(self, dim: int, depth: int, *, block: Callable[..., nn.Module] | None = None,
                 schedule: Schedule | Sequence[ScanOrder] | None = None,
                 block_factory: Callable[[int], nn.Module] | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, **block_kwargs) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.residual_group = _Blocks(BlockSequence(dim, depth, block=block, schedule=schedule,
                                                    block_factory=block_factory, **dd, **block_kwargs))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, **dd)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"ResidualGroup takes feature maps (B, C, H, W), got shape {tuple(x.shape)}")
        tokens = self.residual_group.blocks(x.permute(0, 2, 3, 1))
        out = self.conv(tokens.permute(0, 3, 1, 2))
        return out.add_(x) if not torch.is_grad_enabled() else out + x
