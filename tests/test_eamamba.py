"""EAMamba (ICCV 2025): the diagonal orders and the multi-head scan, the blocks, the U-Net and the light SR model
against the official goldens (../shared/golden/eamamba_*), the self-describing checkpoint format, the test
protocol and the weight source."""

from __future__ import annotations

import json

import pytest
import torch

from ssmblocks.scan_orders import AntiDiagonal, ColMajor, Diagonal, MultiHead, RowMajor, Windowed, eamamba_scan
from tests._golden import GOLDEN, needs_golden


# ---- scan orders ----------------------------------------------------------------------------------------------
def _diagonal_walk(height: int, width: int, flip_width: bool = False) -> list[int]:
    """Independent enumeration: lines s = i + j ascending, rows ascending inside a line (on the W-flipped map)."""
    walk = []
    for s in range(height + width - 1):
        for i in range(height):
            j = s - i
            if 0 <= j < width:
                walk.append(i * width + (width - 1 - j if flip_width else j))
    return walk


def _enumerated_heads(height: int, width: int) -> list[list[int]]:
    """The eight EAMamba heads by enumeration (reference eamamba.md: the table of the 8 scan orders)."""
    diag, anti = _diagonal_walk(height, width), _diagonal_walk(height, width, flip_width=True)
    row = list(range(height * width))
    col = [i * width + j for j in range(width) for i in range(height)]
    return [diag, diag[::-1], anti, anti[::-1], row, row[::-1], col, col[::-1]]


def test_diagonal_orders_on_a_3x4_map():
    # the worked example of the reference: 3x4 map 0..11
    assert Diagonal().paths((3, 4), "cpu")[0].tolist() == [0, 1, 4, 2, 5, 8, 3, 6, 9, 7, 10, 11]
    assert AntiDiagonal().paths((3, 4), "cpu")[0].tolist() == [3, 2, 7, 1, 6, 11, 0, 5, 10, 4, 9, 8]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (3, 4), (7, 5), (16, 24)])
def test_eamamba_heads_match_an_independent_enumeration(shape):
    assert eamamba_scan().paths(shape, "cpu").tolist() == _enumerated_heads(*shape)


@needs_golden
def test_eamamba_heads_match_the_official_index_file():
    data = json.loads((GOLDEN / "eamamba_scan_orders.json").read_text())
    order = eamamba_scan()
    for size, heads in data["sizes"].items():
        shape = tuple(int(n) for n in size.split("x"))
        assert order.paths(shape, "cpu").tolist() == heads, size


def test_multihead_reads_each_channel_group_along_its_own_path():
    order = MultiHead(RowMajor(), ColMajor().reversed(), Diagonal())
    x = torch.randn(2, 6, 3, 5)
    paths = order.scan(x)
    assert paths.shape == (2, 3, 2, 15)
    flat = x.flatten(2)
    expected = [list(range(15)), [i * 5 + j for j in range(5) for i in range(3)][::-1], _diagonal_walk(3, 5)]
    for k, walk in enumerate(expected):
        assert torch.equal(paths[:, k], flat[:, 2 * k: 2 * k + 2, walk])
    assert torch.equal(order.merge_concat(paths, (3, 5)), x)            # the concatenating merge inverts the scan
    assert order.merge(paths, (3, 5)).shape == (2, 3, 2, 3, 5)


def test_multihead_keeps_padding_tokens_of_windowed_heads():
    order = MultiHead(Windowed(2), Windowed(2, column_major=True))
    x = torch.randn(1, 4, 3, 3)
    paths = order.scan(x)
    assert paths.shape == (1, 2, 2, 16)                                   # 3x3 padded to 4x4: 16 steps
    assert torch.equal(order.merge_concat(paths, (3, 3)), x)


def test_multihead_is_differentiable():
    order = MultiHead(Diagonal(), AntiDiagonal().reversed())
    x = torch.randn(1, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(order.scan, (x,))
    y = torch.randn(1, 2, 2, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: order.merge_concat(p, (3, 4)), (y,))


def test_multihead_errors_name_the_problem():
    with pytest.raises(ValueError, match="multiple of 8"):
        eamamba_scan().scan(torch.randn(1, 12, 4, 4))
    with pytest.raises(ValueError, match="layout"):
        eamamba_scan().scan(torch.randn(16, 4, 4))


def test_multihead_exports_with_dynamic_sizes():
    order = eamamba_scan()

    class Mixer(torch.nn.Module):
        def forward(self, x):
            return order.merge_concat(order.scan(x) * 2, x.shape[2:])

    dims = {2: torch.export.Dim("h", min=2, max=64), 3: torch.export.Dim("w", min=2, max=64)}
    exported = torch.export.export(Mixer(), (torch.randn(1, 16, 6, 9),), dynamic_shapes=(dims,))
    x = torch.randn(1, 16, 11, 5)
    assert torch.equal(exported.module()(x), 2 * x)
