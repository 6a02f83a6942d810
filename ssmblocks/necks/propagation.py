"""Recurrent bidirectional second-order propagation (BasicVSR++ grid propagation, as MedVSR runs it).

Facts from CUHK-AIM-Group/MedVSR 3421505 ``archs/medvsr_arch.py`` (``MedVSR.propagate``). Branches run in the order
backward_1, forward_1, backward_2, forward_2; a backward branch visits frames T-1 .. 0, a forward one 0 .. T-1. At
step i on frame t, with ``feat_prop`` the branch's previous output (zeros at i = 0):

1. i >= 1: ``flow_n1`` = flow from t to the previous visited frame; ``cond_n1 = flow_warp(feat_prop, flow_n1)``;
2. i >= 2: ``feat_n2`` = the output two steps back, ``flow_n2 = compose_flows(flow_n1, flow one step further)``,
   ``cond_n2 = flow_warp(feat_n2, flow_n2)`` passed through ``cross_frame(feat_prop, cond_n2)`` when given;
   i = 1: ``feat_n2``, ``flow_n2``, ``cond_n2`` are zeros;
3. ``feat_prop = align(feat_prop, cat[cond_n1, feat_current, cond_n2], flow_n1, feat_n2, flow_n2)``;
4. ``feat_prop = feat_prop + refine(cat[feat_current, earlier branches at t, feat_prop])``.

Flows (B, T-1, 2, H, W): ``flows_backward[:, k]`` maps frame k to k+1, ``flows_forward[:, k]`` frame k+1 to k.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ssmblocks.ops import compose_flows, flow_warp

__all__ = ["BRANCHES", "second_order_propagation"]

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
AlignFn = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def _branch(feats: dict[str, list[Tensor]], flows: Tensor, name: str, align: AlignFn,
            refine: Callable[[Tensor], Tensor], cross_frame: Callable[[Tensor, Tensor], Tensor] | None) -> list[Tensor]:
    spatial = feats["spatial"]
    frames = len(spatial)
    backward = name.startswith("backward")
    order = range(frames - 1, -1, -1) if backward else range(frames)
    # flow from frame t to the previously visited frame
    step_flow = (lambda t: flows[:, t]) if backward else (lambda t: flows[:, t - 1])
    earlier = [k for k in feats if k not in ("spatial", name)]
    outputs: list[Tensor] = []
    feat_prop = spatial[0].new_zeros(spatial[0].shape)
    for i, t in enumerate(order):
        current = spatial[t]
        if i > 0:
            flow_n1 = step_flow(t)
            cond_n1 = flow_warp(feat_prop, flow_n1)
            if i > 1:
                feat_n2 = outputs[-2]
                flow_n2 = compose_flows(flow_n1, step_flow(t + 1 if backward else t - 1))
                cond_n2 = flow_warp(feat_n2, flow_n2)
                if cross_frame is not None:
                    cond_n2 = cross_frame(feat_prop, cond_n2)
            else:
                feat_n2, flow_n2, cond_n2 = (torch.zeros_like(feat_prop), torch.zeros_like(flow_n1),
                                             torch.zeros_like(cond_n1))
            feat_prop = align(feat_prop, torch.cat([cond_n1, current, cond_n2], dim=1), flow_n1, feat_n2, flow_n2)
        feat = torch.cat([current, *(feats[k][t] for k in earlier), feat_prop], dim=1)
        feat_prop = feat_prop + refine(feat)
        outputs.append(feat_prop)
    return outputs[::-1] if backward else outputs


def second_order_propagation(spatial: Sequence[Tensor], flows_backward: Tensor, flows_forward: Tensor, *,
                             align: Mapping[str, AlignFn], refine: Mapping[str, Callable[[Tensor], Tensor]],
                             cross_frame: Callable[[Tensor, Tensor], Tensor] | None = None,
                             branches: Sequence[str] = BRANCHES) -> dict[str, list[Tensor]]:
    """Runs the branches in order; returns {"spatial": spatial, branch: T maps (B, C, H, W) in frame order}.

    Args:
        spatial: T per-frame features (B, C, H, W).
        flows_backward, flows_forward: (B, T-1, 2, H, W), see the module docstring.
        align: per branch, ``(feat_prop, cond, flow_n1, feat_n2, flow_n2) -> aligned (B, C, H, W)``.
        refine: per branch, ``(B, (2 + k) C, H, W) -> (B, C, H, W)`` for the k-th branch (0-based).
        cross_frame: ``(feat_prop, warped feat_n2) -> cond_n2`` (MedVSR's CSSB), or None to use the warp itself.
        branches: names starting with "backward" or "forward", run in this order.
    """
    if len(spatial) < 2:
        raise ValueError(f"propagation needs at least 2 frames, got {len(spatial)}")
    feats: dict[str, list[Tensor]] = {"spatial": list(spatial)}
    for name in branches:
        if not name.startswith(("backward", "forward")):
            raise ValueError(f"branch names start with 'backward' or 'forward', got {name!r}")
        flows = flows_backward if name.startswith("backward") else flows_forward
        feats[name] = _branch(feats, flows, name, align[name], refine[name], cross_frame)
    return feats
