"""The `ssmblocks` command, run in-process on small images and CI-size models."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ssmblocks
from ssmblocks.cli import main
from ssmblocks.inference import write_image
from ssmblocks.metrics import calculate_psnr


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An official-format (BasicSR {'params': ...}) checkpoint of the CI-size light x4 MambaIR."""
    torch.manual_seed(0)
    model = ssmblocks.create_model("test_mambair_light")
    path = tmp_path_factory.mktemp("ckpt") / "light.pth"
    torch.save({"params": model.state_dict()}, path)
    return path


def _image(path, size=(12, 10), seed=0):
    array = np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)
    Image.fromarray(array).save(path)
    return array


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_info(capsys):
    code, out, _ = _run(capsys, "list", "test_mambair*")
    assert code == 0 and out.split() == ["test_mambair_dn", "test_mambair_light", "test_mambair_sr",
                                         "test_mambairunet", "test_mambairv2"]
    code, out, _ = _run(capsys, "list", "mambair_car*", "--pretrained")
    assert code == 0 and "mambair_car.q10" in out and "gdrive" in out
    code, out, _ = _run(capsys, "info", "test_mambair_light", "--size", "8x8")
    assert code == 0
    for expected in ("Apache-2.0", "arXiv:2402.15648", "x4, 3 -> 3 channels", "GFLOPs", "scan", "M parameters"):
        assert expected in out
    code, out, _ = _run(capsys, "info", "mambacsr", "--no-flops")               # weights in a Drive folder
    assert code == 0 and ("weights:   Cross-scale-QF10-x4.pth at "
                          "https://drive.google.com/drive/folders/1595CDawG7MIiNgMAAPcAtDpM_PiPKmGS") in out


def test_info_counts_the_cost_of_video_models_on_a_clip(capsys):
    code, out, err = _run(capsys, "info", "test_vsrm", "--size", "8x8")
    assert code == 0 and "input 1x3x3x8x8" in out and "GFLOPs" in out, err    # a clip of max(min_frames, 3)


def test_one_line_errors(capsys, tmp_path, checkpoint):
    code, _, err = _run(capsys, "info", "mambair_sr_x44", "--no-flops")
    assert code == 1 and err.count("\n") == 1 and "did you mean mambair_sr_x4" in err and "`ssmblocks list`" in err
    _image(tmp_path / "ok.png")
    code, _, err = _run(capsys, "restore", tmp_path / "ok.png", "-o", tmp_path / "out", "--model", "qwerty")
    assert code == 1 and "unknown model 'qwerty'" in err and "`ssmblocks list`" in err and "list_models" not in err
    code, _, err = _run(capsys, "list", "nothing*")
    assert code == 1 and "no model matches 'nothing*'" in err
    code, _, err = _run(capsys, "restore", tmp_path / "absent.png", "-o", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1 and "no such file or folder" in err
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, _, err = _run(capsys, "restore", bad, "-o", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1 and "cannot read" in err and err.count("\n") == 1
    _image(tmp_path / "ok.png")
    code, _, err = _run(capsys, "restore", tmp_path / "ok.png", "-o", tmp_path / "default.png")
    assert code == 0, err                                # no --model: the bundled default model (dvmsr, x4)
    assert Image.open(tmp_path / "default.png").size == tuple(4 * s for s in Image.open(tmp_path / "ok.png").size)
    unet = tmp_path / "unet.pth"
    torch.save({"params": ssmblocks.create_model("test_mambairunet").state_dict()}, unet)
    code, _, err = _run(capsys, "restore", tmp_path / "ok.png", "-o", tmp_path / "o.png", "--model",
                        "test_mambair_light", "--checkpoint", unet)
    assert code == 1 and "is a MambaIRUNet checkpoint" in err and err.count("\n") == 1
    assert "drop --model" in err and "ssmblocks.load_checkpoint" not in err     # the command-line way, not Python's
    assert not (tmp_path / "o.png").exists()


def test_restore_files_and_frame_folders(capsys, tmp_path, checkpoint):
    frames = tmp_path / "clips"
    for clip in ("a", "b"):
        (frames / clip).mkdir(parents=True)
        for i in range(2):
            _image(frames / clip / f"{i:03d}.png", seed=i)
    single = tmp_path / "photo.jpg"
    _image(single, size=(9, 11), seed=5)
    code, out, _ = _run(capsys, "restore", frames, "-o", tmp_path / "out", "--checkpoint", checkpoint, "--tile", "8",
                        "--tile-overlap", "2")
    assert code == 0 and "restored 4 images" in out
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert written == ["a", "a/000.png", "a/001.png", "b", "b/000.png", "b/001.png"]
    model = ssmblocks.load_checkpoint(checkpoint)
    expected = ssmblocks.restore(model, str(frames / "b" / "001.png"), tile=8, tile_overlap=2)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "b" / "001.png")), np.asarray(expected))

    code, out, _ = _run(capsys, "restore", single, "-o", tmp_path / "single.png", "--checkpoint", checkpoint,
                        "--protocol", "mambair")
    assert code == 0 and Image.open(tmp_path / "single.png").size == (44, 36)


def test_restore_refuses_inputs_that_would_share_an_output(capsys, tmp_path, checkpoint):
    """photo.png and photo.jpg (or two folders' 0.png) both become out/photo.png: one would silently replace the
    other."""
    (tmp_path / "in").mkdir()
    _image(tmp_path / "in" / "photo.png", seed=1)
    _image(tmp_path / "in" / "photo.jpg", seed=2)
    code, _, err = _run(capsys, "restore", tmp_path / "in", "-o", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 1 and "photo.png" in err and "photo.jpg" in err
    assert not (tmp_path / "out").exists()


def test_restore_refuses_to_write_over_its_inputs(capsys, tmp_path, checkpoint):
    original = _image(tmp_path / "photo.png")
    for output in (tmp_path / "photo.png", tmp_path):
        code, _, err = _run(capsys, "restore", tmp_path / "photo.png", "-o", output, "--checkpoint", checkpoint)
        assert code == 1 and "photo.png" in err
        assert np.array_equal(np.asarray(Image.open(tmp_path / "photo.png")), original)


def test_restore_refuses_a_temporal_chunk_for_an_image_model(capsys, tmp_path, checkpoint):
    _image(tmp_path / "photo.png")
    code, _, err = _run(capsys, "restore", tmp_path / "photo.png", "-o", tmp_path / "out", "--checkpoint", checkpoint,
                        "--temporal-chunk", "4")
    assert code == 1 and "temporal_chunk applies to video models" in err and not (tmp_path / "out").exists()


def test_restore_runs_the_models_protocol_unless_told_otherwise(capsys, tmp_path, checkpoint):
    photo = tmp_path / "tall.png"
    _image(photo, size=(205, 6))  # two MambaIR splits (205 // 200 + 1) per column
    model = ssmblocks.load_checkpoint(checkpoint)
    assert model.pretrained_cfg.protocol == "mambair"
    official = np.asarray(ssmblocks.restore(model, str(photo), protocol="mambair"))
    whole = np.asarray(ssmblocks.restore(model, str(photo), protocol="none"))
    assert not np.array_equal(official, whole)
    for extra, expected in (((), official), (("--protocol", "none"), whole)):
        code, _, _ = _run(capsys, "restore", photo, "-o", tmp_path / "out.png", "--checkpoint", checkpoint, *extra)
        assert code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected)


def test_restore_shards_across_torchrun_processes(capsys, tmp_path, checkpoint, monkeypatch):
    for i in range(4):
        _image(tmp_path / f"{i}.png", seed=i)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, out, _ = _run(capsys, "restore", *(tmp_path / f"{i}.png" for i in range(4)), "-o", tmp_path / "out",
                        "--checkpoint", checkpoint)
    assert code == 0 and "(process 2 of 2)" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png", "3.png"]


def test_writes_are_atomic(tmp_path):
    image = Image.new("RGB", (4, 4))
    target = tmp_path / "out.png"

    class Failing:
        def save(self, path, format=None):
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_image(Failing(), target)
    assert list(tmp_path.iterdir()) == []
    write_image(image, target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_eval_reports_each_image_and_the_mean(capsys, tmp_path, checkpoint):
    (tmp_path / "lq").mkdir()
    (tmp_path / "gt").mkdir()
    for i, name in enumerate(("baby", "bird")):
        hr = np.random.default_rng(i).integers(0, 256, (48, 52, 3)).astype(np.uint8)
        Image.fromarray(hr).save(tmp_path / "gt" / f"{name}.png")
        Image.fromarray(hr).resize((13, 12), Image.BICUBIC).save(tmp_path / "lq" / f"{name}x4.png")
    code, out, _ = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", tmp_path / "lq", "--gt", tmp_path / "gt")
    assert code == 0
    lines = out.strip().splitlines()
    model = ssmblocks.load_checkpoint(checkpoint)
    sr = ssmblocks.restore(model, np.asarray(Image.open(tmp_path / "lq" / "birdx4.png")))
    expected = calculate_psnr(sr, np.asarray(Image.open(tmp_path / "gt" / "bird.png"))[:48, :52], 4,
                              test_y_channel=True)
    assert lines[1].startswith("birdx4.png") and f"PSNR {expected:7.3f} dB" in lines[1]
    per_image = [float(line.split("PSNR")[1].split()[0]) for line in lines[:2]]
    mean = float(lines[2].split("PSNR")[1].split()[0])
    assert abs(mean - np.mean(per_image)) < 1e-3 and "Y, crop 4" in lines[2]
    code, _, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", tmp_path / "gt", "--gt", tmp_path / "lq")
    assert code == 1 and "no ground truth" in err


def test_eval_refuses_ground_truth_larger_than_the_scale_explains(capsys, tmp_path, checkpoint):
    """x8 data through an x4 model: the GT is twice the output, not cropped to its top-left quarter."""
    (tmp_path / "lq").mkdir()
    (tmp_path / "gt").mkdir()
    hr = np.random.default_rng(0).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    Image.fromarray(hr).save(tmp_path / "gt" / "baby.png")
    Image.fromarray(hr).resize((6, 6), Image.BICUBIC).save(tmp_path / "lq" / "baby.png")
    code, out, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", tmp_path / "lq", "--gt", tmp_path / "gt")
    assert code == 1 and "baby.png" in err and "PSNR" not in out


def test_eval_under_torchrun_gathers_every_shard(tmp_path, checkpoint):
    for folder in ("lq", "gt"):
        (tmp_path / folder).mkdir()
    for i in range(3):
        hr = np.random.default_rng(i).integers(0, 256, (28, 28, 3)).astype(np.uint8)
        Image.fromarray(hr).save(tmp_path / "gt" / f"{i}.png")
        Image.fromarray(hr).resize((7, 7), Image.BICUBIC).save(tmp_path / "lq" / f"{i}.png")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "ssmblocks.cli", "eval", "--checkpoint", str(checkpoint), "--lq", str(tmp_path / "lq"),
               "--gt", str(tmp_path / "gt"), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["0.png", "1.png", "2.png"]
    assert lines[3].startswith("mean over 3 images")


def test_convert_writes_a_hub_folder(capsys, tmp_path, checkpoint):
    out_dir = tmp_path / "hub" / "light"
    code, out, _ = _run(capsys, "convert", checkpoint, out_dir)
    assert code == 0 and "local-dir:" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((out_dir / "config.json").read_text())["architecture"] == "mambair_light_x4"
    reloaded = ssmblocks.create_model(f"local-dir:{out_dir}")
    original = ssmblocks.load_checkpoint(checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), original.state_dict().values(),
                                                  strict=True))
    code, _, err = _run(capsys, "convert", checkpoint, out_dir)
    assert code == 1 and "not empty" in err


def test_convert_makes_a_folder_with_the_permissions_of_mkdir(capsys, tmp_path, checkpoint):
    """The folder is staged with mkdtemp (mode 0700) and renamed: it must end up as mkdir would make it."""
    code, _, _ = _run(capsys, "convert", checkpoint, tmp_path / "hub")
    mask = os.umask(0)
    os.umask(mask)
    assert code == 0 and (tmp_path / "hub").stat().st_mode & 0o777 == 0o777 & ~mask


def test_bench_prints_enough_digits(capsys):
    """A tiny model on a tiny input runs at well under a thousandth of a megapixel a second on a busy CPU: the rate
    must still show its digits ("0.000 input megapixels/s" said nothing)."""
    code, out, _ = _run(capsys, "bench", "--model", "test_mambair_sr", "--size", "4", "--repeats", "1")
    assert code == 0 and " ms, " in out and "scan backend" in out
    rate = re.search(r"([0-9.]+) input megapixels/s", out).group(1)
    assert float(rate) > 0 and len(rate.replace(".", "").lstrip("0")) >= 3, out   # three significant digits
    code, out, err = _run(capsys, "bench", "--model", "test_vsrm", "--size", "8", "--repeats", "1")
    assert code == 0 and "3 frames of 8x8" in out, err                             # video: max(min_frames, 3)


def test_digits_keep_three_significant_figures():
    from ssmblocks.cli import _digits

    assert [_digits(v) for v in (0.000123456, 0.0123, 1.5, 12.345, 1234.5, 0.0)] == \
        ["0.000123", "0.0123", "1.50", "12.3", "1234", "0"]


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "ssmblocks.cli", "list", "test_mambair_s*"], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["test_mambair_sr"]


def test_demo_restores_the_bundled_sample_offline(capsys, tmp_path):
    code, out, err = _run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["comparison.png", "lr.png", "restored.png"]
    assert Image.open(tmp_path / "demo" / "comparison.png").size == (3 * 256, 256)
    assert "bicubic x4:       PSNR 20.86 dB" in out and "dvmsr x4:         PSNR 27.20 dB" in out


def test_export_writes_an_onnx_file(capsys, tmp_path):
    code, out, err = _run(capsys, "export", tmp_path / "dvmsr.onnx", "--model", "dvmsr", "--size", "16x16")
    assert code == 0, err
    assert (tmp_path / "dvmsr.onnx").stat().st_size > 1_000_000 and "(1, 3, 16, 16)" in out


def test_info_and_bench_video_models(capsys):
    """Video models are profiled and timed on a clip (1, T, C, H, W), T = max(min_frames, 3), stated in the output."""
    code, out, err = _run(capsys, "info", "test_vsrm", "--size", "16x16")
    assert code == 0, err
    assert "GFLOPs" in out and "3 frames" in out
    code, out, err = _run(capsys, "bench", "--model", "test_vsrm", "--size", "16", "--repeats", "1")
    assert code == 0, err
    assert "3 frames of 16x16" in out


def test_unavailable_device_is_one_line(capsys, tmp_path, checkpoint, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    _image(tmp_path / "in.png")
    for argv in (("bench", "--model", "test_mambair_light", "--size", "8", "--device", "cuda"),
                 ("restore", tmp_path / "in.png", "-o", tmp_path / "out.png", "--checkpoint", checkpoint,
                  "--device", "cuda:0")):
        code, _, err = _run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1, err
        assert "--device cuda" in err and "not available" in err and "available: cpu" in err
    code, _, err = _run(capsys, "bench", "--model", "test_mambair_light", "--size", "8", "--device", "gpu")
    assert code == 1 and err.count("\n") == 1 and "--device gpu" in err


def test_sizes_are_hxw_or_n_everywhere_and_positive(capsys, tmp_path):
    for argv in (("info", "test_mambair_light", "--size", "0x8"), ("export", tmp_path / "m.onnx", "--model",
                 "test_mambair_light", "--size", "0x8"), ("bench", "--model", "test_mambair_light", "--size", "-4")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "sizes are HEIGHTxWIDTH or N" in err and "at least 1" in err, err
    code, out, err = _run(capsys, "info", "test_mambair_light", "--size", "8")
    assert code == 0 and "input 1x3x8x8" in out, err
    code, out, err = _run(capsys, "bench", "--model", "test_mambair_light", "--size", "8x12", "--repeats", "1")
    assert code == 0 and " on 8x12 " in out, err


def test_export_without_the_export_extra_is_one_line(capsys, tmp_path, monkeypatch, checkpoint):
    monkeypatch.setitem(sys.modules, "onnxscript", None)   # `import onnxscript` raises ImportError
    code, _, err = _run(capsys, "export", tmp_path / "m.onnx", "--checkpoint", checkpoint, "--size", "8")
    assert code == 1 and err.count("\n") == 1, err
    assert "pip install 'ssmblocks[export]'" in err and "onnxscript" in err
    assert not (tmp_path / "m.onnx").exists()


def test_restore_output_names(capsys, tmp_path, checkpoint):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.bmp", seed=1)
    code, _, err = _run(capsys, "restore", tmp_path / "a.png", tmp_path / "b.bmp", "-o", tmp_path / "two.png",
                        "--checkpoint", checkpoint)
    assert code == 1 and err.count("\n") == 1 and "names a file" in err and "name a folder" in err, err
    assert not (tmp_path / "two.png").exists()
    rgba = np.random.default_rng(0).integers(0, 256, (6, 5, 4)).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="JPEG has no alpha channel: the alpha channel is dropped"):
        code, _, err = _run(capsys, "restore", tmp_path / "rgba.png", "-o", tmp_path / "x.jpg", "--checkpoint",
                            checkpoint)
    assert code == 0, err
    assert Image.open(tmp_path / "x.jpg").mode == "RGB" and Image.open(tmp_path / "x.jpg").size == (20, 24)


def test_python_dash_m_is_the_command_and_version(capsys):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-m", "ssmblocks", "list", "test_mambair_l*"], capture_output=True,
                            text=True, cwd=root, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["test_mambair_light"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"ssmblocks {ssmblocks.__version__}"


def test_help_texts(capsys):
    def help_of(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--help"])
        assert exit_info.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    assert "model a registered name (default: dvmsr, the bundled model)" in help_of("info")
    text = help_of("convert")
    assert "checkpoint an official" in text and "out_dir a new folder" in text
    text = help_of("bench")
    assert "--model MODEL a registered name (default: mambair_light_x4)" in text
    assert "--repeats REPEATS timed runs; the median is reported (default: 3)" in text
    from ssmblocks.train.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(default: the model's; must match it)" in text and "(default: None)" not in text
    assert "--steps STEPS optimiser steps (default: 1000)" in text


@pytest.mark.parametrize("value", ["{bad", "[1, 2]"])
def test_train_model_kwargs_must_be_a_json_object(capsys, value):
    from ssmblocks.train.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--model", "dvmsr", "--data", "d", "--out", "o", "--model-kwargs", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--model-kwargs: must be a JSON object, e.g. '{\"embed_dim\": 48}'" in err and value in err, err
    args = build_parser().parse_args(["--model", "dvmsr", "--data", "d", "--out", "o", "--model-kwargs", '{"a": 1}'])
    assert args.model_kwargs == {"a": 1}


# ---- checks before compute, messages -----------------------------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch):
    """Building or loading any model fails the test: what is checked must be checked before a model exists."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(ssmblocks, "create_model", refuse)
    monkeypatch.setattr(ssmblocks, "load_checkpoint", refuse)


def test_an_unknown_output_suffix_is_refused_before_the_model_is_built(capsys, tmp_path, no_model):
    _image(tmp_path / "a.png")
    for argv in (("-o", tmp_path / "out" / "a.xyz"), ("-o", tmp_path / "out", "--ext", "xyz")):
        code, _, err = _run(capsys, "restore", tmp_path / "a.png", *argv)
        assert code == 1 and err.count("\n") == 1 and "xyz" in err and ".png" in err, err
    assert not (tmp_path / "out").exists()


def test_a_photo_passed_as_checkpoint_is_not_a_checkpoint(capsys, tmp_path):
    _image(tmp_path / "photo.png")
    code, _, err = _run(capsys, "restore", tmp_path / "photo.png", "-o", tmp_path / "out", "--checkpoint",
                        tmp_path / "photo.png")
    assert code == 1 and err.count("\n") == 1 and "photo.png is not a checkpoint" in err
    assert "weights_only" not in err and "Re-running" not in err                # not torch's advice


def test_a_model_without_weights_says_the_command_line_way(capsys, tmp_path):
    _image(tmp_path / "a.png")
    code, _, err = _run(capsys, "restore", tmp_path / "a.png", "-o", tmp_path / "out", "--model", "test_mambair_sr")
    assert code == 1 and "no published weights" in err and "--checkpoint" in err and "pretrained=False" not in err


def test_a_failing_drive_listing_says_it_failed(tmp_path, monkeypatch):
    """gdown is installed (and new enough) but cannot list the folder: the message says the listing failed, not
    that a newer gdown is needed."""
    import types

    from huggingface_hub import constants as hf_constants

    from ssmblocks._weights import resolve_weights

    def unreachable(**kwargs):
        raise OSError("Failed to retrieve folder contents")

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download_folder=unreachable))
    with pytest.raises(ssmblocks.PretrainedUnavailableError) as err:
        resolve_weights(ssmblocks.get_pretrained_cfg("mambacsr"), cache_dir=tmp_path)
    assert "listing it failed" in str(err.value) and "needed" not in str(err.value)


def test_the_grey_to_colour_warning_names_the_file(capsys, tmp_path, checkpoint):
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "grey.png")
    with pytest.warns(UserWarning, match=r"^grey\.png: the model takes colour images"):
        code, _, err = _run(capsys, "restore", tmp_path / "grey.png", "-o", tmp_path / "out", "--checkpoint",
                            checkpoint)
    assert code == 0, err


def test_small_tiles_on_a_small_photo_warn_that_tiling_costs_more(capsys, tmp_path, checkpoint):
    _image(tmp_path / "small.png", size=(100, 100))
    with pytest.warns(UserWarning, match=r"small\.png: tiling costs 3\.\dx the work of the whole image"):
        code, _, err = _run(capsys, "restore", tmp_path / "small.png", "-o", tmp_path / "out", "--checkpoint",
                            checkpoint, "--tile", "64")
    assert code == 0, err


# ---- eval: alignment, baseline, colour space ---------------------------------------------------------------------
def _photo(height, width, seed=0):
    """A textured image (misalignment shows in texture): smooth waves plus noise."""
    y, x = np.mgrid[0:height, 0:width]
    waves = np.stack([np.sin(x / 3.0 + seed), np.cos(y / 2.5), np.sin((x + y) / 4.0)], -1) * 0.35 + 0.5
    noise = np.random.default_rng(seed).normal(0, 0.08, waves.shape)
    return Image.fromarray(((waves + noise).clip(0, 1) * 255).round().astype(np.uint8))


def _pairs(tmp_path, gt_size=(50, 47), from_whole=False, scale=4):
    """lq/ and gt/ folders with one pair; the LQ made from the GT cropped to a multiple of the scale (BasicSR's
    modcrop), or (from_whole) from the whole GT."""
    for folder in ("lq", "gt"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    gt = _photo(*gt_size)
    gt.save(tmp_path / "gt" / "photo.png")
    w, h = gt.width // scale, gt.height // scale
    source = gt if from_whole else gt.crop((0, 0, w * scale, h * scale))
    source.resize((w, h), Image.BICUBIC).save(tmp_path / "lq" / "photo.png")
    return tmp_path / "lq", tmp_path / "gt"


def test_eval_refuses_an_input_made_from_the_uncropped_ground_truth(capsys, tmp_path, checkpoint, monkeypatch):
    lq, gt = _pairs(tmp_path / "whole", from_whole=True)
    code, out, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", lq, "--gt", gt)
    assert code == 1 and err.count("\n") == 1 and "PSNR" not in out
    assert "made from the whole 47x50 photo.png" in err and "Crop the ground truth to 44x48 first" in err
    lq, gt = _pairs(tmp_path / "cropped")                     # made from the modcrop, as benchmarks are: accepted
    code, out, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", lq, "--gt", gt)
    assert code == 0 and "mean over 1 images" in out, err


def test_eval_checks_every_pair_before_the_model_runs(tmp_path, checkpoint, monkeypatch):
    evaluate_module = importlib.import_module("ssmblocks.inference.evaluate")   # the package exports the function
    lq, gt = _pairs(tmp_path, from_whole=True)
    model = ssmblocks.load_checkpoint(checkpoint)
    monkeypatch.setattr(evaluate_module, "restore", lambda *a, **k: pytest.fail("the model ran"))
    with pytest.raises(ValueError, match="made from the whole"):
        ssmblocks.inference.evaluate(model, lq, gt)


def test_eval_bicubic_baseline_column(capsys, tmp_path, checkpoint):
    lq, gt = _pairs(tmp_path, gt_size=(48, 52))
    model = ssmblocks.load_checkpoint(checkpoint)
    report = ssmblocks.inference.evaluate(model, lq, gt, baseline="bicubic")
    lr = Image.open(lq / "photo.png")
    bicubic = np.asarray(lr.resize((lr.width * 4, lr.height * 4), Image.BICUBIC))
    truth = np.asarray(Image.open(gt / "photo.png"))
    assert report.baseline_psnr == pytest.approx(calculate_psnr(bicubic, truth, 4, test_y_channel=True), abs=1e-9)
    code, out, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", lq, "--gt", gt, "--baseline", "bicubic")
    assert code == 0, err
    row, mean = out.strip().splitlines()
    assert f"bicubic PSNR {report.baseline_psnr:7.3f} dB" in row and f"PSNR {report.psnr:7.3f} dB" in row
    assert f"({report.psnr - report.baseline_psnr:+.3f} dB over bicubic)" in mean
    assert ssmblocks.inference.evaluate(model, lq, gt).baseline_psnr is None


def test_eval_measures_in_the_colour_space_of_the_models_protocol(capsys, tmp_path):
    """DVMSR's test script measures RGB with a 4-px border; MambaIR's SR protocol Y with border = scale."""
    from ssmblocks.inference import metric_defaults

    def defaults(name):
        with torch.device("meta"):
            found = metric_defaults(ssmblocks.create_model(name))
        return found.y_channel, found.crop_border

    assert defaults("dvmsr") == (False, 4)
    assert defaults("mambair_sr_x2") == (True, 2) and defaults("mambacsr") == (True, 4)
    assert defaults("mambair_car") == (False, 0) and defaults("medvsr") == (False, 0)
    assert defaults("test_mambair_sr") == (True, 2) and defaults("test_mambair_dn") == (False, 0)   # no protocol
    lq, gt = _pairs(tmp_path, gt_size=(48, 52))
    code, out, err = _run(capsys, "eval", "--lq", lq, "--gt", gt)               # the bundled default model: DVMSR
    assert code == 0 and "(RGB, crop 4: colour space and border from the model's test protocol" in out, err
    code, out, err = _run(capsys, "eval", "--lq", lq, "--gt", gt, "--y-channel")
    assert code == 0 and "(Y, crop 4: colour space as given, border from the model's test protocol" in out, err


def test_every_published_test_protocol_states_its_colour_space_and_border():
    """A family's cfg prose is read for eval's defaults: a new release whose protocol states neither would silently
    get BasicSR's convention (at x1 a border of 0 goes without saying)."""
    from ssmblocks.inference.evaluate import _stated_border, _stated_colour_space

    for name in ssmblocks.list_pretrained():
        cfg = ssmblocks.get_pretrained_cfg(name)
        with torch.device("meta"):
            scale = ssmblocks.create_model(name).contract.scale
        if cfg.metrics:
            assert _stated_colour_space(cfg.test_protocol) is not None, name
            assert scale == 1 or _stated_border(cfg.test_protocol, scale) is not None, name


# ---- library functions the command calls -------------------------------------------------------------------------
def test_restore_paths_mirrors_the_inputs_and_shares_them_out(tmp_path, checkpoint):
    from ssmblocks.inference import plan_restore, restore_paths

    (tmp_path / "in").mkdir()
    for i in range(3):
        _image(tmp_path / "in" / f"{i}.png", seed=i)
    plan = plan_restore([tmp_path / "in"], tmp_path / "out", ext="jpg")
    assert [job.target.name for job in plan.jobs] == ["0.jpg", "1.jpg", "2.jpg"]
    model = ssmblocks.load_checkpoint(checkpoint)
    report = restore_paths(model, plan, rank=1, world_size=2)
    assert (report.images, report.videos) == (1, 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.jpg"]
    with pytest.raises(ValueError, match="would replace its input"):
        plan_restore([tmp_path / "in"], tmp_path / "in", ext="png")


def test_atomic_dir_makes_a_new_folder_at_once_and_moves_files_into_an_old_one(tmp_path):
    from ssmblocks._atomic import atomic_dir

    with pytest.raises(OSError, match="disk full"), atomic_dir(tmp_path / "new") as staging:
        (staging / "a.txt").write_text("partial")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []                                       # nothing left behind
    with atomic_dir(tmp_path / "new") as staging:
        (staging / "a.txt").write_text("a")
        assert not (tmp_path / "new").exists()
    (tmp_path / "new" / "log.txt").write_text("kept")
    with atomic_dir(tmp_path / "new") as staging:
        (staging / "a.txt").write_text("b")
        assert (tmp_path / "new" / "a.txt").read_text() == "a"                  # replaced only at the end
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["a.txt", "log.txt"]
    assert (tmp_path / "new" / "a.txt").read_text() == "b"


# ---- train as a command ------------------------------------------------------------------------------------------
def test_train_is_a_subcommand_with_one_line_errors(capsys, tmp_path):
    code, _, err = _run(capsys, "train", "--model", "test_mambair_sr", "--data", tmp_path / "absent", "--out",
                        tmp_path / "run", "--no-progress")
    assert code == 1 and err.count("\n") == 1 and err.startswith("ssmblocks: error:") and "absent" in err, err
    code, _, err = _run(capsys, "train", "--model", "mambair_sr_x44", "--data", tmp_path, "--out", tmp_path / "r")
    assert code == 1 and "did you mean mambair_sr_x4" in err and "`ssmblocks list`" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0 and "--steps STEPS optimiser steps (default: 1000)" in text
