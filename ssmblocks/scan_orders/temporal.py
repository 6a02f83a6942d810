"""Orders on clips (B, C, T, H, W): VSRM's spatial-to-temporal and temporal-to-spatial scans.

Facts (the VSRM paper, arXiv 2506.22762, Eqs. 4-5; no official code exists): S2T flattens the clip spatial-first
then temporal — all of frame 1, then frame 2, ... — and scans it forward and backward; T2S is temporal-first — for
each position all frames — and scans forward only. The order inside a frame is not published; the library's
choice is row-major (documented in docs/scan_orders.md).
"""

from __future__ import annotations

import torch

from ssmblocks.scan_orders.base import ScanOrder, concat

__all__ = ["FrameMajor", "TimeMajor", "s2t_scan", "t2s_scan"]


class FrameMajor(ScanOrder):
    """One path: frame by frame, each frame row-major (index t * H * W + h * W + w)."""

    ndim = 3

    def build_paths(self, shape):
        t, h, w = shape
        return torch.arange(t * h * w)[None]


class TimeMajor(ScanOrder):
    """One path: pixel by pixel (row-major), each pixel through all frames (index t * H * W + p visited at
    p * T + t)."""

    ndim = 3

    def build_paths(self, shape):
        t, h, w = shape
        return torch.arange(t * h * w).view(t, h * w).t().reshape(1, -1)


def s2t_scan() -> ScanOrder:
    """VSRM's S2T-Mamba paths: frame-major forward, then frame-major backward."""
    return concat(FrameMajor(), FrameMajor().reversed())


def t2s_scan() -> ScanOrder:
    """VSRM's T2S-Mamba path: time-major, forward only (the paper found forward-only better, Table 5)."""
    return TimeMajor()
