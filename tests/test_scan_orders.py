"""Scan orders: exact official index orders on hand-enumerated examples, bijection, round trips, padding, errors,
the path-gather custom op, symbolic sizes under torch.export / torch.compile, the shared bounded index cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ssmblocks
from ssmblocks.ops import available_backends, path_gather, path_gather_ref, use_backend
from ssmblocks.scan_orders import (
    AntiDiagonal,
    ColMajor,
    CrossScale,
    Diagonal,
    RowMajor,
    ScanOrder,
    Schedule,
    Windowed,
    WindowPartition,
    bidirectional,
    concat,
    cross_scale_scan,
    cross_scan,
    dual_interleaved,
    hv_interleaved,
    index_cache,
    mambacsr_order,
    medvsr_windows,
    render,
    s2t_scan,
    save_png,
    t2s_scan,
)


def _labels(*shape):
    """A (1, 1, *shape) map whose value at each pixel is its row-major index."""
    return torch.arange(float(np.prod(shape))).view(1, 1, *shape)


def _seq(order, *maps):
    return order.scan(*maps)[0, :, 0].long().tolist()


# ---- exact orders, enumerated by hand from the reference notes ------------------------------------------------
def test_cross_scan_4x4_official_path_order():
    r = list(range(16))
    c = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
    assert _seq(cross_scan(4), _labels(4, 4)) == [r, c, r[::-1], c[::-1]]
    assert _seq(cross_scan(2), _labels(4, 4)) == [r, c]
    assert _seq(cross_scan(1), _labels(4, 4)) == [r]


def test_cross_scan_4x6_non_square():
    col = [0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22, 5, 11, 17, 23]
    seq = _seq(cross_scan(4), _labels(4, 6))
    assert seq[0] == list(range(24)) and seq[1] == col and seq[2] == list(range(24))[::-1] and seq[3] == col[::-1]


def test_windowed_w2_and_c_w2_on_4x6():
    # w2: 2x2 windows row-major, pixels row-major; c_w2: windows column-major, pixels column-major
    w2 = [0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11, 12, 13, 18, 19, 14, 15, 20, 21, 16, 17, 22, 23]
    c_w2 = [0, 6, 1, 7, 12, 18, 13, 19, 2, 8, 3, 9, 14, 20, 15, 21, 4, 10, 5, 11, 16, 22, 17, 23]
    assert _seq(mambacsr_order("w2"), _labels(4, 6)) == [w2]
    assert _seq(mambacsr_order("c_w2"), _labels(4, 6)) == [c_w2]
    assert _seq(mambacsr_order("c_w2_flip"), _labels(4, 6)) == [c_w2[::-1]]


def test_windowed_padding_is_zero_right_and_bottom_and_stays_in_the_sequence():
    x = _labels(4, 6) + 1  # values 1..24, so a 0 can only be padding
    seq = _seq(Windowed(4), x)[0]
    assert len(seq) == Windowed(4).seq_len((4, 6)) == 4 * 8
    expected = [1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16, 19, 20, 21, 22,
                5, 6, 0, 0, 11, 12, 0, 0, 17, 18, 0, 0, 23, 24, 0, 0]
    assert seq == expected
    col = _seq(Windowed(4, column_major=True), x)[0]
    assert col == [1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22,
                   5, 11, 17, 23, 6, 12, 18, 24, 0, 0, 0, 0, 0, 0, 0, 0]


def test_windowed_matches_the_official_view_permute_definition():
    # local_scan.py (reference notes): pad, view (B, C, Hg, K, Wg, K), permute (0,1,2,4,3,5) for wK and
    # (0,1,4,2,5,3) for c_wK, flatten.
    x = torch.randn(2, 3, 13, 21)
    k = 8
    padded = torch.nn.functional.pad(x, (0, 3, 0, 3))
    tiles = padded.view(2, 3, 2, k, 3, k)
    for perm, column in (((0, 1, 2, 4, 3, 5), False), ((0, 1, 4, 2, 5, 3), True)):
        official = tiles.permute(*perm).reshape(2, 3, -1)
        assert torch.equal(Windowed(k, column_major=column).scan(x)[:, 0], official)


def test_cross_scale_interleaving_row_and_column():
    fine, coarse = _labels(4, 4), 100 + _labels(2, 2)
    row = _seq(CrossScale(window=4), fine, coarse)[0]
    assert row[:10] == [100, 0, 1, 4, 5, 101, 2, 3, 6, 7]          # [d(0,0), f(0,0), f(0,1), f(1,0), f(1,1), d(0,1)..]
    assert len(row) == 20
    col = _seq(CrossScale(window=4, column_major=True), fine, coarse)[0]
    assert col[:10] == [100, 0, 4, 1, 5, 102, 8, 12, 9, 13]        # [d(0,0), f(0,0), f(1,0), f(0,1), f(1,1), d(1,0)..]


def test_cross_scale_flip_reverses_each_stream_then_interleaves():
    fine, coarse = _labels(4, 4), 100 + _labels(2, 2)
    flipped = _seq(CrossScale(window=4, flip=True), fine, coarse)[0]
    assert flipped == [103, 15, 14, 11, 10, 102, 13, 12, 9, 8, 101, 7, 6, 3, 2, 100, 5, 4, 1, 0]


def test_cross_scale_windows_nest_16_then_2x2():
    # 32x32 fine map: the second fine window (row-major) starts at column 16; its first coarse token is d(0, 8).
    fine, coarse = _labels(32, 32), 10_000 + _labels(16, 16)
    seq = _seq(CrossScale(), fine, coarse)[0]
    window = 16 * 16 * 5 // 4
    assert seq[window:window + 5] == [10_000 + 8, 16, 17, 48, 49]
    assert seq[5:10] == [10_001, 2, 3, 34, 35]


def test_cross_scale_merge_keeps_only_fine_tokens_in_place():
    order = cross_scale_scan(window=4)
    fine, coarse = torch.randn(2, 3, 8, 12), torch.randn(2, 3, 4, 6)
    paths = order.scan(fine, coarse)
    assert paths.shape == (2, 4, 3, 8 * 12 * 5 // 4)
    assert torch.equal(order.merge(paths, (8, 12)), fine[:, None].expand(2, 4, 3, 8, 12))


def test_spatio_temporal_orders():
    clip = _labels(3, 2, 2)  # (T, H, W)
    s2t = _seq(s2t_scan(), clip)
    assert s2t == [list(range(12)), list(range(12))[::-1]]
    assert _seq(t2s_scan(), clip) == [[0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]]


def test_t1_clip_is_a_plain_raster():
    assert _seq(t2s_scan(), _labels(1, 3, 5)) == [list(range(15))]


def test_medvsr_windows_are_separate_sequences():
    x = torch.randn(2, 3, 20, 33)                        # pads to 32 x 48: 2 x 3 windows of 16x16
    order = medvsr_windows()
    windows = order.scan(x)
    assert windows.shape == (2 * 6, 1, 3, 256)
    assert torch.equal(windows[1, 0, :, :16], x[0, :, 0, 16:32])            # window (0, 1), its first row
    assert torch.equal(windows[6 + 2, 0, :, 16:17], x[1, :, 1, 32:33])      # batch 1, window (0, 2), row 1
    assert (windows[5, 0, :, 4 * 16 + 1:] == 0).all()                        # window (1, 2): rows 4.. are padding
    assert torch.equal(order.merge_sum(windows, (20, 33)), x)


# ---- properties over every order ------------------------------------------------------------------------------
ORDERS_2D = {
    "row": RowMajor(),
    "col": ColMajor(),
    "cross4": cross_scan(4),
    "w8": Windowed(8),
    "c_w8_pair": bidirectional(Windowed(8, column_major=True)),
    "w3_rowwin_colpix": Windowed(3, windows="row", pixels="col"),
    "w64": mambacsr_order("w64"),
    "mixed": concat(Windowed(4), Windowed(4, column_major=True).reversed()),
    "diagonal": Diagonal(),
    "anti_diagonal_pair": bidirectional(AntiDiagonal()),
}
ORDERS_3D = {"s2t": s2t_scan(), "t2s": t2s_scan()}


@pytest.mark.parametrize("name", ORDERS_2D)
@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (8, 8), (3, 17), (17, 3), (9, 64)])
def test_bijection_and_round_trip_2d(name, shape):
    order = ORDERS_2D[name]
    _check_round_trip(order, shape)


@pytest.mark.parametrize("name", ORDERS_3D)
@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 5, 7), (2, 1, 9)])
def test_bijection_and_round_trip_3d(name, shape):
    _check_round_trip(ORDERS_3D[name], shape)


def _check_round_trip(order, shape):
    x = torch.randn(2, 3, *shape)
    paths = order.scan(x)
    n = int(np.prod(shape))
    assert paths.shape == (2, order.num_paths, 3, order.seq_len(shape))
    idx = order.paths(shape, "cpu")
    for k in range(order.num_paths):
        real = idx[k][idx[k] < n]
        assert sorted(real.tolist()) == list(range(n))              # a bijection on the unpadded tokens
        assert (paths[:, k, :, idx[k] >= n] == 0).all()            # padding reads zeros
    assert torch.equal(order.merge(paths, shape), x[:, None].expand(2, order.num_paths, 3, *shape))
    assert torch.allclose(order.merge_sum(paths, shape), x * order.num_paths)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k=st.sampled_from([1, 2, 3, 8, 16, 64]),
       windows=st.sampled_from(["row", "col"]), pixels=st.sampled_from(["row", "col"]), flip=st.booleans())
def test_windowed_property(h, w, k, windows, pixels, flip):
    order = Windowed(k, windows=windows, pixels=pixels)
    order = order.reversed() if flip else order
    hp, wp = -(-h // k) * k, -(-w // k) * k
    assert order.seq_len((h, w)) == hp * wp
    x = torch.randn(1, 2, h, w)
    assert torch.equal(order.merge(order.scan(x), (h, w))[:, 0], x)


@settings(max_examples=20, deadline=None)
@given(hg=st.integers(1, 3), wg=st.integers(1, 3), window=st.sampled_from([2, 4, 16]), column=st.booleans(),
       flip=st.booleans())
def test_cross_scale_property(hg, wg, window, column, flip):
    h, w = hg * window, wg * window
    order = CrossScale(window, column_major=column, flip=flip)
    fine, coarse = torch.randn(1, 2, h, w), torch.randn(1, 2, h // 2, w // 2)
    seq = order.scan(fine, coarse)[0, 0]
    groups = seq.view(2, -1, 5)
    # every coarse token precedes exactly the four fine tokens of the 2x2 block it covers
    idx = order.paths((h, w), "cpu")[0].view(-1, 5)
    for coarse_id, *fine_ids in idx.tolist():
        ci, cj = divmod(coarse_id - h * w, w // 2)
        assert sorted(fine_ids) == sorted([(2 * ci + a) * w + 2 * cj + b for a in (0, 1) for b in (0, 1)])
    assert torch.equal(groups[:, :, 0].flatten().sort().values, coarse.flatten().sort().values)
    assert torch.equal(order.merge(order.scan(fine, coarse), (h, w))[:, 0], fine)


# ---- schedules --------------------------------------------------------------------------------------------------
def test_dual_interleaved_schedule_cycles_like_mambacsr():
    schedule = dual_interleaved()
    names = [(o.orders[0].size, o.orders[0].windows) for o in (schedule[i] for i in range(6))]
    assert names == [(8, "row"), (8, "col"), (64, "row"), (64, "col"), (8, "row"), (8, "col")]
    x = _labels(8, 8)
    assert _seq(schedule[1], x) == [_seq(mambacsr_order("c_w8"), x)[0], _seq(mambacsr_order("c_w8_flip"), x)[0]]
    assert len(hv_interleaved()) == 2 and schedule.num_paths == 2


def test_user_defined_schedule_and_errors():
    schedule = Schedule([cross_scan(2), bidirectional(Windowed(4))])
    assert schedule[3] is schedule.orders[1]
    with pytest.raises(ValueError, match="same number of paths"):
        Schedule([cross_scan(4), cross_scan(2)])


# ---- bad input ----------------------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"scans x of layout \(B, C, H, W\), got shape \(3, 8, 8\)"):
        cross_scan().scan(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        s2t_scan().scan(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="positive multiples of 16, got 8x8"):
        cross_scale_scan().scan(torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4))
    with pytest.raises(ValueError, match="the coarse map must be half the fine map"):
        cross_scale_scan().scan(torch.randn(1, 2, 32, 32), torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="scans two maps"):
        CrossScale().scan(torch.randn(1, 2, 32, 32))
    with pytest.raises(ValueError, match=r"merges paths of layout \(B, K=4, C, L=64\)"):
        cross_scan().merge(torch.randn(1, 2, 3, 64), (8, 8))
    with pytest.raises(ValueError, match="not a MambaCSR scan name"):
        mambacsr_order("z8")


def test_orders_hold_no_state_dict_entries():
    module = torch.nn.Module()
    module.order = cross_scan()
    module.order.scan(torch.randn(1, 2, 4, 4))
    assert module.state_dict() == {}


# ---- pictures ---------------------------------------------------------------------------------------------------
def test_render_colours_by_visit_order_and_writes_png(tmp_path):
    image = render(cross_scan(4), (4, 6), cell=10)
    gap = 5
    assert image.dtype == np.uint8 and image.shape == (4 * 40 + 3 * gap, 60, 3)
    # path 0 (row-major): the last pixel (bottom right) is the brightest, the second pixel darker than the last
    first_panel = image[:40].astype(int).sum(-1)
    assert first_panel[35, 55] > first_panel[5, 15]
    # path 1 (column-major): pixel (1, 0) is visited second, so it is darker than pixel (0, 1)
    second = image[40 + gap:80 + gap].astype(int).sum(-1)
    assert second[15, 2] < second[2, 15]
    path = tmp_path / "cross.png"
    save_png(image, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_clip_and_cross_scale():
    assert render(s2t_scan(), (2, 3, 3), cell=4).shape[1] == 2 * 12 + 2
    assert render(cross_scale_scan(4), (8, 8), cell=2).shape[0] == 4 * 16 + 3 * 2


def test_render_schedule_draws_each_order_in_block_order():
    schedule = dual_interleaved(local=2, global_=4)  # [w2, c_w2, w4, c_w4], each with its reverse
    image = render(schedule, (4, 4), cell=3)
    panel, gap, column_gap = 12, 2, 4
    assert image.shape == (2 * panel + gap, 4 * panel + 3 * column_gap, 3)
    for i, entry in enumerate(schedule.orders):
        left = i * (panel + column_gap)
        np.testing.assert_array_equal(image[:, left:left + panel], render(entry, (4, 4), cell=3))
    # the columns differ: row-major 2x2 windows visit pixel (0, 1) second, column-major ones pixel (1, 0)
    assert not np.array_equal(image[:, :panel], image[:, panel + column_gap:2 * panel + column_gap])


def test_render_clip_orders_draw_frames_side_by_side():
    image = render(t2s_scan(), (3, 2, 2), cell=4)
    assert image.shape == (8, 3 * 8 + 2 * 2, 3)
    # time-major: pixel (0, 1) of frame 2 is visited at step 5, before pixel (1, 0) of frame 0 (step 6);
    # frame-major would visit it last of all
    frame0, frame2 = image[:, :8].astype(int).sum(-1), image[:, 20:].astype(int).sum(-1)
    assert frame2[0, 7] < frame0[7, 0]  # cell corners: away from the traced line


@pytest.mark.parametrize(("order", "shape"), [(s2t_scan(), (8, 8)), (cross_scan(4), (2, 4, 4))])
def test_render_names_a_shape_of_the_wrong_rank(order, shape):
    with pytest.raises(ValueError, match="render it on a shape"):
        render(order, shape)


# ---- gradients and the non-native gather ----------------------------------------------------------------------
GRAD_CASES = {
    "cross4": (cross_scan(4), [(5, 7)]),
    "w3_padding_pair": (bidirectional(Windowed(3, column_major=True)), [(5, 7)]),
    "cross_scale": (cross_scale_scan(4), [(8, 4), (4, 2)]),
}


@pytest.mark.parametrize("name", GRAD_CASES)
def test_scan_and_merge_are_differentiable(name):
    order, shapes = GRAD_CASES[name]
    maps = [torch.randn(2, 3, *s, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(lambda *m: order.scan(*m), maps)
    paths = torch.randn(2, order.num_paths, 3, order.seq_len(shapes[0]), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: order.merge(p, shapes[0]), (paths,))
    assert torch.autograd.gradcheck(lambda p: order.merge_sum(p, shapes[0]), (paths,))


@pytest.mark.skipif("native" not in available_backends("path_gather"), reason="compares with the native kernel")
@pytest.mark.parametrize("name", GRAD_CASES)
def test_torch_gather_fallback_matches_native(name):
    order, shapes = GRAD_CASES[name]
    maps = [torch.randn(2, 3, *s) for s in shapes]
    native = order.scan(*maps), order.merge_sum(order.scan(*maps), shapes[0])
    with use_backend("path_gather", "torch"):
        fallback = order.scan(*maps), order.merge_sum(order.scan(*maps), shapes[0])
    assert torch.equal(native[0], fallback[0]) and torch.allclose(native[1], fallback[1])
    half = order.scan(*[m.half() for m in maps])     # float16 always takes the torch path
    assert torch.equal(half, native[0].half())


# ---- the path gather as a custom op -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["scan", "merge", "merge_sum"])
def test_path_gather_op_passes_opcheck(mode):
    order, shape = bidirectional(Windowed(3)), (4, 5)                # padding tokens in the paths
    paths, inverse = order.paths(shape, "cpu"), order.inverse(shape, "cpu")
    if mode == "scan":
        args = (torch.randn(2, 3, 20, dtype=torch.float64), paths, inverse, True, False)
    else:
        args = (torch.randn(2, 2, 3, paths.shape[1], dtype=torch.float64), inverse, paths, False, mode == "merge_sum")
    args[0].requires_grad_()
    torch.library.opcheck(torch.ops.ssmblocks.path_gather.default, args)
    assert torch.equal(path_gather(*args), path_gather_ref(*args))


class _OrderMixer(torch.nn.Module):
    """scan -> per-path, per-channel scaling -> merge_sum: a parameterised stand-in for a mixer."""

    def __init__(self, order, channels=3):
        super().__init__()
        self.order = order
        self.weight = torch.nn.Parameter(torch.randn(order.num_paths, channels, 1))

    def forward(self, x):
        return self.order.merge_sum(self.order.scan(x) * self.weight, x.shape[2:])


SYMBOLIC_CASES = {
    "cross4": (cross_scan(4), (6, 9), (11, 5)),
    "w4_pair_padding": (bidirectional(Windowed(4, column_major=True)), (6, 9), (13, 8)),
    "w3_rowwin_colpix": (Windowed(3, windows="row", pixels="col"), (7, 4), (5, 10)),
    "medvsr_windows": (WindowPartition(4), (6, 9), (9, 13)),
    "s2t": (s2t_scan(), (2, 5, 6), (3, 4, 7)),
    "t2s": (t2s_scan(), (2, 5, 6), (4, 3, 3)),
    "diagonals": (concat(Diagonal(), AntiDiagonal().reversed()), (6, 9), (11, 5)),
}


@pytest.mark.parametrize("name", SYMBOLIC_CASES)
def test_tables_build_on_symbolic_sizes_under_export(name):
    order, first, second = SYMBOLIC_CASES[name]
    module = _OrderMixer(order)
    dims = {i + 2: torch.export.Dim(f"d{i}", min=2, max=64) for i in range(len(first))}
    exported = torch.export.export(module, (torch.randn(1, 3, *first),), dynamic_shapes=(dims,))
    x = torch.randn(1, 3, *second)
    assert torch.allclose(exported.module()(x), module(x), atol=1e-6)
    if not isinstance(order, WindowPartition):
        assert "ssmblocks.path_gather" in str(exported.graph)


def test_cross_scale_exports_with_sizes_that_are_multiples_of_the_window():
    order = cross_scale_scan(4)

    class Fuse(torch.nn.Module):
        def forward(self, fine, coarse):
            return order.merge_sum(order.scan(fine, coarse), fine.shape[2:])

    h, w = torch.export.Dim("h", min=1, max=8), torch.export.Dim("w", min=1, max=8)     # in windows of 4
    fine, coarse = torch.randn(1, 2, 8, 12), torch.randn(1, 2, 4, 6)
    shapes = ({2: 4 * h, 3: 4 * w}, {2: 2 * h, 3: 2 * w})
    exported = torch.export.export(Fuse(), (fine, coarse), dynamic_shapes=shapes)
    fine, coarse = torch.randn(1, 2, 16, 8), torch.randn(1, 2, 8, 4)
    assert torch.allclose(exported.module()(fine, coarse), Fuse()(fine, coarse))


def test_compile_fullgraph_with_dynamic_sizes_matches_eager():
    module = _OrderMixer(bidirectional(Windowed(4)))
    compiled = torch.compile(module, fullgraph=True, dynamic=True, backend="aot_eager")
    for shape in ((5, 7), (9, 6)):
        x = torch.randn(1, 3, *shape, requires_grad=True)
        out = compiled(x)
        assert torch.allclose(out, module(x), atol=1e-6)
        (grad,) = torch.autograd.grad(out.sum(), x)
        (expected,) = torch.autograd.grad(module(x).sum(), x)
        assert torch.allclose(grad, expected, atol=1e-6)


# ---- the shared, bounded index cache ----------------------------------------------------------------------------
@pytest.fixture
def empty_cache():
    budget = index_cache.max_bytes
    index_cache.clear()
    yield index_cache
    index_cache.clear()
    index_cache.max_bytes = budget


def test_orders_are_values():
    assert cross_scan(4) == cross_scan(4) and hash(cross_scan(4)) == hash(cross_scan(4))
    assert mambacsr_order("c_w8_flip") == Windowed(8, column_major=True).reversed()
    assert Windowed(8) == Windowed(8, windows="row", pixels="row")
    assert Windowed(8) != Windowed(16) and Windowed(8) != Windowed(8, column_major=True)
    assert Windowed(8) != WindowPartition(8) and RowMajor() != ColMajor()
    assert CrossScale(8, flip=True) != CrossScale(8) and s2t_scan() != t2s_scan()
    assert len({cross_scan(4), cross_scan(4), cross_scan(2)}) == 2


def test_equal_orders_share_one_table(empty_cache):
    x = torch.randn(1, 2, 6, 7)
    first, second = cross_scan(4), cross_scan(4)
    first.scan(x)
    assert len(empty_cache) == 1
    assert second.paths((6, 7), "cpu") is first.paths((6, 7), "cpu")
    second.merge_sum(second.scan(x), (6, 7))
    assert len(empty_cache) == 1
    Windowed(4).scan(x)
    assert len(empty_cache) == 2


def test_cache_is_bounded_by_bytes_and_least_recently_used(empty_cache):
    order = cross_scan(4)
    key = {side: (order, (10, side), torch.device("cpu")) for side in range(10, 41)}
    entry = {}
    for side in (10, 11, 12):
        before = empty_cache.nbytes
        order.paths((10, side), "cpu")
        entry[side] = empty_cache.nbytes - before
    assert entry[10] >= 2 * 4 * 100 * 8                    # at least the paths and their inverse, (4, 100) int64
    empty_cache.max_bytes = sum(entry.values())             # exactly full
    assert len(empty_cache) == 3
    order.paths((10, 10), "cpu")                            # touch the oldest: (10, 11) is now the least recent
    order.paths((10, 13), "cpu")                            # larger than (10, 11): evicts (10, 11), then (10, 12)
    assert key[10] in empty_cache and key[13] in empty_cache
    assert key[11] not in empty_cache and key[12] not in empty_cache
    for side in range(14, 40):
        order.scan(torch.randn(1, 1, 10, side))
        assert 0 < empty_cache.nbytes <= empty_cache.max_bytes
    empty_cache.max_bytes = entry[10]                       # lowering the budget evicts at once
    assert empty_cache.nbytes <= entry[10]
    big = order.paths((10, 40), "cpu")                      # larger than the whole budget: used, not kept
    assert big.shape == (4, 400) and key[40] not in empty_cache
    empty_cache.clear()
    assert len(empty_cache) == 0 and empty_cache.nbytes == 0
    with pytest.raises(ValueError, match="budget must be >= 0 bytes"):
        empty_cache.max_bytes = -1


def test_tables_built_in_inference_mode_can_be_saved_for_backward(empty_cache):
    order = cross_scan(4)
    with torch.inference_mode():
        order.merge_sum(order.scan(torch.randn(1, 2, 5, 6)), (5, 6))
    assert not order.paths((5, 6), "cpu").is_inference()
    x = torch.randn(1, 2, 5, 6, requires_grad=True)
    order.merge_sum(order.scan(x), (5, 6)).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 4.0))


# ---- every 2-D order through SS2D -----------------------------------------------------------------------------
SS2D_ORDERS = {
    "row": RowMajor(),
    "col": ColMajor(),
    "cross1": cross_scan(1),
    "cross2": cross_scan(2),
    "cross4": cross_scan(4),
    "w4": Windowed(4),
    "c_w4_pair": bidirectional(Windowed(4, column_major=True)),
    "w3_rowwin_colpix": Windowed(3, windows="row", pixels="col"),
    "dual_interleaved_entry": dual_interleaved(4, 8)[3],
    "mixed": concat(Windowed(4), Windowed(4, column_major=True).reversed()),
    "window_partition": WindowPartition(4),
}


@pytest.mark.parametrize("order", SS2D_ORDERS.values(), ids=SS2D_ORDERS.keys())
def test_every_2d_order_runs_in_ss2d(order):
    # CrossScale is a two-input order (fine and coarse map): it belongs to a cross-scale mixer, not SS2D
    from ssmblocks.blocks.ss2d import SS2D

    mixer = SS2D(8, d_state=4, expand=1.0, scan_order=order)
    x = torch.randn(2, 6, 9, 8, requires_grad=True)                  # (B, H, W, C), 2x3 windows of 4 (padded)
    out = mixer(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert x.grad.abs().sum() > 0 and mixer.A_logs.grad.abs().sum() > 0


def test_path_gather_refuses_what_it_cannot_do():

    src, index = torch.rand(1, 2, 6), torch.arange(6).view(1, 6)
    with pytest.raises(TypeError, match=r"int64 indices, got index torch\.int32"):
        path_gather(src, index.int(), index, True, False)
    with pytest.raises(ValueError, match="shared_source and sum_paths together"):
        path_gather(src, index, index, True, True)


# ---- writing a scan order: mistakes caught where they are made -------------------------------------------------
class _Stripes(ScanOrder):
    """A user-written order: row-major inside vertical stripes of the given widths."""

    def __init__(self, widths, paths=1):
        self.widths, self.num_paths = widths, paths

    def build_paths(self, shape):
        return torch.arange(shape[0] * shape[1])[None]


def test_unhashable_parameters_are_refused_at_construction():
    with pytest.raises(TypeError, match=r"_Stripes.widths = \[2, 3\].*must be hashable \(a tuple instead of a list"):
        _Stripes([2, 3])
    assert _Stripes((2, 3)) == _Stripes((2, 3))


def test_a_path_count_that_build_paths_does_not_return_is_refused():
    with pytest.raises(ValueError, match=r"returned a tensor of shape \(1, 12\); it must be \(num_paths=2, L\)"):
        _Stripes((2,), paths=2).scan(torch.rand(1, 3, 3, 4))


def test_the_default_repr_shows_the_parameters():
    assert repr(_Stripes((2, 3))) == "_Stripes(widths=(2, 3), num_paths=1)"


def test_blocked_walk_is_public():
    rows, cols = ssmblocks.scan_orders.blocked_walk(4, 4, (2,), (False, False))
    assert rows.shape == cols.shape == (16,)
