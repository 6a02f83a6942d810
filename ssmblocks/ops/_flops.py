"""FLOP formulas for the library's scan ops, registered with ``torch.utils.flop_counter``.

Once this module is imported (``import ssmblocks`` does it), ``torch.utils.flop_counter.FlopCounterMode`` counts
the selective scan instead of skipping it, as counters that only know convolutions and matmuls do. The count
follows the convention of VMamba and the MambaIR-family papers (``flops_selective_scan_fn`` in
renyulin-f/MambaCSR ``basicsr/archs/csms6s.py`` at f71199e, after state-spaces/mamba issue 110):
9 * batch * L * dim * N for the recurrence, plus batch * dim * L for the D skip and again for the z gate.

The count applies to the ops torch dispatches: the native CPU kernel ``torch.ops.ssmblocks.selective_scan``.
The pure-PyTorch backends are counted op by op, and mamba_ssm's CUDA kernel is invisible to torch's counter;
``ssmblocks.profile`` therefore profiles with the native op (on shapes only, without arithmetic).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

__all__ = ["selective_scan_flops"]


def selective_scan_flops(batch: int, dim: int, length: int, dstate: int, with_d: bool, with_z: bool) -> int:
    """FLOPs of one selective-scan call (see the module docstring for the convention)."""
    flops = 9 * batch * length * dim * dstate
    return flops + batch * dim * length * (int(with_d) + int(with_z))


@register_flop_formula(torch.ops.ssmblocks.selective_scan)
def _forward(u_shape, delta_shape, A_shape, B_shape, C_shape, D_shape, z_shape, *_args, out_shape=None, **_kw) -> int:
    batch, dim, length = u_shape
    return selective_scan_flops(batch, dim, length, A_shape[1], D_shape is not None, z_shape is not None)


@register_flop_formula(torch.ops.ssmblocks.selective_scan_backward)
def _backward(dout_shape, u_shape, delta_shape, A_shape, B_shape, C_shape, D_shape, z_shape, *_args,
              out_shape=None, **_kw) -> int:
    """The backward recomputes the states and runs the reverse recurrence: counted as twice the forward, the
    ratio FlopCounterMode uses for matmuls."""
    batch, dim, length = u_shape
    return 2 * selective_scan_flops(batch, dim, length, A_shape[1], D_shape is not None, z_shape is not None)
