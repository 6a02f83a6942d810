"""Real-world faults (issue #24): a second run in a used folder, leftovers of killed runs, non-finite weights, float
and 16-bit images, threads sharing a model, and the one-line errors the command promises for hostile inputs."""

from __future__ import annotations

import importlib
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ssmblocks
from ssmblocks.cli import main
from ssmblocks.inference import restore
from ssmblocks.inference.evaluate import evaluate
from ssmblocks.metrics import calculate_psnr
from ssmblocks.train import TrainConfig, train
from ssmblocks.train.data import Degradation, PairedFrames


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("ssmblocks: error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _images(folder, count=3, size=(24, 24), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def _png16(path, array):
    """A 16-bit PNG written byte by byte (Pillow writes 16-bit grey only): (H, W) grey or (H, W, 3) RGB."""
    height, width = array.shape[:2]
    colour = 0 if array.ndim == 2 else 2
    rows = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


class _Identity(nn.Module):
    """x1, ``channels`` channels: out = in (a 1x1 convolution with identity weights)."""

    def __init__(self, channels=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "dn.pth"
    torch.save({"params": ssmblocks.create_model("test_mambair_dn").state_dict()}, path)
    return path


def _train_args(data, out, *extra):
    return ["train", "--model", "test_mambair_sr", "--data", data, "--out", out, "--batch-size", "2", "--patch-size",
            "16", "--steps", "2", "--no-progress", *extra]


# ---- 4: a second run in the same folder ----------------------------------------------------------------------------
def test_a_second_train_run_in_a_used_folder_is_refused(capsys, tmp_path):
    data, out = _images(tmp_path / "hq"), tmp_path / "run"
    assert _run(capsys, *_train_args(data, out))[0] == 0
    log, weights = (out / "log.jsonl").read_bytes(), (out / "model.safetensors").read_bytes()
    code, _, err = _run(capsys, *_train_args(data, out, "--steps", "3"))
    _one_line_error(code, err, str(out), "--resume", "--overwrite")
    assert (out / "log.jsonl").read_bytes() == log and (out / "model.safetensors").read_bytes() == weights
    assert _run(capsys, *_train_args(data, out, "--overwrite", "--steps", "1"))[0] == 0   # asked for: a new run
    assert [line for line in (out / "log.jsonl").read_text().splitlines()][-1].startswith('{"step": 1')
    with pytest.raises(ValueError, match="--overwrite"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(out), progress=False))


def test_the_command_refuses_a_used_folder_in_a_subprocess(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "training_state.pt").write_bytes(b"an earlier run")
    result = subprocess.run([sys.executable, "-m", "ssmblocks", *map(str, _train_args(tmp_path, out))],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "holds a training run" in result.stderr and (out / "training_state.pt").read_bytes() == b"an earlier run"


# ---- 5: leftovers of killed runs -----------------------------------------------------------------------------------
def test_temporary_files_do_not_carry_a_media_suffix(tmp_path, monkeypatch):
    names = []
    save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: names.append(str(fp)) or save(self, fp, *a, **k))
    ssmblocks.inference.write_image(Image.new("RGB", (4, 4)), tmp_path / "res.png")
    assert len(names) == 1 and names[0].endswith(".part") and "/." in names[0]


def test_a_folder_with_leftovers_of_a_killed_run_restores_trains_and_evaluates(capsys, tmp_path, checkpoint):
    folder = _images(tmp_path / "in", 2)
    (folder / ".res.png.k3j2.png").write_bytes((folder / "0.png").read_bytes()[:60])   # truncated, killed mid-write
    (folder / ".hidden.png").write_bytes(b"not an image")
    code, out, err = _run(capsys, "restore", folder, "-o", tmp_path / "o2", "--checkpoint", checkpoint)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["0.png", "1.png"]
    code, out, err = _run(capsys, "eval", "--checkpoint", checkpoint, "--lq", folder, "--gt", folder)
    assert code == 0 and "mean over 2 images" in out, err
    assert ssmblocks.train.data.list_images(folder) == [folder / "0.png", folder / "1.png"]


_KILLED_WRITER = """
import sys, time
from ssmblocks.inference.images import write_image

class Slow:
    mode = "RGB"

    def save(self, path, format=None):
        with open(path, "wb") as file:
            file.write(b"\\x89PNG half an image")
        print("written", flush=True)
        time.sleep(120)

write_image(Slow(), sys.argv[1])
"""


def test_a_write_killed_mid_way_leaves_a_hidden_part_that_a_folder_run_skips(capsys, tmp_path, checkpoint):
    folder = _images(tmp_path / "in", 1)
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder / "res.png")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
    finally:
        writer.kill()                                        # SIGKILL: no cleanup runs
        writer.wait(timeout=60)
    leftovers = [p.name for p in folder.iterdir() if p.name != "0.png"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".res.png.") and leftovers[0].endswith(".part")
    code, _, err = _run(capsys, "restore", folder, "-o", tmp_path / "out", "--checkpoint", checkpoint)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["0.png"]


def test_resume_clears_the_stale_parts_of_a_killed_save(capsys, tmp_path):
    data, out = _images(tmp_path / "hq"), tmp_path / "run"
    assert _run(capsys, *_train_args(data, out, "--stop-after", "1"))[0] == 0
    stale = [out / ".training_state.pt.x1y2z3.part", out / ".config.json.abcd.part"]
    for path in stale:
        path.write_bytes(b"half a file")
    (out / ".run.q8w7e6").mkdir()                 # an export staging folder of a killed save
    (out / ".run.q8w7e6" / "model.safetensors").write_bytes(b"half")
    (out / "notes.txt").write_text("mine")         # not ours: kept
    assert _run(capsys, *_train_args(data, out, "--resume"))[0] == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert (out / "notes.txt").read_text() == "mine"


# ---- 6: non-finite weights -----------------------------------------------------------------------------------------
@pytest.fixture
def nan_model():
    model = ssmblocks.create_model("test_mambair_dn").eval()
    with torch.no_grad():
        model.conv_last.bias.fill_(float("nan"))
    return model


def test_a_non_finite_output_is_an_error_or_on_request_a_warning(nan_model):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="NaN or Inf"):
        restore(nan_model, x)
    with pytest.warns(UserWarning, match="NaN or Inf"):
        restore(nan_model, x, nonfinite="warn")
    with pytest.raises(ValueError, match="nonfinite must be"):
        restore(nan_model, x, nonfinite="ignore")


def test_nan_weights_fail_restore_and_eval_on_the_command_line(capsys, tmp_path, nan_model):
    path = tmp_path / "nan.pth"
    torch.save({"params": nan_model.state_dict()}, path)
    folder = _images(tmp_path / "in", 1)
    code, _, err = _run(capsys, "restore", folder, "-o", tmp_path / "out", "--checkpoint", path)
    _one_line_error(code, err, "NaN or Inf", "0.png")
    assert not (tmp_path / "out" / "0.png").exists()
    code, out, err = _run(capsys, "eval", "--checkpoint", path, "--lq", folder, "--gt", folder)
    _one_line_error(code, err, "NaN or Inf")
    assert "PSNR" not in out


# ---- 7 and #26: float images ---------------------------------------------------------------------------------------
def test_a_float_tiff_is_read_at_its_values(tmp_path):
    ramp = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "f.tif")
    out = restore(_Identity(1), tmp_path / "f.tif")
    assert out.mode == "F"
    np.testing.assert_allclose(np.asarray(out), ramp, atol=1e-6)
    ssmblocks.inference.write_image(out, tmp_path / "f.png")          # PNG has no float mode: 16-bit grey
    written = np.asarray(Image.open(tmp_path / "f.png"))
    np.testing.assert_allclose(written / 65535, ramp, atol=1e-4)


def test_unclipped_noisy_floats_are_accepted_when_asked(capsys, tmp_path):
    noisy = torch.rand(1, 3, 8, 8) + 0.3 * torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"unclipped=True.*--unclipped"):
        restore(_Identity(), noisy)
    out = restore(_Identity(), noisy, unclipped=True)
    assert torch.allclose(out, noisy.clamp(0, 1), atol=1e-6)
    noisy_tiff = (np.random.default_rng(0).normal(0.5, 0.4, (12, 12))).astype(np.float32)
    Image.fromarray(noisy_tiff).save(tmp_path / "n.tif")
    checkpoint = tmp_path / "dn.pth"
    torch.save({"params": ssmblocks.create_model("test_mambair_dn").state_dict()}, checkpoint)
    code, _, err = _run(capsys, "restore", tmp_path / "n.tif", "-o", tmp_path / "o.tif", "--checkpoint", checkpoint)
    _one_line_error(code, err, "n.tif", "--unclipped")
    code, _, err = _run(capsys, "restore", tmp_path / "n.tif", "-o", tmp_path / "o.tif", "--checkpoint", checkpoint,
                        "--unclipped")
    assert code == 0 and (tmp_path / "o.tif").is_file(), err


# ---- 8: 16-bit images ----------------------------------------------------------------------------------------------
def test_16_bit_frames_train_at_their_range(tmp_path):
    gradient = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    folder = tmp_path / "hq"
    folder.mkdir()
    _png16(folder / "g.png", gradient)
    for channels in (1, 3):
        data = PairedFrames(folder, Degradation("denoise", noise_sigma=0.0), patch_size=None, channels=channels)
        lq, gt = data[0, 0]
        assert gt.shape == (channels, 32, 32)
        expected = torch.from_numpy(gradient / 65535.0).float()
        assert torch.allclose(gt[0], expected, atol=1e-6) and torch.allclose(lq[0], expected, atol=1e-6)
    sr = PairedFrames(folder, Degradation("sr", scale=2), patch_size=None, channels=1)
    lq, gt = sr[0, 0]
    assert lq.shape == (1, 16, 16) and 0.2 < lq.mean() < 0.8 and (lq >= 0.999).float().mean() < 0.1


def test_16_bit_copies_score_as_their_8_bit_originals(tmp_path):
    rng = np.random.default_rng(0)
    gt8 = rng.integers(0, 256, (24, 24)).astype(np.uint8)
    lq8 = np.clip(gt8.astype(int) + rng.integers(-20, 21, gt8.shape), 0, 255).astype(np.uint8)
    for name, lq, gt in (("8", lq8, gt8), ("16", lq8.astype(np.uint16) * 257, gt8.astype(np.uint16) * 257)):
        for kind, array in (("lq", lq), ("gt", gt)):
            (tmp_path / name / kind).mkdir(parents=True)
            Image.fromarray(array).save(tmp_path / name / kind / "a.png")
    scores = [evaluate(_Identity(1), tmp_path / name / "lq", tmp_path / name / "gt", crop_border=0, y_channel=False)
              for name in ("8", "16")]
    assert 15 < scores[0].psnr < 40
    assert abs(scores[0].psnr - scores[1].psnr) < 0.01
    assert abs(calculate_psnr(lq8, gt8, 0) - calculate_psnr(lq8.astype(np.uint16) * 257, gt8.astype(np.uint16) * 257,
                                                             0)) < 1e-9


def test_a_16_bit_colour_png_read_at_8_bits_says_so(tmp_path):
    path = _png16(tmp_path / "c.png", np.random.default_rng(0).integers(0, 65536, (8, 8, 3)).astype(np.uint16))
    with pytest.warns(UserWarning, match=r"c\.png.*16-bit.*8 bits"):
        ssmblocks.inference.read_image(path)
    with pytest.warns(UserWarning, match=r"c\.png.*16-bit.*8 bits"):
        ssmblocks.train.frame_cache.decode_frame(path, 3)


# ---- 10: threads sharing a model -----------------------------------------------------------------------------------
class _Slow(_Identity):
    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        time.sleep(0.002)
        out = super().forward(x)
        self.modes.append(self.training)
        return out


def test_concurrent_restores_run_in_eval_and_leave_the_mode_as_it_was():
    model = _Slow().train()
    errors = []

    def work():
        try:
            for _ in range(15):
                restore(model, torch.rand(1, 3, 8, 8))
        except Exception as err:   # reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert model.training and model.conv.training
    assert model.modes and not any(model.modes)


# ---- one-line errors the command promises --------------------------------------------------------------------------
def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb(path):
    """A 100000x100000 RGB PNG in a few dozen bytes (its pixel data is missing: only the header is read)."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + _chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_names_the_file(capsys, tmp_path, checkpoint):
    bomb = _bomb(tmp_path / "bomb.png")
    code, _, err = _run(capsys, "restore", bomb, "-o", tmp_path / "out", "--checkpoint", checkpoint)
    _one_line_error(code, err, "bomb.png", "10000000000 pixels")


def test_out_of_memory_is_one_line_with_the_way_out(capsys, tmp_path, checkpoint, monkeypatch):
    folder = _images(tmp_path / "in", 1)

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(ssmblocks.inference.folders, "restore", oom)
    code, _, err = _run(capsys, "restore", folder, "-o", tmp_path / "out", "--checkpoint", checkpoint)
    _one_line_error(code, err, "out of memory", "--memory-budget", "--tile")
    monkeypatch.setattr(ssmblocks.inference.folders, "restore",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                                                                           "DefaultCPUAllocator: can't allocate "
                                                                           "memory: you tried to allocate 9 GB")))
    code, _, err = _run(capsys, "restore", folder, "-o", tmp_path / "out", "--checkpoint", checkpoint)
    _one_line_error(code, err, "out of memory", "--memory-budget")


def test_a_large_image_is_tiled_to_fit_the_free_memory_by_default(monkeypatch):
    restore_module = importlib.import_module("ssmblocks.inference.restore")
    tiles = []
    run_tiled = restore_module.run_tiled
    monkeypatch.setattr(restore_module, "run_tiled", lambda *a, **k: tiles.append(k["tile"]) or run_tiled(*a, **k))
    monkeypatch.setattr(restore_module, "_AUTO_BUDGET_PIXELS", 32 * 32)
    monkeypatch.setattr(restore_module, "_free_memory", lambda device: 8 * 2**20)
    model = _Identity()
    x = torch.rand(1, 3, 300, 300)
    out = restore(model, x)
    assert tiles and tiles[0] < 300
    assert torch.allclose(out, x, atol=1e-6)
    tiles.clear()
    restore(model, x, protocol="none")        # the whole image, as asked
    assert tiles == []
    monkeypatch.setattr(restore_module, "_free_memory", lambda device: 2**20)
    assert torch.allclose(restore(model, x), x, atol=1e-6)   # not even a small tile fits: the whole image
    assert tiles == []


def _state_file(tmp_path, content):
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    path = out / "training_state.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return out


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"garbage" * 10, "not a training state"),
    ({"step": 3, "config": {}}, "lacks"),
    (["a list"], "not a training state"),
])
def test_resume_from_a_damaged_state_is_one_line(capsys, tmp_path, content, words):
    data, out = _images(tmp_path / "hq"), _state_file(tmp_path, content)
    code, _, err = _run(capsys, *_train_args(data, out, "--resume"))
    line = _one_line_error(code, err, "training_state.pt", words)
    assert "weights_only" not in line


@pytest.mark.parametrize("budget", ["1" + "0" * 400 + "GB", "-5", "0", "inf"])
def test_memory_budgets_that_are_not_sizes_are_refused(capsys, tmp_path, checkpoint, budget):
    folder = _images(tmp_path / "in", 1)
    code, _, err = _run(capsys, "restore", folder, "-o", tmp_path / "out", "--checkpoint", checkpoint,
                        "--memory-budget", budget)
    _one_line_error(code, err, "memory budget")
    for value in (-5, 0, float("inf"), float("nan"), 1e400):
        with pytest.raises(ValueError, match="memory budget"):
            restore(_Identity(), torch.rand(1, 3, 8, 8), memory_budget=value)


def test_an_existing_folder_with_a_dot_is_an_output_folder(capsys, tmp_path, checkpoint):
    _images(tmp_path, 1)
    (tmp_path / "res.v2").mkdir()
    code, _, err = _run(capsys, "restore", tmp_path / "0.png", "-o", tmp_path / "res.v2", "--checkpoint", checkpoint)
    assert code == 0, err
    assert (tmp_path / "res.v2" / "0.png").is_file()


def test_zero_size_tensors_are_refused():
    for shape in ((1, 3, 0, 8), (0, 3, 8, 8), (1, 3, 8, 0)):
        with pytest.raises(ValueError, match="empty"):
            restore(_Identity(), torch.rand(shape))


def test_tile_overlap_without_a_tile_is_refused(capsys, tmp_path, checkpoint):
    with pytest.raises(ValueError, match=r"tile_overlap.*tile"):
        restore(_Identity(), torch.rand(1, 3, 8, 8), tile_overlap=4)
    restore(_Identity(), torch.rand(1, 3, 8, 8), tile_overlap=4, memory_budget="1GB")   # the budget's tile: fine
    code, _, err = _run(capsys, "restore", _images(tmp_path / "in", 1), "-o", tmp_path / "out", "--checkpoint",
                        checkpoint, "--tile-overlap", "4")
    _one_line_error(code, err, "--tile-overlap", "--tile")


def test_a_lab_image_gets_no_alpha_band(tmp_path):
    lab = Image.new("LAB", (8, 8), (50, 128, 128))
    out = restore(_Identity(), lab)
    assert out.mode == "RGB"


def test_an_animated_gif_is_refused_naming_its_frames(capsys, tmp_path, checkpoint):
    frames = [Image.new("RGB", (12, 12), colour) for colour in ("red", "blue", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="3 frames"):
        ssmblocks.inference.read_image(tmp_path / "anim.gif")
    code, _, err = _run(capsys, "restore", tmp_path / "anim.gif", "-o", tmp_path / "o.png", "--checkpoint", checkpoint)
    _one_line_error(code, err, "anim.gif", "3 frames")


def test_no_python_advice_on_the_command_line(capsys, tmp_path, monkeypatch):
    def unavailable(*args, **kwargs):
        raise ssmblocks.PretrainedUnavailableError("x has no published weights; build it with pretrained=False")

    monkeypatch.setattr(ssmblocks.cli, "_load_model", unavailable)
    code, _, err = _run(capsys, "export", tmp_path / "m.onnx", "--model", "test_mambair_sr")
    line = _one_line_error(code, err, "--checkpoint")
    assert "pretrained=False" not in line
