"""Initialisation shared by the Mamba mixers (Mamba, SS2D and its descendants, Mamba-2).

Fact (state-spaces/mamba ``mamba_ssm/modules/mamba_simple.py`` v1.1.1, ``Mamba.__init__``; the same rule in
``mamba2_simple.py``): the step size starts log-uniform, dt = exp(U[log dt_min, log dt_max]) floored at
dt_init_floor, and the bias holds its inverse softplus, so that softplus(bias) = dt.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["dt_bias_init"]


def dt_bias_init(shape: tuple[int, ...] | torch.Size, *, dt_min: float, dt_max: float, dt_init_floor: float,
                 device: torch.device | str | None = None) -> Tensor:
    """A float32 tensor of ``shape``: softplus^-1(dt) for dt log-uniform in [dt_min, dt_max], at least
    dt_init_floor (draws from torch's global generator)."""
    log_dt = torch.rand(shape, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
    dt = torch.exp(log_dt).clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))
