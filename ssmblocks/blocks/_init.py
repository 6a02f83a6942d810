"""Initialisation shared by the Mamba mixers (Mamba, SS2D and its descendants, Mamba-2).

Fact (state-spaces/mamba ``mamba_ssm/modules/mamba_simple.py`` v1.1.1, ``Mamba.__init__``; the same rule in
``mamba2_simple.py``): the step size starts log-uniform, dt = exp(U[log dt_min, log dt_max]) floored at
dt_init_floor, and the bias holds its inverse softplus, so that softplus(bias) = dt.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["dt_bias_init", "reset_path_scan_parameters"]


def dt_bias_init(shape: tuple[int, ...] | torch.Size, *, dt_min: float, dt_max: float, dt_init_floor: float,
                 device: torch.device | str | None = None) -> Tensor:
    """A float32 tensor of ``shape``: softplus^-1(dt) for dt log-uniform in [dt_min, dt_max], at least
    dt_init_floor (draws from torch's global generator)."""
    log_dt = torch.rand(shape, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
    dt = torch.exp(log_dt).clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))


@torch.no_grad()
def reset_path_scan_parameters(dt_weight: Tensor, dt_bias: Tensor, A_logs: Tensor, Ds: Tensor, *, dt_rank: int,
                               dt_min: float, dt_max: float, dt_init_floor: float) -> None:
    """Mamba's init of the per-path scan parameters of SS2D-style mixers, in place, in this order (one draw sequence
    from torch's global generator): dt weights U(+-dt_rank^-0.5); dt bias ``dt_bias_init``; A_logs = log(1..N) on
    every row of (rows, N); Ds = 1."""
    dt_weight.uniform_(-dt_rank**-0.5, dt_rank**-0.5)
    dt_bias.copy_(dt_bias_init(dt_bias.shape, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_init_floor,
                               device=dt_bias.device))
    log_a = torch.log(torch.arange(1, A_logs.shape[-1] + 1, dtype=torch.float32))
    A_logs.copy_(log_a.repeat(A_logs.shape[0], 1))
    Ds.fill_(1.0)
