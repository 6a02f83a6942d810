"""MaIR's nested S-shaped scan (NSS): exact against the official index file and an independent enumeration."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from ssmblocks.scan_orders import NestedS, Schedule, mair_schedule, nested_s_scan, render
from tests._golden import GOLDEN, needs_golden


def _stripes(width: int, stripe: int, shift: int) -> list[range]:
    """Column bands left to right: [0, shift) first when shifted, then bands of ``stripe``, the last one narrower."""
    edges = [0, shift] if shift else [0]
    while edges[-1] < width:
        edges.append(min(edges[-1] + stripe, width))
    return [range(a, b) for a, b in itertools.pairwise(edges)]


def _nss(rows: int, cols: int, stripe: int, shift: int) -> list[tuple[int, int]]:
    """The (row, col) pixels of one NSS path, walked stripe by stripe, written from the reference's words."""
    if shift and cols < shift:                                  # the official raster fallback
        return [(r, c) for r in range(rows) for c in range(cols)]
    visited = []
    for j, band in enumerate(_stripes(cols, stripe, shift)):
        row_order = range(rows) if j % 2 == 0 else range(rows - 1, -1, -1)
        for u, r in enumerate(row_order):
            cols_here = list(band) if u % 2 == 0 else list(reversed(band))
            visited.extend((r, c) for c in cols_here)
    return visited


def _mair_four(h: int, w: int, stripe: int, shift: int) -> list[list[int]]:
    """The four official sequences as row-major ids: map, rotated map, transpose, rotated transpose."""
    n = h * w
    k0 = [r * w + c for r, c in _nss(h, w, stripe, shift)]
    k2 = [c * w + r for r, c in _nss(w, h, stripe, shift)]      # pixel (r, c) of the transpose is (c, r)
    return [k0, [n - 1 - p for p in k0], k2, [n - 1 - p for p in k2]]


def _ids(order, h, w):
    return order.paths((h, w), "cpu").tolist()


def test_worked_example_of_the_reference():
    # shared/reference/mair.md, H=4, W=6, scan_len 4 (plain) and shift 2
    plain = [[0, 1, 2, 3, 9, 8, 7, 6, 12, 13, 14, 15, 21, 20, 19, 18, 22, 23, 17, 16, 10, 11, 5, 4],
             [23, 22, 21, 20, 14, 15, 16, 17, 11, 10, 9, 8, 2, 3, 4, 5, 1, 0, 6, 7, 13, 12, 18, 19],
             [0, 6, 12, 18, 19, 13, 7, 1, 2, 8, 14, 20, 21, 15, 9, 3, 4, 10, 16, 22, 23, 17, 11, 5],
             [23, 17, 11, 5, 4, 10, 16, 22, 21, 15, 9, 3, 2, 8, 14, 20, 19, 13, 7, 1, 0, 6, 12, 18]]
    shifted = [[0, 1, 7, 6, 12, 13, 19, 18, 20, 21, 22, 23, 17, 16, 15, 14, 8, 9, 10, 11, 5, 4, 3, 2],
               [23, 22, 16, 17, 11, 10, 4, 5, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 18, 19, 20, 21],
               [0, 6, 7, 1, 2, 8, 9, 3, 4, 10, 11, 5, 17, 23, 22, 16, 15, 21, 20, 14, 13, 19, 18, 12],
               [23, 17, 16, 22, 21, 15, 14, 20, 19, 13, 12, 18, 6, 0, 1, 7, 8, 2, 3, 9, 10, 4, 5, 11]]
    assert _ids(nested_s_scan(4), 4, 6) == plain == _mair_four(4, 6, 4, 0)
    assert _ids(nested_s_scan(4, shifted=True), 4, 6) == shifted == _mair_four(4, 6, 4, 2)


@needs_golden
def test_official_index_file_exactly():
    data = json.loads((GOLDEN / "mair_scan_orders.json").read_text())
    assert len(data["cases"]) == 20
    for case in data["cases"]:
        h, w, stripe, shift = case["H"], case["W"], case["scan_len"], case["shift_len"]
        order = _official_order(stripe, shift)
        assert _ids(order, h, w) == case["scan_ids"], case
        assert order.inverse((h, w), "cpu").tolist() == case["inverse_ids"], case


def _official_order(stripe: int, shift: int):
    assert shift in (0, stripe // 2)                            # the only shifts the official code uses
    return nested_s_scan(stripe, shifted=shift > 0)


@pytest.mark.parametrize("stripe", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("shifted", [False, True])
def test_every_small_size_equals_the_independent_enumeration(stripe, shifted):
    order = nested_s_scan(stripe, shifted=shifted)
    for h in range(1, 11):
        for w in range(1, 11):
            assert _ids(order, h, w) == _mair_four(h, w, stripe, stripe // 2 if shifted else 0), (h, w)


def test_k1_and_k3_are_rotations_not_reverses():
    ids = _ids(nested_s_scan(4), 5, 7)
    assert ids[1] != ids[0][::-1] and ids[3] != ids[2][::-1]
    assert ids[1] == [34 - p for p in ids[0]]


def test_raster_fallback_when_narrower_than_the_shift():
    assert _ids(NestedS(8, 4), 3, 3) == [list(range(9))]
    assert _ids(NestedS(8, 0), 3, 3) == [[0, 1, 2, 5, 4, 3, 6, 7, 8]]


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (9, 4), (16, 16)])
def test_merge_inverts_scan(shape):
    for order in mair_schedule(4).orders:
        x = torch.randn(2, 3, *shape, dtype=torch.float64)
        merged = order.merge(order.scan(x), shape)
        assert torch.equal(merged, x[:, None].expand(-1, 4, -1, -1, -1))
        assert torch.equal(order.merge_sum(order.scan(x), shape), 4 * x)


def test_schedule_alternates_plain_and_shifted():
    schedule = mair_schedule(8)
    assert isinstance(schedule, Schedule) and schedule.num_paths == 4
    assert schedule[0] == nested_s_scan(8) and schedule[1] == nested_s_scan(8, shifted=True)
    assert schedule[2] == schedule[0] and schedule[0] != schedule[1]
    assert "NestedS(stripe=8, shift=4" in repr(schedule[1])


def test_render_draws_each_sequence():
    image = render(nested_s_scan(4), (8, 8))
    assert image.ndim == 3 and image.shape[-1] in (3, 4)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="stripe"):
        NestedS(0)
    with pytest.raises(ValueError, match="shift"):
        NestedS(4, 4)


class _Mix(torch.nn.Module):
    def __init__(self, order):
        super().__init__()
        self.order = order

    def forward(self, x):
        return self.order.merge_sum(self.order.scan(x) * 2, x.shape[2:])


def test_tables_build_on_symbolic_sizes_under_export():
    module = _Mix(nested_s_scan(4, shifted=True))
    dims = {2: torch.export.Dim("h", min=2, max=64), 3: torch.export.Dim("w", min=2, max=64)}
    exported = torch.export.export(module, (torch.randn(1, 3, 9, 13),), dynamic_shapes=(dims,))
    for shape in ((6, 5), (3, 11), (17, 8)):
        x = torch.randn(1, 3, *shape)
        assert torch.allclose(exported.module()(x), module(x))
    paths = torch.export.export(_Paths(nested_s_scan(8, shifted=True)), (torch.randn(1, 1, 9, 13),),
                                dynamic_shapes=(dims,)).module()(torch.zeros(1, 1, 3, 10))
    assert paths.tolist() == _mair_four(3, 10, 8, 4)            # the raster fallback on a 3-row side, traced


class _Paths(torch.nn.Module):
    def __init__(self, order):
        super().__init__()
        self.order = order

    def forward(self, x):
        return self.order.build_paths(tuple(x.shape[2:]))


def test_raster_fallback_can_be_turned_off():
    # the corrected variant snakes the narrow map as one stripe; maps at least as wide as the shift are unchanged
    assert _ids(NestedS(8, 4, raster_fallback=False), 3, 3) == [[0, 1, 2, 5, 4, 3, 6, 7, 8]]
    assert _ids(NestedS(8, 4, raster_fallback=False), 5, 9) == _ids(NestedS(8, 4), 5, 9)
    assert NestedS(8, 4, raster_fallback=False) != NestedS(8, 4)
