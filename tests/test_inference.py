"""restore(): input kinds, padding, tiling, memory budgets, video, and the official protocols compared with
straightforward implementations of the official procedures written here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ssmblocks
from ssmblocks import ModelContract, PretrainedCfg
from ssmblocks.inference import parse_bytes, restore, tile_starts
from tests._official_tiling import official_split_test


class GlobalModel(nn.Module):
    """Deterministic SR 'model' with a global receptive field and a position-dependent output: nearest upscaling,
    plus the tile's mean, plus a ramp over the tile's own rows and columns. Any tiling error shows."""

    def __init__(self, scale: int = 2, in_chans: int = 3, multiple_of: int = 1, protocol: str = "") -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.ones(()))
        self.contract = ModelContract(scale=scale, in_chans=in_chans, out_chans=in_chans, multiple_of=multiple_of)
        self.pretrained_cfg = PretrainedCfg(protocol=protocol)

    def forward(self, x):
        up = F.interpolate(x, scale_factor=self.scale, mode="nearest") * self.weight
        h, w = up.shape[-2:]
        rows = torch.linspace(0, 0.1, h, dtype=x.dtype).view(h, 1)
        cols = torch.linspace(0, 0.05, w, dtype=x.dtype).view(1, w)
        return 0.8 * up + 0.1 * x.mean(dim=(-1, -2, -3), keepdim=True) + rows + cols


class PointwiseModel(GlobalModel):
    """Output at each pixel depends only on that input pixel: every tiling gives the whole-image result."""

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale, mode="nearest") * 0.9 * self.weight + 0.05


# ---- official protocols ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(410, 230), (199, 401), (57, 33)])
def test_mambair_protocol_matches_the_official_procedure(size):
    model = GlobalModel(scale=2)
    lq = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 0.5
    expected = official_split_test(model, lq, 2, base=200, shave_div=10)
    assert torch.equal(restore(model, lq, protocol="mambair"), expected.clamp(0, 1))


@pytest.mark.parametrize("size", [(400, 200), (150, 385)])
def test_mambacsr_protocol_matches_the_official_procedure(size):
    model = GlobalModel(scale=4)
    lq = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1)) * 0.5
    expected = official_split_test(model, lq, 4, base=192, shave_div=4, mirror=64)
    out = restore(model, lq, protocol="mambacsr")
    assert torch.equal(out, expected.clamp(0, 1))
    # not the same as the MambaIR preset or the whole image: the protocol matters
    assert not torch.equal(out, restore(model, lq, protocol="mambair"))


def test_mambair_protocol_with_a_zoo_model():
    model = ssmblocks.create_model("test_mambair_light")
    lq = torch.rand(1, 3, 205, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = official_split_test(model.eval(), lq, 4, base=200, shave_div=10)
    model.train()
    assert torch.allclose(restore(model, lq, protocol="mambair"), expected.clamp(0, 1), atol=1e-6)
    assert model.training  # the caller's mode is restored


def test_whole_image_protocols_run_the_model_once():
    model = GlobalModel()
    lq = torch.rand(1, 3, 250, 30)
    whole = model(lq).clamp(0, 1)
    for name in ("dvmsr", ""):
        assert torch.equal(restore(model, lq, protocol=name), whole)
    with pytest.raises(ValueError, match="unknown protocol 'swinir'"):
        restore(model, lq, protocol="swinir")
    with pytest.raises(ValueError, match="either protocol or tile"):
        restore(model, lq, protocol="mambair", tile=64)


def test_the_protocol_named_by_the_cfg_is_the_default():
    model = GlobalModel(scale=4, protocol="mambacsr")
    lq = torch.rand(1, 3, 150, 385, generator=torch.Generator().manual_seed(5)) * 0.5
    official = official_split_test(model, lq, 4, base=192, shave_div=4, mirror=64).clamp(0, 1)
    whole = model(lq).clamp(0, 1)
    assert not torch.allclose(official, whole)  # the mirror extension and the splits show in the output
    assert torch.equal(restore(model, lq), official)
    for opt_out in ("none", ""):  # the whole image, as asked
        assert torch.equal(restore(model, lq, protocol=opt_out), whole)
    # a tiling asked for replaces the default protocol; with an explicit split protocol it is an error
    assert torch.equal(restore(model, lq, tile=64), restore(model, lq, tile=64, protocol="none"))
    assert not torch.equal(restore(model, lq, tile=64), official)
    assert torch.equal(restore(GlobalModel(scale=4), lq), whole)  # no protocol in the cfg: the whole image


def test_an_unknown_protocol_is_refused_by_name():
    lq = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"unknown protocol 'mambacsr_v9' named by the model's pretrained cfg"):
        restore(GlobalModel(scale=4, protocol="mambacsr_v9"), lq)
    with pytest.raises(ValueError, match=r"unknown protocol 'tiles'; choose one of"):
        restore(GlobalModel(scale=4), lq, protocol="tiles")


# ---- tiling --------------------------------------------------------------------------------------------------------
def test_tile_starts_cover_the_image_with_the_overlap():
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    assert tile_starts(30, 40, 10) == [0]
    assert tile_starts(64, 32, 0) == [0, 32]
    with pytest.raises(ValueError, match="tile_overlap"):
        tile_starts(100, 40, 40)


@pytest.mark.parametrize(("tile", "overlap"), [(16, 4), (24, 8), (13, 0)])
def test_tiling_a_pointwise_model_is_exact(tile, overlap):
    model = PointwiseModel(scale=3)
    x = torch.rand(2, 3, 37, 29)
    assert torch.allclose(restore(model, x, tile=tile, tile_overlap=overlap), model(x).clamp(0, 1), atol=1e-6)


def test_blending_removes_the_seams_of_naive_tiling():
    model = GlobalModel(scale=2)
    x = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64).contiguous()
    x = x * torch.linspace(0.2, 0.8, 64).view(1, 1, 64, 1)
    whole = model(x).clamp(0, 1)
    naive = restore(model, x, tile=32, tile_overlap=0)
    blended = restore(model, x, tile=32, tile_overlap=12)

    def jump(y):  # the largest step between neighbouring output columns around the tile border (column 64)
        return (y[..., 62:67] - y[..., 61:66]).abs().max().item()

    assert jump(naive) > 2 * jump(whole)
    assert jump(blended) < 1.2 * jump(whole) + 2e-3
    assert (blended - whole).abs().max() < (naive - whole).abs().max()


def test_tiled_zoo_model_is_close_to_the_whole_image():
    model = ssmblocks.create_model("test_mambair_light")
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    whole = restore(model, x)
    naive = restore(model, x, tile=20, tile_overlap=0)
    blended = restore(model, x, tile=24, tile_overlap=8)
    assert blended.shape == whole.shape == (1, 3, 160, 160)
    assert (blended - whole).abs().mean() < (naive - whole).abs().mean()


def test_padding_to_the_size_rule_and_cropping_back():
    seen = []

    class NeedsMultiple(PointwiseModel):
        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
            return super().forward(x)

    model = NeedsMultiple(scale=2, multiple_of=8)
    x = torch.rand(1, 3, 13, 21)
    out = restore(model, x)
    assert seen == [(16, 24)] and out.shape == (1, 3, 26, 42)
    assert torch.allclose(out, PointwiseModel(scale=2)(x).clamp(0, 1))


def test_memory_budget_chooses_a_tile():
    model = ssmblocks.create_model("test_mambair_sr").eval()
    x = torch.rand(1, 3, 48, 40)
    whole = restore(model, x)
    assert torch.equal(restore(model, x, memory_budget="1GB"), whole)  # fits: no tiling
    tiled = restore(model, x, memory_budget="6MB")
    assert tiled.shape == whole.shape and not torch.equal(tiled, whole)
    with pytest.raises(ValueError, match="too small for this model"):
        restore(model, x, memory_budget="10KB")
    assert parse_bytes("2GB") == 2 * 2**30 and parse_bytes("512 MiB") == 512 * 2**20 and parse_bytes(1000) == 1000
    with pytest.raises(ValueError, match="cannot read the memory budget"):
        parse_bytes("lots")


def test_the_memory_estimate_scales_activations_not_weights_with_the_batch(monkeypatch):
    """Probes run one image; the estimate is linear in the batch's pixel count: a batch of 4 needs 4x the per-pixel
    activations and the same intercept."""
    import importlib

    restore_module = importlib.import_module("ssmblocks.inference.restore")   # the package exports the function

    def fake_probe(fn, shape, live, **kwargs):
        live.peak = 1000 + 10 * shape[-2] * shape[-1]      # an intercept of 1000 bytes, 10 bytes per pixel

    estimates = []
    monkeypatch.setattr(restore_module, "run_without_arithmetic", fake_probe)
    monkeypatch.setattr(restore_module, "tile_for_budget", lambda *a, **k: estimates.append(a[:2]))
    info = restore_module.ModelInfo(scale=1, in_chans=3)
    for batch in (1, 4):
        x = torch.zeros(batch, 3, 100, 100)
        restore_module._budget_tile(lambda t: t, x, info, 2**30)
        canvas = 4 * 100 * 100 * (1 + 2 * batch * 3) + x.numel() * 4
        per_pixel, fixed = estimates[-1]
        overhead = restore_module._MEMORY_OVERHEAD
        assert per_pixel == pytest.approx(10 * batch * overhead) and fixed - canvas == pytest.approx(1000 * overhead)


# ---- input kinds -----------------------------------------------------------------------------------------------------
def test_outputs_are_clamped_but_models_are_not():
    model = GlobalModel(scale=1)
    x = torch.ones(1, 3, 8, 8)
    assert model(x).max() > 1
    assert restore(model, x).max() == 1

    class Identity(PointwiseModel):
        def forward(self, x):
            return x

    x = torch.rand(1, 3, 4, 4) * 0.5
    x[0, 0, 0, 0] = 1.0005  # inside the tolerance of the [0, 1] check, changed by clamping
    before = x.clone()
    out = restore(Identity(scale=1), x)
    assert out[0, 0, 0, 0] == 1.0 and torch.equal(x, before)  # the output is clamped, the caller's input is not


def test_a_module_in_train_mode_is_probed_in_eval_mode():
    """A module outside the zoo is probed for its scale; the probe must not update its BatchNorm statistics."""
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).train()
    model[1].running_mean.fill_(0.3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(1, 3, 8, 8)
    out = restore(model, x)
    assert model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(out, model.eval()(x).clamp(0, 1))


def test_uint8_numpy_and_uint16_round_trip():
    model = PointwiseModel(scale=2)
    img = np.random.default_rng(0).integers(0, 256, (9, 7, 3)).astype(np.uint8)
    out = restore(model, img)
    expected = np.round(np.clip(np.repeat(np.repeat(img / 255.0, 2, 0), 2, 1) * 0.9 + 0.05, 0, 1) * 255)
    assert out.dtype == np.uint8 and out.shape == (18, 14, 3)
    assert np.abs(out.astype(int) - expected).max() <= 1
    deep = (img.astype(np.uint16) * 257)
    out16 = restore(model, deep)
    assert out16.dtype == np.uint16 and np.abs(out16.astype(int) // 257 - out.astype(int)).max() <= 1


def test_tensor_integer_images_and_single_images():
    model = PointwiseModel(scale=1)
    x = torch.randint(0, 256, (3, 5, 6), dtype=torch.uint8)
    out = restore(model, x)
    assert out.dtype == torch.uint8 and out.shape == (3, 5, 6)
    assert torch.equal(out, (x / 255 * 0.9 + 0.05).mul(255).round().to(torch.uint8))
    with pytest.raises(ValueError, match="float images in"):
        restore(model, torch.zeros(1, 3, 4, 4, dtype=torch.int64))


def test_pil_rgba_keeps_its_alpha_and_paths_give_images(tmp_path):
    from PIL import Image

    rgba = np.random.default_rng(1).integers(0, 256, (6, 5, 4)).astype(np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    model = PointwiseModel(scale=2)
    out = restore(model, image)
    assert out.mode == "RGBA" and out.size == (10, 12)
    alpha = np.asarray(out)[..., 3].astype(np.float64) / 255
    expected = F.interpolate(torch.from_numpy(rgba[..., 3] / 255.0)[None, None], scale_factor=2, mode="bicubic")
    assert np.abs(alpha - expected.clamp(0, 1)[0, 0].numpy()).max() <= 1 / 255
    path = tmp_path / "in.png"
    image.save(path)
    from_path = restore(model, str(path))
    assert np.array_equal(np.asarray(from_path), np.asarray(out))


def test_a_photo_with_an_exif_orientation_is_restored_upright(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view) is read as it is
    seen, so the restored file (which has no EXIF orientation) looks like the original in a viewer."""
    from PIL import Image

    stored = np.random.default_rng(2).integers(0, 256, (4, 6, 3)).astype(np.uint8)   # 6 wide, 4 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.png"
    Image.fromarray(stored).save(path, exif=exif)
    model = PointwiseModel(scale=2)
    out = restore(model, str(path))
    assert out.size == (8, 12)                                                       # upright: 4 wide, 6 high
    upright = Image.fromarray(np.ascontiguousarray(np.rot90(stored, k=-1)))          # 90 degrees clockwise
    assert np.array_equal(np.asarray(out), np.asarray(restore(model, upright)))


def test_grey_and_colour_conversions_warn():
    colour_model, grey_model = PointwiseModel(scale=1), PointwiseModel(scale=1, in_chans=1)
    grey = np.full((4, 4), 100, np.uint8)
    with pytest.warns(UserWarning, match="repeated on 3 channels"):
        out = restore(colour_model, grey)
    assert out.shape == (4, 4) and out.dtype == np.uint8
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 1] = 200
    with pytest.warns(UserWarning, match="converted to grey"):
        out = restore(grey_model, colour)
    assert out.shape == (4, 4, 1) and abs(int(out[0, 0, 0]) - round((0.587 * 200 / 255 * 0.9 + 0.05) * 255)) <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore(colour_model, colour)


def test_a_colour_photo_through_a_grey_model_gives_a_grey_image(tmp_path):
    from PIL import Image

    grey_model = PointwiseModel(scale=1, in_chans=1)
    photo = Image.fromarray(np.full((4, 5, 3), 200, np.uint8))
    photo.save(tmp_path / "photo.png")
    for source in (photo, tmp_path / "photo.png"):
        with pytest.warns(UserWarning, match="converted to grey"):
            out = restore(grey_model, source)
        assert out.mode == "L" and out.size == (5, 4)
        assert abs(int(np.asarray(out)[0, 0]) - round((200 / 255 * 0.9 + 0.05) * 255)) <= 1


def test_bad_values_are_refused():
    model = PointwiseModel()
    x = torch.rand(1, 3, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        restore(model, x)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        restore(model, torch.full((1, 3, 4, 4), 200.0))
    with pytest.raises(ValueError, match="2-D tensor"):
        restore(model, torch.rand(4, 4))
    with pytest.raises(TypeError, match="got list"):
        restore(model, [1, 2])
    with pytest.raises(FileNotFoundError, match="image file not found"):
        restore(model, "no/such/image.png")


# ---- video --------------------------------------------------------------------------------------------------------
def test_image_models_restore_videos_frame_by_frame():
    model = GlobalModel(scale=2)
    video = torch.rand(2, 3, 3, 10, 12)
    out = restore(model, video)
    assert out.shape == (2, 3, 3, 20, 24)
    for t in range(3):
        assert torch.allclose(out[:, t], model(video[:, t]).clamp(0, 1))
    with pytest.raises(ValueError, match="temporal_chunk applies to video models; GlobalModel is an image model"):
        restore(model, video, temporal_chunk=3)      # would be ignored: refused instead


class TemporalModel(nn.Module):
    """Video 'model' (B, T, C, H, W) -> x2: each frame plus a share of the clip's temporal mean."""

    is_video = True

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.contract = ModelContract(scale=2, input_kind="video")
        self.pretrained_cfg = PretrainedCfg(task="video SR")

    def forward(self, x):
        b, t, c, h, w = x.shape
        up = F.interpolate(x.reshape(b * t, c, h, w), scale_factor=2, mode="nearest").reshape(b, t, c, 2 * h, 2 * w)
        return 0.7 * up + 0.2 * up.mean(1, keepdim=True) * self.weight


def test_video_models_run_in_overlapping_temporal_chunks():
    model = TemporalModel()
    video = torch.rand(1, 6, 3, 6, 5, generator=torch.Generator().manual_seed(4))
    whole = restore(model, video)
    assert torch.allclose(whole, model(video).clamp(0, 1))
    chunked = restore(model, video, temporal_chunk=4, temporal_overlap=2)
    # chunks [0, 4) and [2, 6); in the two shared frames the weights ramp 3/4, 1/4 and 1/4, 3/4
    first, second = model(video[:, :4]).detach(), model(video[:, 2:]).detach()
    expected = torch.cat([first[:, :2], 0.75 * first[:, 2:3] + 0.25 * second[:, :1],
                          0.25 * first[:, 3:4] + 0.75 * second[:, 1:2], second[:, 2:]], 1)
    assert torch.allclose(chunked, expected.clamp(0, 1), atol=1e-6)


@pytest.mark.parametrize(("chunk", "overlap", "message"), [
    (0, 2, r"temporal_chunk must be a positive number of frames, got 0"),
    (2, 2, r"temporal_overlap must be in \[0, temporal_chunk\) = \[0, 2\) frames, got 2"),
    (4, -1, r"temporal_overlap must be in \[0, temporal_chunk\) = \[0, 4\) frames, got -1"),
])
def test_temporal_chunk_errors_name_the_temporal_argument(chunk, overlap, message):
    video = torch.rand(1, 6, 3, 6, 5)
    with pytest.raises(ValueError, match=message):
        restore(TemporalModel(), video, temporal_chunk=chunk, temporal_overlap=overlap)


def test_tile_below_the_minimum_and_overlap_above_half_a_tile_are_refused():
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match=r"tile must be at least 8 input pixels for this model .*got 1"):
        restore(PointwiseModel(scale=2), x, tile=1)
    with pytest.raises(ValueError, match=r"tile must be at least 16 input pixels for this model .*got 12"):
        restore(PointwiseModel(scale=2, multiple_of=16), x, tile=12)
    with pytest.raises(ValueError, match=r"tile_overlap must be in \[0, tile // 2\] = \[0, 8\] .*got 9"):
        restore(PointwiseModel(scale=2), x, tile=16, tile_overlap=9)
    with pytest.raises(ValueError, match=r"tile_overlap must be in \[0, tile // 2\] = \[0, 8\] .*got -1"):
        restore(PointwiseModel(scale=2), x, tile=16, tile_overlap=-1)
    # the default overlap (32) is reduced to half a small tile; an explicit half tile is accepted
    model = PointwiseModel(scale=2)
    assert torch.allclose(restore(model, x, tile=16), restore(model, x, tile=16, tile_overlap=8))


def test_an_image_batch_to_a_video_model_names_the_frames_it_needs():
    model = ssmblocks.create_model("test_vsrm")
    for call in (lambda x: model(x), lambda x: restore(model, x)):
        with pytest.raises(ValueError, match=r"VSRM expects video \(B, T, C, H, W\), got a 4-D .* "
                           r"with T >= 2 frames") as info:
            call(torch.rand(1, 3, 8, 8))
        assert "unsqueeze(1)" not in str(info.value)


def test_a_channels_first_numpy_image_suggests_the_transpose():
    model = PointwiseModel(scale=2)
    with pytest.raises(ValueError, match=r"numpy images are \(H, W, C\) \(channels last\).*\(3, 16, 16\).*"
                                         r"\.transpose\(1, 2, 0\)"):
        restore(model, np.zeros((3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"\(5, 3, 16, 16\).*\.transpose\(0, 2, 3, 1\)"):
        restore(model, np.zeros((5, 3, 16, 16), np.uint8))
    assert restore(model, np.zeros((16, 16, 3), np.uint8)).shape == (32, 32, 3)


def test_float64_input_runs_in_the_models_dtype_and_comes_back_float64():
    """docs/inference.md: the result has the input's dtype; the model runs in its own (float32) parameters."""
    model = ssmblocks.create_model("test_mambair_light")
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = restore(model, x)
    assert out.dtype == torch.float64 and next(model.parameters()).dtype == torch.float32
    assert torch.equal(out, restore(model, x.float()).double())


def test_tiles_that_cost_more_than_twice_the_image_warn():
    """tile=64 with the default overlap (32) on a 100-pixel image: 3x3 tiles of 64x64 hold 3.7x its pixels."""
    model, x = PointwiseModel(), torch.rand(1, 3, 100, 100)
    with pytest.warns(UserWarning, match=r"tiling costs 3\.7x the work of the whole image: 9 tiles of 64 px "
                                         r"overlapping by 32 px"):
        restore(model, x, tile=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restore(model, x, tile=64, tile_overlap=8)               # 2x2 tiles, 1.6x: worth it
        restore(model, x, memory_budget=2 * 2**20)               # a 56-px tile, 2.8x: what fits is no choice to warn of
