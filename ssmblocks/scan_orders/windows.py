"""Window partition: every window becomes its own short sequence (MedVSR's CSSB and ISSR Mamba-2 blocks).

Facts (CUHK-AIM-Group/MedVSR at 3421505, ``archs/medvsr_arch.py``): both inputs are zero-padded (right/bottom) to
multiples of 16 and split into 16x16 windows; each window is one sequence of 256 tokens, row-major, one causal
direction. Unlike ``Windowed``, the state does not carry from one window to the next, so the windows go to the batch
axis.
"""

from __future__ import annotations

from torch import Tensor

from ssmblocks.scan_orders.planar import Windowed

__all__ = ["WindowPartition", "medvsr_windows"]


class WindowPartition(Windowed):
    """``scan``: (B, C, H, W) -> (B * nW, 1, C, size**2), windows row-major, each window row-major;
    ``merge``/``merge_sum``: (B * nW, 1, C, size**2) -> (B, 1, C, H, W) / (B, C, H, W), padding cropped."""

    def scan(self, *maps: Tensor) -> Tensor:
        paths = super().scan(*maps)                                   # (B, 1, C, nW * size^2)
        batch, _, channels, length = paths.shape
        per_window = self.size**2
        windows = paths.view(batch, channels, length // per_window, per_window).transpose(1, 2)
        return windows.reshape(-1, 1, channels, per_window)

    def _as_one_sequence(self, y: Tensor, shape) -> Tensor:
        per_window = self.size**2
        n_windows = self.seq_len(shape) // per_window
        if y.dim() != 4 or y.shape[1] != 1 or y.shape[3] != per_window or y.shape[0] % n_windows:
            raise ValueError(f"{self!r} merges (B * {n_windows}, 1, C, {per_window}) for a map of shape "
                             f"{tuple(shape)}, got {tuple(y.shape)}")
        channels = y.shape[2]
        y = y.view(-1, n_windows, channels, per_window).transpose(1, 2)
        return y.reshape(-1, 1, channels, n_windows * per_window)

    def merge(self, y: Tensor, shape) -> Tensor:
        return super().merge(self._as_one_sequence(y, shape), shape)

    def merge_sum(self, y: Tensor, shape) -> Tensor:
        return super().merge_sum(self._as_one_sequence(y, shape), shape)

    def __repr__(self) -> str:
        return f"WindowPartition({self.size})"


def medvsr_windows() -> WindowPartition:
    """MedVSR's order: 16x16 windows, row-major inside, zero padding, one direction."""
    return WindowPartition(16)
