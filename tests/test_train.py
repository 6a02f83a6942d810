"""Training: data pairs, sampler sharding, EMA, schedule, the loop end to end, exact resume, and 2-process DDP."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import ssmblocks
from ssmblocks.train import (
    Degradation,
    ModelEma,
    PairedFrames,
    ShardedBatchSampler,
    TrainConfig,
    main,
    train,
    warmup_cosine,
)
from ssmblocks.train.cli import build_parser
from ssmblocks.train.loop import _objective

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-reproducible numerics: the native scan's multi-threaded backward adds per-thread partial sums in the
    order the threads happen to finish, so two runs with several threads agree only to float rounding. (Tiny
    models also train faster on one thread, the more so on a busy machine.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_images(folder: Path, count: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """Smooth colour images (learnable in a few steps) with a little noise, as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[0], 0:size[1]]
    for i in range(count):
        image = np.stack([np.sin(x / (3 + i)), np.cos(y / (4 + i)), np.sin((x + y) / (5 + i))], -1) * 0.4 + 0.5
        image = image + rng.normal(0, 0.02, image.shape)
        Image.fromarray((image.clip(0, 1) * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _losses(out: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", "test_mambair_sr", "--data", str(data), "--out", str(out), "--batch-size", "2",
            "--patch-size", "16", "--lr", "2e-3", "--no-progress", *extra]


# ---- data ---------------------------------------------------------------------------------------------------------
def test_sr_pairs_are_bicubic_downscaled_crops(tmp_path):
    data = _write_images(tmp_path / "hq")
    dataset = PairedFrames(data, Degradation("sr", 2), patch_size=16, augment=False)
    lq, gt = dataset[(1, 0)]
    assert lq.shape == (3, 8, 8) and gt.shape == (3, 16, 16)
    patch = Image.fromarray((gt.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    expected = np.asarray(patch.resize((8, 8), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    np.testing.assert_array_equal(lq.permute(1, 2, 0).numpy(), expected)
    full = np.asarray(Image.open(data / "001.png"), dtype=np.float32) / 255   # the crop is a crop of that image
    hits = [(t, c) for t in range(0, 25, 2) for c in range(0, 33, 2)
            if np.array_equal(full[t:t + 16, c:c + 16], gt.permute(1, 2, 0).numpy())]
    assert len(hits) == 1


def test_samples_depend_only_on_seed_epoch_and_index(tmp_path):
    dataset = PairedFrames(_write_images(tmp_path / "hq"), Degradation("denoise", noise_sigma=50), patch_size=24)
    lq, gt = dataset[(2, 5)]
    again_lq, again_gt = dataset[(2, 5)]
    assert torch.equal(lq, again_lq) and torch.equal(gt, again_gt)
    assert not torch.equal(dataset[(2, 6)][0], lq)
    noise = (lq - gt).flatten()
    assert noise.std().item() == pytest.approx(50 / 255, rel=0.1)
    assert (lq < 0).any() or (lq > 1).any()   # noisy inputs are not clipped


def test_jpeg_inputs_and_grey_channels(tmp_path):
    dataset = PairedFrames(_write_images(tmp_path / "hq"), Degradation("jpeg", jpeg_quality=10), patch_size=16,
                           channels=1, augment=False)
    lq, gt = dataset[(0, 0)]
    assert lq.shape == gt.shape == (1, 16, 16)
    assert 0 < (lq - gt).abs().mean() < 0.1


def test_paired_folders_stay_aligned_under_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "lq").mkdir()
    (tmp_path / "gt").mkdir()
    for i in range(3):
        small = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
        Image.fromarray(small).save(tmp_path / "lq" / f"{i}.png")
        Image.fromarray(small.repeat(3, 0).repeat(3, 1)).save(tmp_path / "gt" / f"{i}.png")   # nearest x3
    dataset = PairedFrames(tmp_path / "gt", Degradation("sr", 3), lq_dir=tmp_path / "lq", patch_size=12)
    for epoch in range(6):
        lq, gt = dataset[(epoch % 3, epoch)]
        assert torch.equal(lq.repeat_interleave(3, 1).repeat_interleave(3, 2), gt)


def test_video_clips_from_frame_folders(tmp_path):
    _write_images(tmp_path / "videos" / "a", count=4)
    _write_images(tmp_path / "videos" / "b", count=2)
    dataset = PairedFrames(tmp_path / "videos", Degradation("sr", 4), patch_size=16, frames=3)
    assert len(dataset) == 2   # frames 0-2 and 1-3 of video a; b is too short
    lq, gt = dataset[(1, 0)]
    assert lq.shape == (3, 3, 4, 4) and gt.shape == (3, 3, 16, 16)


# ---- the decoded-frame cache --------------------------------------------------------------------------------------
def _paired_folders(root: Path) -> Path:
    """gt/ with 3 images and lq/ with their bicubic x2 downscales (rounded to uint8, as saved)."""
    gt = _write_images(root / "gt", count=3)
    (root / "lq").mkdir()
    for path in gt.iterdir():
        with Image.open(path) as image:
            image.resize((image.width // 2, image.height // 2), Image.Resampling.BICUBIC).save(root / "lq" / path.name)
    return gt


_CACHE_CASES = {   # name: (makes the data under tmp_path, PairedFrames arguments)
    "sr_augmented": (lambda root: _write_images(root / "hq"), {"degradation": Degradation("sr", 2), "patch_size": 16}),
    "denoise": (lambda root: _write_images(root / "hq"), {"degradation": Degradation("denoise"), "patch_size": 24}),
    "grey_jpeg": (lambda root: _write_images(root / "hq"),
                  {"degradation": Degradation("jpeg", jpeg_quality=20), "patch_size": 16, "channels": 1}),
    "lq_dir": (_paired_folders, {"degradation": Degradation("sr", 2), "patch_size": 16, "lq_dir": "lq"}),
    "clips": (lambda root: _write_images(root / "videos" / "a", count=4).parent,
              {"degradation": Degradation("sr", 4), "patch_size": 16, "frames": 3}),
    "whole_frames": (lambda root: _write_images(root / "hq"),
                     {"degradation": Degradation("sr", 3), "patch_size": None, "channels": 1}),
}


def _count_decodes(monkeypatch) -> list[Path]:
    """The paths the frame cache decodes from now on (the decoder itself still runs)."""
    from ssmblocks.train import frame_cache

    decoded, decode = [], frame_cache.decode_frame

    def counting(path: Path, channels: int) -> np.ndarray:
        decoded.append(path)
        return decode(path, channels)

    monkeypatch.setattr(frame_cache, "decode_frame", counting)
    return decoded


@pytest.mark.parametrize("case", list(_CACHE_CASES))
def test_cached_samples_equal_decoded_ones(tmp_path, monkeypatch, case):
    make, kwargs = _CACHE_CASES[case]
    data = make(tmp_path)
    kwargs = {**kwargs, "lq_dir": tmp_path / kwargs["lq_dir"]} if "lq_dir" in kwargs else kwargs
    plain = PairedFrames(data, **kwargs)
    keys = [(index, epoch) for epoch in range(3) for index in range(len(plain))]
    decoded = _count_decodes(monkeypatch)
    filling = PairedFrames(data, **kwargs, cache_dir=tmp_path / "cache")   # writes the entries as it goes
    for key in keys:
        assert all(torch.equal(a, b) for a, b in zip(filling[key], plain[key], strict=True)), key
    frames = len({p for item in plain.items for p in item}) * (2 if "lq_dir" in kwargs else 1)
    assert len(decoded) == frames   # each frame decoded once, however many samples read it
    entries = sorted((tmp_path / "cache").iterdir())
    assert len(entries) == frames and all(e.suffix == ".npy" for e in entries)   # no temporary files left
    reading = PairedFrames(data, **kwargs, cache_dir=tmp_path / "cache")      # a new process: reads the entries
    for key in keys:
        lq, gt = reading[key]
        assert torch.equal(lq, plain[key][0]) and torch.equal(gt, plain[key][1]), key
    assert len(decoded) == frames   # nothing decoded again
    frame = reading.cache.read(plain.items[0][0])
    assert isinstance(frame, np.memmap) and frame.dtype == np.uint8
    assert frame.shape[2:] == (() if kwargs.get("channels") == 1 else (3,))


def test_dataloader_workers_fill_and_share_one_cache(tmp_path):
    data = _write_images(tmp_path / "hq", count=6)
    plain = PairedFrames(data, Degradation("sr", 2), patch_size=16)
    cached = PairedFrames(data, Degradation("sr", 2), patch_size=16, cache_dir=tmp_path / "cache")
    sampler = ShardedBatchSampler(len(plain), batch_size=2, steps=6, seed=1)   # 2 epochs, each image twice
    loader = torch.utils.data.DataLoader(cached, batch_sampler=sampler, num_workers=2)
    for keys, (lq, gt) in zip(sampler, loader, strict=True):
        expected_lq, expected_gt = zip(*(plain[key] for key in keys), strict=True)
        assert torch.equal(lq, torch.stack(expected_lq)) and torch.equal(gt, torch.stack(expected_gt))
    entries = sorted(cached.cache.entry(p).name for p in data.iterdir())
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == entries   # one whole entry per image


def test_cache_entries_follow_the_source_file_and_the_channels(tmp_path, monkeypatch):
    data = _write_images(tmp_path / "hq", count=2)
    rgb = PairedFrames(data, Degradation("sr", 2), patch_size=16, cache_dir=tmp_path / "cache")
    grey = PairedFrames(data, Degradation("sr", 2), patch_size=16, channels=1, cache_dir=tmp_path / "cache")
    before = rgb[(0, 0)]
    assert grey[(0, 0)][1].shape == (1, 16, 16)   # the grey dataset does not read the RGB entries
    assert len(list((tmp_path / "cache").iterdir())) == 2
    source = data / "000.png"
    old_entry = rgb.cache.entry(source)
    _write_images(tmp_path / "other", count=1, seed=7)
    os.replace(tmp_path / "other" / "000.png", source)                    # same name and size, new pixels
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))        # mtime differs even on coarse clocks
    decoded = _count_decodes(monkeypatch)
    after = rgb[(0, 0)]
    assert decoded == [source] and rgb.cache.entry(source) != old_entry
    fresh = PairedFrames(data, Degradation("sr", 2), patch_size=16)[(0, 0)]
    assert torch.equal(after[0], fresh[0]) and torch.equal(after[1], fresh[1])
    assert not torch.equal(after[1], before[1])
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2))        # touched only: a new entry all the same
    rgb[(0, 0)]
    assert decoded == [source, source]


def test_cache_entries_appear_whole_or_not_at_all(tmp_path, monkeypatch):
    from ssmblocks.train import frame_cache

    data = _write_images(tmp_path / "hq", count=1)
    dataset = PairedFrames(data, Degradation("sr", 2), patch_size=16, cache_dir=tmp_path / "cache")
    entry, save = dataset.cache.entry(data / "000.png"), np.save

    def save_then_fail(file, array, **kwargs):
        file.write(b"\x93NUMPY half")
        assert not entry.exists()   # readers see no entry while it is being written
        raise OSError("disk full")

    monkeypatch.setattr(frame_cache.np, "save", save_then_fail)
    with pytest.raises(OSError, match="disk full"):
        dataset[(0, 0)]
    assert list((tmp_path / "cache").iterdir()) == []   # the temporary file is removed
    monkeypatch.setattr(frame_cache.np, "save", save)
    assert torch.equal(dataset[(0, 0)][1], PairedFrames(data, Degradation("sr", 2), patch_size=16)[(0, 0)][1])
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [entry.name]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda entry: entry.write_bytes(entry.read_bytes()[:-100]), "unreadable as .npy"),          # truncated
    (lambda entry: entry.write_bytes(b"not a numpy file at all"), "unreadable as .npy"),
    (lambda entry: np.save(entry, np.zeros((40, 48), np.uint8)), r"of shape \(40, 48\), not \(40, 48, 3\)"),
    (lambda entry: np.save(entry, np.zeros((40, 48, 3), np.float32)), "of dtype float32, not uint8"),
])
def test_a_damaged_cache_entry_is_rebuilt_never_used(tmp_path, monkeypatch, damage, message):
    data = _write_images(tmp_path / "hq", count=1)
    expected = PairedFrames(data, Degradation("sr", 2), patch_size=16)[(0, 3)]
    PairedFrames(data, Degradation("sr", 2), patch_size=16, cache_dir=tmp_path / "cache")[(0, 0)]
    dataset = PairedFrames(data, Degradation("sr", 2), patch_size=16, cache_dir=tmp_path / "cache")
    entry = dataset.cache.entry(data / "000.png")
    damage(entry)
    decoded = _count_decodes(monkeypatch)
    with pytest.warns(RuntimeWarning, match=f"{entry.name} of .*000.png is {message}.*; decoding the source again"):
        sample = dataset[(0, 3)]
    assert torch.equal(sample[0], expected[0]) and torch.equal(sample[1], expected[1]) and len(decoded) == 1
    assert np.array_equal(np.load(entry), np.asarray(Image.open(data / "000.png")))   # rebuilt whole


def test_bad_data_is_refused(tmp_path):
    data = _write_images(tmp_path / "hq", size=(12, 12))
    with pytest.raises(ValueError, match="multiple of the scale 3"):
        PairedFrames(data, Degradation("sr", 3), patch_size=16)
    with pytest.raises(ValueError, match="smaller than the patch size 16"):
        PairedFrames(data, Degradation("sr", 2), patch_size=16)[(0, 0)]
    with pytest.raises(ValueError, match="needs a JPEG quality"):
        Degradation("jpeg")
    with pytest.raises(ValueError, match="scale must be 1"):
        Degradation("denoise", 2)
    with pytest.raises(FileNotFoundError, match="holds no images"):
        PairedFrames(tmp_path, Degradation("sr", 2), patch_size=4)
    with pytest.raises(ValueError, match=r"channels must be 1 \(grey\) or 3 \(RGB\), got 4"):
        PairedFrames(data, Degradation("sr", 2), patch_size=4, channels=4)


def test_sampler_shards_each_epoch_and_resumes_mid_stream():
    def keys(rank: int, start: int = 0) -> list[tuple[int, int]]:
        sampler = ShardedBatchSampler(10, 2, 10, seed=3, rank=rank, world_size=2, start_step=start)
        return [key for batch in sampler for key in batch]

    rank0, rank1 = keys(0), keys(1)
    assert len(rank0) == len(rank1) == 20   # 10 steps x 2, i.e. 4 epochs of 5 per rank
    for epoch in range(4):
        shard0 = {i for i, e in rank0 if e == epoch}
        shard1 = {i for i, e in rank1 if e == epoch}
        assert shard0.isdisjoint(shard1) and shard0 | shard1 == set(range(10))
    assert [i for i, e in rank0 if e == 0] != [i for i, e in rank0 if e == 1]   # reshuffled each epoch
    assert keys(0, start=3) == rank0[6:]


# ---- EMA and schedule ---------------------------------------------------------------------------------------------
def test_ema_update_equals_its_formula():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = ModelEma(model, decay=0.75)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.train()(torch.randn(5, 3))   # moves the BatchNorm running statistics
    ema.update(model)
    current, params = ema.state_dict(), dict(model.named_parameters())
    for name, value in model.state_dict().items():
        if name in params:
            torch.testing.assert_close(current[name], 0.75 * before[name] + 0.25 * value, rtol=0, atol=1e-7)
        else:
            assert torch.equal(current[name], value)   # buffers are copied
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match=r"EMA decay must be in \[0, 1\)"):
        ModelEma(model, decay=1.0)


def test_warmup_cosine_schedule():
    factor = warmup_cosine(steps=10, warmup_steps=2, min_ratio=0.1)
    assert [factor(0), factor(1), factor(2)] == [0.5, 1.0, 1.0]
    assert factor(6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert factor(10) == pytest.approx(0.1)


# ---- the loop -----------------------------------------------------------------------------------------------------
def test_training_lowers_the_loss_and_exports_a_loadable_model(tmp_path):
    data, out = _write_images(tmp_path / "hq"), tmp_path / "run"
    assert main(_args(data, out, "--steps", "24", "--log-every", "4", "--ema-decay", "0.5", "--loss", "fcl",
                      "--clip-grad", "1.0", "--warmup-steps", "2")) == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16, 20, 24]
    assert all(set(r) == {"step", "loss", "lr", "images_per_s"} and r["images_per_s"] > 0 for r in records)
    assert records[-1]["loss"] < 0.8 * records[0]["loss"]
    loaded = ssmblocks.create_model(f"local-dir:{out}")
    ema = torch.load(out / "training_state.pt", weights_only=True)["ema"]
    assert loaded.state_dict().keys() == ema.keys()
    assert all(torch.equal(loaded.state_dict()[k], ema[k]) for k in ema)   # the exported weights are the EMA's
    assert json.loads((out / "config.json").read_text())["architecture"] == "test_mambair_sr"
    cfg = loaded.pretrained_cfg                                               # this run's model, not the release's
    assert cfg.name == "test_mambair_sr.trained" and cfg.metrics == {} and "24 steps" in cfg.notes


def test_resume_continues_exactly(tmp_path):
    data = _write_images(tmp_path / "hq")
    common = ("--steps", "6", "--log-every", "1", "--ema-decay", "0.9", "--warmup-steps", "2")
    assert main(_args(data, tmp_path / "whole", *common)) == 0
    assert main(_args(data, tmp_path / "parts", *common, "--stop-after", "3")) == 0
    assert len(_losses(tmp_path / "parts")) == 3
    with (tmp_path / "parts" / "log.jsonl").open("a") as log:     # a line cut short by a killed process
        log.write('{"step": 4, "lo')
    assert main(_args(data, tmp_path / "parts", *common, "--resume")) == 0
    assert _losses(tmp_path / "parts") == _losses(tmp_path / "whole")
    whole, parts = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "parts"))
    assert all(torch.equal(whole[k], parts[k]) for k in whole)


def test_resume_refuses_a_different_run(tmp_path):
    data, out = _write_images(tmp_path / "hq"), tmp_path / "run"
    assert main(_args(data, out, "--steps", "2")) == 0
    with pytest.raises(ValueError, match="differs in batch_size"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(out), steps=4, batch_size=3,
                          patch_size=16, resume=True, progress=False))
    with pytest.raises(FileNotFoundError, match=r"training_state\.pt does not exist"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "new"), resume=True))


def test_bad_options_are_refused(tmp_path):
    data = _write_images(tmp_path / "hq")
    with pytest.raises(ValueError, match="stop_after must be positive, got 0"):   # 0 is not "unset"
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "z"), stop_after=0))
    assert main(_args(data, tmp_path / "a", "--scale", "3")) == 1   # the model upscales by 2: a one-line error
    x3 = ("--patch-size", "12", "--steps", "1", "--model-kwargs", '{"upscale": 3}')
    assert main(_args(data, tmp_path / "b", *x3, "--scale", "3")) == 0   # another architecture: --scale trusted
    # the built model's scale is its cfg's (x3 here), so no --scale is needed; a wrong --scale is caught at the output
    assert main(_args(data, tmp_path / "c", *x3)) == 0
    # the contract is the built model's: --scale 3 with upscale 2 is refused before any data is read
    with pytest.raises(ValueError, match=r"upscales by 2 \(its contract\), not by --scale 3"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "d"), patch_size=12,
                          batch_size=2, scale=3, model_kwargs={"upscale": 2}, progress=False))
    with pytest.raises(ValueError, match="upscales by 2"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "a"), scale=4))
    with pytest.raises(ValueError, match="both --teacher and --teacher-checkpoint"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "a"), teacher="mambair_sr_x2"))
    model = ssmblocks.create_model("test_mambair_sr")
    model.supports_bf16 = False              # the contract reads it: a model that declares no bf16 support
    with pytest.raises(ValueError, match="does not support bf16"):
        train(TrainConfig(model="test_mambair_sr", data=str(data), out=str(tmp_path / "a"), bf16=True), model=model)


def test_validation_logs_psnr_and_ssim(tmp_path):
    data, val, out = _write_images(tmp_path / "hq"), _write_images(tmp_path / "val", 2, seed=1), tmp_path / "run"
    assert main(_args(data, out, "--steps", "2", "--val-data", str(val), "--data-cache", str(tmp_path / "cache"))) == 0
    record = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and 5 < record["val_psnr"] < 60 and 0 < record["val_ssim"] <= 1
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4 + 2   # training and validation frames, via --data-cache


def test_two_process_ddp_keeps_ranks_identical(tmp_path):
    data, out = _write_images(tmp_path / "hq", count=6), tmp_path / "run"
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(f"""
        import os
        import torch
        from safetensors.torch import save_file
        import ssmblocks
        from ssmblocks.train import TrainConfig, train

        initial = ssmblocks.create_model("test_mambair_sr").state_dict()
        model = train(TrainConfig(model="test_mambair_sr", data={str(data)!r}, out={str(out)!r}, steps=12,
                                  batch_size=2, patch_size=16, lr=2e-3, log_every=3, progress=False))
        state = {{k: v.contiguous() for k, v in model.state_dict().items()}}
        assert not all(torch.equal(state[k], initial[k]) for k in state)
        save_file(state, os.path.join({str(out)!r}, "rank" + os.environ["RANK"] + ".safetensors"))
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    losses = _losses(out)
    assert len(losses) == 4 and losses[-1] < losses[0]   # one log, written by rank 0 only
    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)


def test_distillation_from_a_teacher_checkpoint(tmp_path):
    data = _write_images(tmp_path / "hq")
    assert main(_args(data, tmp_path / "teacher", "--steps", "4")) == 0
    teacher_weights = load_file(str(tmp_path / "teacher" / "model.safetensors"))
    out = tmp_path / "student"
    assert main(_args(data, out, "--steps", "8", "--log-every", "4", "--teacher", "test_mambair_sr",
                      "--teacher-checkpoint", str(tmp_path / "teacher" / "model.safetensors"))) == 0
    assert len(_losses(out)) == 2
    assert load_file(str(out / "model.safetensors")).keys() == teacher_weights.keys()   # the student is exported
    after = load_file(str(tmp_path / "teacher" / "model.safetensors"))
    assert all(torch.equal(after[k], v) for k, v in teacher_weights.items())   # the teacher stays as it was


def test_the_distillation_weight_reaches_the_loss(tmp_path):
    teacher = tmp_path / "teacher.safetensors"
    save_file(ssmblocks.create_model("test_mambair_sr").state_dict(), str(teacher))
    args = build_parser().parse_args(["--model", "test_mambair_sr", "--data", "d", "--out", "o", "--teacher",
                                      "test_mambair_sr", "--teacher-checkpoint", str(teacher),
                                      "--distill-weight", "0.25"])
    config = TrainConfig(**{k: tuple(v) if k == "betas" else v for k, v in vars(args).items()})
    objective = _objective(config, ssmblocks.create_model("test_mambair_sr"))
    assert objective.feature_weight == 0.25 and objective.pixel_weight == 1.0
    with pytest.raises(ValueError, match="distill_weight must not be negative"):
        train(dataclasses.replace(config, distill_weight=-1.0))


class _FrameUpsampler(torch.nn.Module):
    """A user's own video network: (B, T, 3, h, w) -> (B, T, 3, 2h, 2w), one conv and a pixel shuffle per frame."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(2)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        frames = clip.flatten(0, 1)
        return self.shuffle(self.conv(frames)).unflatten(0, clip.shape[:2])


def test_any_module_trains_on_video_clips(tmp_path):
    for video in "ab":
        _write_images(tmp_path / "videos" / video, count=3, seed=ord(video))
    out = tmp_path / "run"
    config = TrainConfig(model="frame_upsampler", data=str(tmp_path / "videos"), out=str(out), scale=2, frames=2,
                         steps=30, batch_size=2, patch_size=16, lr=1e-2, log_every=10, loss="charbonnier",
                         progress=False)
    model = train(config, model=_FrameUpsampler())
    losses = _losses(out)
    assert len(losses) == 3 and losses[-1] < 0.7 * losses[0]
    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert not (out / "config.json").exists()   # not a zoo model: weights only


class _NoisyUpsampler(torch.nn.Module):
    """x2 upsampling through a dropout layer: its training depends on torch's global random stream."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.drop = torch.nn.Dropout(0.5)
        self.shuffle = torch.nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.drop(self.conv(x)))


def test_resume_continues_the_random_stream_of_the_model_exactly(tmp_path):
    data = _write_images(tmp_path / "hq")
    common = dict(model="noisy", data=str(data), scale=2, steps=4, batch_size=2, patch_size=16, log_every=1,
                  progress=False)
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **common), model=_NoisyUpsampler())
    train(TrainConfig(out=str(tmp_path / "parts"), stop_after=2, **common), model=_NoisyUpsampler())
    parts = train(TrainConfig(out=str(tmp_path / "parts"), resume=True, **common), model=_NoisyUpsampler())
    assert _losses(tmp_path / "parts") == _losses(tmp_path / "whole")
    assert all(torch.equal(v, parts.state_dict()[k]) for k, v in whole.state_dict().items())


def test_resuming_at_or_past_stop_after_trains_no_further(tmp_path):
    data, out = _write_images(tmp_path / "hq"), tmp_path / "run"
    assert main(_args(data, out, "--steps", "6", "--log-every", "1", "--stop-after", "3")) == 0
    for stop in ("3", "2"):
        assert main(_args(data, out, "--steps", "6", "--log-every", "1", "--stop-after", stop, "--resume")) == 0
        assert len(_losses(out)) == 3 and torch.load(out / "training_state.pt", weights_only=True)["step"] == 3


def test_the_command_ends_with_a_summary(tmp_path, capsys):
    data, val, out = _write_images(tmp_path / "hq"), _write_images(tmp_path / "val", 2, seed=1), tmp_path / "run"
    assert main(_args(data, out, "--steps", "2", "--log-every", "1", "--val-data", str(val))) == 0
    text = capsys.readouterr().out
    scores = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert "trained test_mambair_sr for 2 of 2 steps\n" in text
    assert f"{out / 'model.safetensors'}" in text and f"--model local-dir:{out}" in text
    assert f"validation: PSNR {scores['val_psnr']:.2f} dB, SSIM {scores['val_ssim']:.4f} at step 2" in text
    assert main(_args(data, tmp_path / "part", "--steps", "4", "--stop-after", "1")) == 0
    text = capsys.readouterr().out
    assert "for 1 of 4 steps (stopped early" in text and "--resume" in text and "validation: none" in text


def test_init_checkpoint_takes_a_zoo_name_with_published_weights(tmp_path, capsys):
    """--init-checkpoint dvmsr starts from the bundled DVMSR weights (a learning rate of 1e-12 leaves them as
    they are to float precision), not from random ones."""
    data, out = _write_images(tmp_path / "hq"), tmp_path / "run"
    args = ["--model", "dvmsr", "--data", str(data), "--out", str(out), "--batch-size", "1", "--patch-size", "16",
            "--steps", "1", "--lr", "1e-12", "--no-progress"]
    assert main([*args, "--init-checkpoint", "dvmsr"]) == 0
    published = ssmblocks.create_model("dvmsr", pretrained=True).state_dict()
    trained = load_file(str(out / "model.safetensors"))
    assert trained.keys() == published.keys()
    assert all(torch.allclose(trained[k], published[k], atol=1e-6) for k in published)
    assert "from dvmsr" in json.loads((out / "config.json").read_text())["pretrained_cfg"]["notes"]
    assert main([*args, "--out", str(tmp_path / "b"), "--init-checkpoint", "test_dvmsr"]) == 1   # no weights
    assert "neither a weight file nor the name of a model with published weights" in capsys.readouterr().err
