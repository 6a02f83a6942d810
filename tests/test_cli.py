"""The `ssmblocks` command, run in-process on small images and CI-size models."""

from __future__ import annotations

import importlib.util
import json
import os
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
                                         "test_mambairunet"]
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
    assert code == 1 and err.count("\n") == 1 and "Did you mean: mambair_sr_x4" in err
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
    assert code == 1 and "--temporal-chunk applies to video models" in err and not (tmp_path / "out").exists()


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


def test_bench_and_train_hook(capsys):
    code, out, _ = _run(capsys, "bench", "--model", "test_mambair_sr", "--size", "16", "--repeats", "1")
    assert code == 0 and " ms, " in out and "scan backend" in out
    code, out, err = _run(capsys, "bench", "--model", "test_vsrm", "--size", "8", "--repeats", "1")
    assert code == 0 and "3 frames of 8x8" in out, err                             # video: max(min_frames, 3)
    if importlib.util.find_spec("ssmblocks.train") is None:
        code, _, err = _run(capsys, "train", "--help")
        assert code == 1 and "training is not part of this installation" in err


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
    assert code == 1 and err.count("\n") == 1 and "-o" in err and "a folder" in err, err
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
