"""Video files in `ssmblocks restore`: inputs made and outputs decoded with PyAV directly, tiny models."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

import ssmblocks
from ssmblocks.cli import main
from ssmblocks.inference.video_io import write_video

av = pytest.importorskip("av", reason="video files need the optional PyAV package (pip install 'ssmblocks[video]')")

FPS = Fraction(24)


def _gradient_clip(frames: int = 6, size: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8: a colour gradient moving right by 10 levels a frame."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(size), np.arange(size), indexing="ij")
    return np.stack([(x * 6 + t * 10) % 256, y * 6, (x + y) * 3 + t * 5], -1).astype(np.uint8)


def _encode(frames: np.ndarray, path) -> None:
    """Lossless H.264 (4:4:4, qp 0) with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def _decode(path) -> tuple[np.ndarray, Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, stream.average_rate


def _luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR on BT.601 luma: 4:2:0 video keeps chroma at a quarter of the pixels, which the random-weight models'
    noisy colours do not survive, while luma is stored at full resolution."""
    luma = np.array([0.299, 0.587, 0.114])
    mse = np.mean((a.astype(np.float64) @ luma - b.astype(np.float64) @ luma) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    _encode(_gradient_clip(), path)
    return path


def _checkpoint(tmp_path, name):
    torch.manual_seed(0)
    model = ssmblocks.create_model(name).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_image_model_restores_a_video_frame_by_frame(capsys, tmp_path, clip):
    model, checkpoint = _checkpoint(tmp_path, "test_mambair_sr")
    code, out, err = _run(capsys, "restore", clip, "-o", tmp_path / "sr.mp4", "--model", "test_mambair_sr",
                          "--checkpoint", checkpoint)
    assert code == 0, err
    assert "restored 1 video (6 frames)" in out
    frames, fps = _decode(tmp_path / "sr.mp4")
    assert frames.shape == (6, 64, 64, 3) and fps == FPS
    decoded_input, _ = _decode(clip)
    expected = np.stack([ssmblocks.restore(model, frame) for frame in decoded_input])
    assert _luma_psnr(frames, expected) > 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "sr.mp4", "test_mambair_sr.pth"]


def test_video_model_restores_the_clip(capsys, tmp_path):
    clip = tmp_path / "clip.mp4"
    _encode(_gradient_clip(frames=4, size=16), clip)
    model, checkpoint = _checkpoint(tmp_path, "test_medvsr")
    code, out, err = _run(capsys, "restore", clip, "-o", tmp_path / "sr.mkv", "--model", "test_medvsr",
                          "--checkpoint", checkpoint)
    assert code == 0 and "restored 1 video (4 frames)" in out, err
    frames, fps = _decode(tmp_path / "sr.mkv")
    assert frames.shape == (4, 64, 64, 3) and fps == FPS
    decoded_input, _ = _decode(clip)
    assert _luma_psnr(frames, ssmblocks.restore(model, decoded_input)) > 30


def test_output_folder_receives_the_frames(capsys, tmp_path, clip):
    model, checkpoint = _checkpoint(tmp_path, "test_mambair_sr")
    code, out, err = _run(capsys, "restore", clip, "-o", tmp_path / "frames", "--model", "test_mambair_sr",
                          "--checkpoint", checkpoint)
    assert code == 0 and "restored 1 video (6 frames)" in out, err
    written = sorted((tmp_path / "frames" / "clip").iterdir())
    assert [p.name for p in written] == [f"{i:06d}.png" for i in range(6)]
    decoded_input, _ = _decode(clip)
    for path, frame in zip(written, decoded_input, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), ssmblocks.restore(model, frame))


def test_video_errors_are_one_line(capsys, tmp_path, clip, monkeypatch):
    _, checkpoint = _checkpoint(tmp_path, "test_mambair_sr")
    args = ("--model", "test_mambair_sr", "--checkpoint", checkpoint)
    code, _, err = _run(capsys, "restore", clip, "-o", tmp_path / "sr.png", *args)
    assert code == 1 and err.count("\n") == 1 and "clip.mp4 is a video" in err
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    code, _, err = _run(capsys, "restore", broken, "-o", tmp_path / "sr.mp4", *args)
    assert code == 1 and err.count("\n") == 1 and "cannot read" in err and "broken.mp4" in err
    monkeypatch.setitem(sys.modules, "av", None)
    code, _, err = _run(capsys, "restore", clip, "-o", tmp_path / "sr.mp4", *args)
    assert code == 1
    assert err == ("ssmblocks: error: reading video files needs the optional PyAV package: "
                   "pip install 'ssmblocks[video]'\n")
    assert not (tmp_path / "sr.mp4").exists()


def test_a_failing_write_leaves_no_file(tmp_path):
    def frames():
        yield from _gradient_clip(3)
        raise RuntimeError("the model failed")

    with pytest.raises(RuntimeError, match="the model failed"):
        write_video(frames(), tmp_path / "out.mp4", FPS)
    with pytest.raises(ValueError, match="even sides"):
        write_video(_gradient_clip(2, 33), tmp_path / "odd.webm", FPS)
    assert list(tmp_path.iterdir()) == []
    assert write_video(_gradient_clip(2), tmp_path / "ok.webm", FPS) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ok.webm"]
