"""ASSM, the attentive state-space module of MambaIRv2: a semantic-guided scan with a learned prompt added to C.

Facts (csguoh/MambaIR ``basicsr/archs/mambairv2_arch.py`` at 33d7b34, ``ASSM`` and ``Selective_Scan``; see
shared/reference/mambairv2.md, "ASSM"). Input u (B, H, W, C), hidden = int(C * mlp_ratio), N = d_state,
T = num_tokens, R = ceil(hidden / 16):

1. Prompt table P = ``embeddingB.weight`` (T, r) @ basis (r, N), where the basis is the owning layer's
   ``embeddingA.weight``.
2. Router: ``logits = LogSoftmax(route.2(GELU(route.0(u))))`` (C -> C // 3 -> T), then a one-hot policy (the
   ``routing`` option below); ``prompt = policy @ P`` (B, H, W, N); class = argmax(policy).
3. ``in_proj.0`` 1x1 conv C -> hidden, then ``x * sigmoid(CPE.0(x))`` (depthwise 3x3).
4. The tokens sorted by class (``SemanticOrder``), one selective scan (K = 1; B and C shared by all channels;
   ``selectiveScan.{x_proj_weight, dt_projs_weight, dt_projs_bias, A_logs, Ds}``), with C = C_proj + prompt.
   Official quirk: the prompt is added in RASTER order to the SORTED sequence (position j gets the prompt of raster
   token j); ``prompt_alignment="sorted"`` gives position j the prompt of the token sitting there instead.
5. Back to raster order, ``out_norm`` LayerNorm(hidden), ``out_proj`` hidden -> C (no gate, no skip).

Routing (the ``routing`` option): ``"argmax"`` (default): the exact one-hot of argmax(logits), deterministic, with
a straight-through softmax gradient for training. ``"gumbel"``: the official ``F.gumbel_softmax(logits, tau=1,
hard=True, dim=-1)``, random on every call, eval included (the author keeps it on purpose, csguoh/MambaIR#121); one
call per ASSM, so ``torch.manual_seed(s)`` right before a model's forward reproduces the official draws on the same
device and torch version.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks.blocks._init import reset_path_scan_parameters
from ssmblocks.blocks._layout import check_layout
from ssmblocks.ops import selective_scan_fn
from ssmblocks.scan_orders.semantic import SemanticOrder

__all__ = ["ASSM", "PROMPT_ALIGNMENTS", "ROUTINGS", "PromptedSelectiveScan", "route_policy"]

ROUTINGS = ("argmax", "gumbel")
PROMPT_ALIGNMENTS = ("official", "sorted")


def check_routing(routing: str) -> str:
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {ROUTINGS} ('argmax': deterministic, the largest route logit; "
                         f"'gumbel': the official random Gumbel-softmax draw), got {routing!r}")
    return routing


def route_policy(logits: Tensor, routing: str) -> Tensor:
    """(..., T) route logits -> a hard one-hot policy of the same shape (see the module docstring)."""
    if routing == "gumbel":
        return F.gumbel_softmax(logits, tau=1.0, hard=True, dim=-1)
    check_routing(routing)
    # a scatter rather than F.one_hot: the same exact one-hot, and it never reads the class values as sizes (the
    # profiler's shape-only runs hand it meaningless indices)
    hard = torch.zeros_like(logits).scatter(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
    if not torch.is_grad_enabled() or not logits.requires_grad:
        return hard
    soft = logits.softmax(dim=-1)
    return hard + (soft - soft.detach())       # exactly the one-hot in value; the softmax's gradient


class PromptedSelectiveScan(nn.Module):
    """One selective scan (K = 1) over sequences (B, d_inner, L), B and C projected from the input and shared by
    all channels, with an optional additive prompt on C. Keys as MambaIRv2's ``Selective_Scan``.

    Args:
        d_inner: channels D of the sequence.
        d_state: state size N.
        dt_rank: rank R of the dt projection ("auto" = ceil(d_inner / 16)).
        dt_min, dt_max, dt_init_floor: Mamba's dt init.
        device, dtype: factory arguments.
    """

    def __init__(self, d_inner: int, *, d_state: int = 16, dt_rank: int | str = "auto", dt_min: float = 1e-3,
                 dt_max: float = 0.1, dt_init_floor: float = 1e-4, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.d_inner, self.d_state = d_inner, d_state
        self.dt_rank = math.ceil(d_inner / 16) if dt_rank == "auto" else int(dt_rank)
        self.dt_init = (dt_min, dt_max, dt_init_floor)
        self.x_proj_weight = nn.Parameter(torch.empty(1, self.dt_rank + 2 * d_state, d_inner, **dd))
        self.dt_projs_weight = nn.Parameter(torch.empty(1, d_inner, self.dt_rank, **dd))
        self.dt_projs_bias = nn.Parameter(torch.empty(1, d_inner, **dd))
        self.A_logs = nn.Parameter(torch.empty(d_inner, d_state, **dd))
        self.Ds = nn.Parameter(torch.empty(d_inner, **dd))
        self.A_logs._no_weight_decay = True
        self.Ds._no_weight_decay = True
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Mamba's init (x_proj U(+-D^-0.5), dt U(+-R^-0.5), dt bias inverse-softplus, A_logs log(1..N), Ds 1)."""
        dt_min, dt_max, dt_floor = self.dt_init
        self.x_proj_weight.uniform_(-self.d_inner**-0.5, self.d_inner**-0.5)
        reset_path_scan_parameters(self.dt_projs_weight, self.dt_projs_bias, self.A_logs, self.Ds,
                                   dt_rank=self.dt_rank, dt_min=dt_min, dt_max=dt_max, dt_init_floor=dt_floor)

    def forward(self, x: Tensor, prompt: Tensor | None = None) -> Tensor:
        """x (B, d_inner, L), prompt (B, d_state, L) added to C -> (B, d_inner, L)."""
        if x.dim() != 3 or x.shape[1] != self.d_inner:      # channel-major sequences, the scan kernel's layout
            raise ValueError(f"{type(self).__name__} expects (B, D, L) input with D = {self.d_inner}, got a "
                             f"{x.dim()}-D tensor of shape {tuple(x.shape)}")
        batch, _, length = x.shape
        x_dbl = torch.matmul(self.x_proj_weight, x.unsqueeze(1))                  # (B, 1, R + 2N, L)
        dts, bs, cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                             # (B, 1, D, L)
        if prompt is not None:
            cs = cs + prompt.unsqueeze(1)
        return selective_scan_fn(x, dts.view(batch, self.d_inner, length), -torch.exp(self.A_logs), bs, cs,
                                 self.Ds, delta_bias=self.dt_projs_bias.flatten(), delta_softplus=True)


class ASSM(nn.Module):
    """The attentive state-space module (see the module docstring). (B, H, W, dim) -> (B, H, W, dim);
    ``forward(x, basis)`` takes the prompt basis (inner_rank, d_state) or the embedding holding it (MambaIRv2: the
    layer's ``embeddingA``).

    Args:
        dim: channels C.
        d_state: state size N.
        mlp_ratio: hidden = int(dim * mlp_ratio), the scan's width.
        num_tokens: routing classes T. inner_rank: rank r of the prompt table.
        routing: "argmax" (deterministic, default) or "gumbel" (the official random draw).
        tie_order: how tokens of one class are ordered ("stable": raster order; "backend": the official
            ``torch.sort(stable=False)``, whatever the backend does).
        prompt_alignment: "official" (the prompt in raster order over the sorted sequence, the official quirk) or
            "sorted" (each token's own prompt).
        device, dtype: factory arguments.
    """

    def __init__(self, dim: int, *, d_state: int = 16, mlp_ratio: float = 2.0, num_tokens: int = 64,
                 inner_rank: int = 32, routing: str = "argmax", tie_order: str = "stable",
                 prompt_alignment: str = "official", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if prompt_alignment not in PROMPT_ALIGNMENTS:
            raise ValueError(f"prompt_alignment must be one of {PROMPT_ALIGNMENTS}, got {prompt_alignment!r}")
        dd = {"device": device, "dtype": dtype}
        hidden = int(dim * mlp_ratio)
        self.dim, self.d_state, self.hidden = dim, d_state, hidden
        self.routing = check_routing(routing)
        self.order = SemanticOrder(num_tokens, tie_order=tie_order)
        self.prompt_alignment = prompt_alignment
        self.selectiveScan = PromptedSelectiveScan(hidden, d_state=d_state, **dd)
        self.out_norm = nn.LayerNorm(hidden, **dd)
        self.out_proj = nn.Linear(hidden, dim, **dd)
        self.in_proj = nn.Sequential(nn.Conv2d(dim, hidden, 1, **dd))
        self.CPE = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, **dd))
        self.embeddingB = nn.Embedding(num_tokens, inner_rank, **dd)
        self.route = nn.Sequential(nn.Linear(dim, dim // 3, **dd), nn.GELU(), nn.Linear(dim // 3, num_tokens, **dd),
                                   nn.LogSoftmax(dim=-1))
        nn.init.uniform_(self.embeddingB.weight, -1 / num_tokens, 1 / num_tokens)

    @property
    def routing(self) -> str:
        return self._routing

    @routing.setter
    def routing(self, value: str) -> None:
        self._routing = check_routing(value)

    def forward(self, x: Tensor, basis: nn.Embedding | Tensor) -> Tensor:
        """x (B, H, W, dim); ``basis``: the (inner_rank, d_state) prompt basis, or the embedding holding it (as the
        official layer passes its ``embeddingA``; a module, not its weight, keeps module hooks off the parameter)."""
        check_layout(x, "(B, H, W, C)", self.dim, type(self).__name__)
        height, width = x.shape[1:3]
        basis = basis.weight if isinstance(basis, nn.Module) else basis
        table = self.embeddingB.weight @ basis                                    # (T, N)
        policy = route_policy(self.route(x), self.routing)                        # (B, H, W, T)
        prompt = torch.matmul(policy, table).permute(0, 3, 1, 2)                  # (B, N, H, W), raster
        routed = self.order.route(policy.detach().argmax(dim=-1))
        u = self.in_proj(x.permute(0, 3, 1, 2))
        u = u * torch.sigmoid(self.CPE(u))                                        # (B, hidden, H, W)
        seq = routed.scan(u)[:, 0]                                                # (B, hidden, L), sorted
        prompt = routed.scan(prompt)[:, 0] if self.prompt_alignment == "sorted" else prompt.flatten(2)
        y = self.selectiveScan(seq, prompt)                                       # (B, hidden, L), sorted
        y = routed.merge_sum(y.unsqueeze(1), (height, width)).permute(0, 2, 3, 1)  # (B, H, W, hidden), raster
        return self.out_proj(self.out_norm(y))
