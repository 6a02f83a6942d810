"""``ssmblocks app`` without a browser: the models the page offers and how it loads them, what it does with dropped
files (results equal ``ssmblocks.restore``; every bad input gets a message), and the command's options. These parts
need no Gradio; the page in a real browser is tests/test_app_browser.py."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ssmblocks
from ssmblocks.app import jobs
from ssmblocks.app.jobs import RunSettings, run_batch
from ssmblocks.app.models import CHECKPOINT_CHOICE, ModelLoader, model_choices, runtime_options
from ssmblocks.app.serve import exposure_warning
from ssmblocks.cli import main
from ssmblocks.data import bundled_file


@pytest.fixture(scope="module")
def dvmsr():
    return ssmblocks.create_model("dvmsr", pretrained=True).eval()     # bundled: offline


@pytest.fixture
def photo(tmp_path):
    """A 40x28 crop of the bundled sample as a PNG and a JPEG file, and a 16x12 crop (tiny.png)."""
    image = Image.open(bundled_file("sample.png")).convert("RGB").crop((100, 90, 140, 118))
    image.save(tmp_path / "photo.png")
    image.save(tmp_path / "snap.jpg", quality=95)
    image.crop((0, 0, 16, 12)).save(tmp_path / "tiny.png")
    return tmp_path


def test_the_picker_offers_releases_that_can_be_had_here_and_a_checkpoint_file():
    choices = dict((value, label) for label, value in model_choices())
    values = list(choices)
    assert values[0].startswith("dvmsr.") and choices[values[0]] == f"{values[0]} (bundled, offline)"
    assert values[-1] == CHECKPOINT_CHOICE
    assert "mambair_sr_x4.official" in values                             # on the Hugging Face Hub
    gdown = importlib.util.find_spec("gdown") is not None
    for value in values[:-1]:
        source = ssmblocks.get_pretrained_cfg(value).source
        assert source in ("file", "hf-hub", "url") or (source == "gdrive" and gdown), value
    assert not any(value.startswith("test_") for value in values)


def test_a_batch_restores_like_restore_and_offers_png_and_the_original_format(dvmsr, photo, tmp_path):
    outcomes = run_batch(dvmsr, [photo / "photo.png", photo / "snap.jpg"], RunSettings(), tmp_path / "out")
    assert [o.ok for o in outcomes] == [True, True], [o.message for o in outcomes]
    png, jpg = outcomes
    assert png.message == "photo.png: 40x28 (0.0 MP) -> 160x112"
    assert [p.name for p in png.downloads] == ["photo_x4.png"]
    assert [p.name for p in jpg.downloads] == ["snap_x4.png", "snap_x4.jpg"]
    expected = np.asarray(ssmblocks.restore(dvmsr, Image.open(photo / "photo.png")))
    assert np.array_equal(np.asarray(Image.open(png.downloads[0])), expected)
    assert Image.open(png.before).size == Image.open(png.after).size == (160, 112)
    assert np.array_equal(np.asarray(Image.open(png.after)), expected)


def test_bad_inputs_get_messages_and_the_rest_of_the_batch_is_restored(dvmsr, photo, tmp_path):
    (photo / "notes.png").write_text("not an image")
    (photo / "notes.txt").write_text("not an image either")
    Image.new("RGB", (120, 100)).save(photo / "huge.png")
    paths = [photo / "notes.png", photo / "huge.png", photo / "photo.png", photo / "notes.txt"]
    outcomes = run_batch(dvmsr, paths, RunSettings(), tmp_path / "out", max_pixels=10_000)
    by_name = {o.name: o for o in outcomes}
    assert by_name["photo.png"].ok
    assert not by_name["notes.png"].ok and "notes.png is not an image" in by_name["notes.png"].message
    assert "nor a video" in by_name["notes.txt"].message
    assert not by_name["huge.png"].ok
    assert "120x100 (0.0 MP), above this page's limit" in by_name["huge.png"].message
    assert "--max-pixels" in by_name["huge.png"].message
    assert run_batch(dvmsr, [], RunSettings(), tmp_path / "out")[0].message.startswith("drop one or more images")


def test_a_grey_image_in_a_colour_model_is_restored_with_a_note(dvmsr, photo, tmp_path):
    Image.open(photo / "photo.png").convert("L").save(photo / "grey.png")
    (outcome,) = run_batch(dvmsr, [photo / "grey.png"], RunSettings(), tmp_path / "out")
    assert outcome.ok and "the grey input is repeated on 3 channels" in outcome.message
    assert Image.open(outcome.downloads[0]).mode == "L"


def test_tiling_options(dvmsr, photo, tmp_path, monkeypatch):
    facts = jobs.model_facts(dvmsr)
    assert RunSettings(tiling="whole").restore_kwargs(100, facts)[0]["protocol"] == "none"
    kwargs, note = RunSettings(tiling="tiles", tile=64, tile_overlap=48).restore_kwargs(100, facts)
    assert (kwargs["tile"], kwargs["tile_overlap"]) == (64, 32) and "tiles of 64 px" in note
    assert RunSettings(tiling="budget", memory_budget="1GB").restore_kwargs(100, facts)[0]["memory_budget"] == "1GB"
    assert RunSettings().restore_kwargs(100, facts) == ({"device": "cpu", "progress": True}, "")
    with pytest.raises(jobs.InputError, match="unknown tiling"):
        RunSettings(tiling="sideways").restore_kwargs(100, facts)
    monkeypatch.setattr(jobs, "AUTO_TILE_PIXELS", 100)      # "large" images above 100 pixels
    (outcome,) = run_batch(dvmsr, [photo / "tiny.png"], RunSettings(memory_budget="8MB"), tmp_path / "out")
    assert outcome.ok and "large image (0.0 MP): overlapping blended tiles sized to fit 8MB" in outcome.message
    expected = ssmblocks.restore(dvmsr, Image.open(photo / "tiny.png"), memory_budget="8MB")
    assert np.array_equal(np.asarray(Image.open(outcome.downloads[0])), np.asarray(expected))
    (too_small,) = run_batch(dvmsr, [photo / "tiny.png"], RunSettings(memory_budget="1KB"), tmp_path / "out")
    assert not too_small.ok and "memory budget of 0 MiB is too small" in too_small.message


def test_a_video_model_takes_images_as_the_frames_of_one_clip(photo, tmp_path):
    model = ssmblocks.create_model("test_medvsr").eval()
    frame = Image.open(photo / "tiny.png")
    for i in range(3):
        frame.rotate(180 * i).save(photo / f"frame{i}.png")
    paths = [photo / f"frame{i}.png" for i in (2, 0, 1)]
    outcomes = run_batch(model, paths, RunSettings(), tmp_path / "out")
    assert [o.name for o in outcomes] == ["frame0.png", "frame1.png", "frame2.png"] and all(o.ok for o in outcomes)
    clip = np.stack([np.asarray(Image.open(photo / f"frame{i}.png")) for i in range(3)])
    expected = ssmblocks.restore(model, clip)
    for i, outcome in enumerate(outcomes):
        assert np.array_equal(np.asarray(Image.open(outcome.downloads[0])), expected[i])
    (single,) = run_batch(model, [photo / "frame0.png"], RunSettings(), tmp_path / "out")
    assert not single.ok and "needs at least 2 frames, got 1" in single.message
    Image.new("RGB", (8, 8)).save(photo / "small.png")
    (mixed,) = run_batch(model, [photo / "frame0.png", photo / "small.png"], RunSettings(), tmp_path / "out")
    assert not mixed.ok and "must have one size" in mixed.message


def test_a_video_file_is_restored_into_a_video(photo, tmp_path):
    pytest.importorskip("av", reason="video files need PyAV (the video extra)")
    from ssmblocks.inference.video_io import open_video, write_video

    model = ssmblocks.create_model("test_medvsr").eval()
    frame = np.asarray(Image.open(photo / "tiny.png"))
    write_video([frame, frame[::-1].copy(), frame], photo / "clip.mp4", fps=10)
    (outcome,) = run_batch(model, [photo / "clip.mp4"], RunSettings(), tmp_path / "out")
    assert outcome.ok, outcome.message
    assert outcome.message.startswith("clip.mp4: 3 frames of 16x12 -> 64x48")
    with open_video(outcome.video) as reader:
        assert (reader.info.width, reader.info.height, len(list(reader))) == (64, 48, 3)
    assert Image.open(outcome.before).size == (64, 48)


def test_the_loader_detects_checkpoint_files_and_explains_bad_ones(tmp_path):
    loader = ModelLoader()
    with pytest.raises(ValueError, match="choose a checkpoint file"):
        loader.get(CHECKPOINT_CHOICE, None)
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ssmblocks.CheckpointError, match="is not a checkpoint"):
        loader.get(CHECKPOINT_CHOICE, tmp_path / "notes.pth")
    model = loader.get(CHECKPOINT_CHOICE, bundled_file("dvmsr_team07.safetensors"))
    assert model.family == "DVMSR" and not model.training
    assert loader.get(CHECKPOINT_CHOICE, bundled_file("dvmsr_team07.safetensors")) is model    # kept loaded
    half = loader.get(CHECKPOINT_CHOICE, bundled_file("dvmsr_team07.safetensors"), dtype="bfloat16")
    assert next(half.parameters()).dtype == torch.bfloat16
    again = loader.get(CHECKPOINT_CHOICE, bundled_file("dvmsr_team07.safetensors"))     # reloaded, not rounded
    reference = ssmblocks.load_checkpoint(bundled_file("dvmsr_team07.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), reference.parameters(), strict=True))
    with pytest.raises(ValueError, match="unknown precision"):
        loader.get(CHECKPOINT_CHOICE, bundled_file("dvmsr_team07.safetensors"), dtype="float8")
    assert runtime_options(model) == {}
    routed = torch.nn.Module()
    routed.model_args = {"routing": "argmax", "dim": 8}
    assert runtime_options(routed) == {"routing": ("argmax", "gumbel")}


def test_the_command_binds_to_this_computer_unless_told_and_warns_beyond_it():
    assert exposure_warning("127.0.0.1", share=False) is None
    assert exposure_warning("localhost", share=False) is None and exposure_warning("::1", share=False) is None
    assert "anyone who can reach this machine" in exposure_warning("0.0.0.0", share=False)
    assert "public address" in exposure_warning("127.0.0.1", share=True)
    from ssmblocks.cli import _parser

    args = _parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.max_pixels) == ("127.0.0.1", None, False, jobs.DEFAULT_MAX_PIXELS)
    with pytest.raises(SystemExit):
        _parser().parse_args(["app", "--port", "70000"])


def test_the_command_says_how_to_install_gradio_when_it_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)            # import gradio raises ImportError
    monkeypatch.delitem(sys.modules, "ssmblocks.app.page", raising=False)
    with pytest.raises(SystemExit, match=r"the app needs Gradio: pip install 'ssmblocks\[app\]'"):
        main(["app", "--port", "7999"])
