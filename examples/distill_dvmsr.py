"""Distil a half-width DVMSR student (embed_dim 30) from the released DVMSR model on scikit-image's photos, on CPU.

    pip install "ssmblocks[examples]"      # scikit-image: its wheel ships the training photos
    python examples/distill_dvmsr.py --out runs/distill_dvmsr --weights docs/weights/dvmsr_half_distilled.safetensors

Steps:
1. Writes the colour photos of ``skimage.data`` as BMP (decoded ~10x faster than PNG, as every patch re-reads its
   photo): six to train on, three held out (chelsea, coffee, rocket).
2. Initialises the student from the teacher (``--init teacher``, the default): the released DVMSR weights cut to
   ``embed_dim=30`` by ``ssmblocks.distill.inherit_weights`` (weight inheritance), written to ``init.safetensors``.
3. Trains it with ``ssmblocks.train`` (``--init-checkpoint`` that file, ``--teacher dvmsr``): the released DVMSR
   weights (bundled with ssmblocks) are the frozen teacher; the loss is DVMSR's distillation loss (L1 to the ground
   truth + L1 between the end-level features, through a learned 1x1 adapter). 5000 steps of 8 patches of 96x96
   (24x24 inputs), peak learning rate 2e-3: about 20 minutes on one core.
4. Measures PSNR as DVMSR's test script does: LR = Pillow bicubic x4 downscale of the ground truth (cropped to a
   multiple of 4), output clamped and rounded to uint8, RGB PSNR with a 4-pixel border, on the held-out photos and
   on DVMSR's test image, for the student, the teacher and bicubic upscaling. Prints a Markdown table and writes
   ``results.json`` in ``--out``.

``--steps 2 --images 2 --held-out 1`` runs the whole pipeline in seconds (the smoke test in tests/test_examples.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

import ssmblocks
from ssmblocks.data import bundled_file
from ssmblocks.distill import inherit_weights
from ssmblocks.metrics import calculate_psnr
from ssmblocks.train.loop import TrainConfig, train

SCALE = 4
TRAIN_IMAGES = ("astronaut", "hubble_deep_field", "immunohistochemistry", "retina", "motorcycle_left",
                "motorcycle_right")
HELD_OUT_IMAGES = ("chelsea", "coffee", "rocket")
TEACHER_WEIGHTS = "dvmsr_team07.safetensors"   # the released DVMSR student, bundled: our teacher


def _skimage_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB photo from scikit-image's wheel (no download)."""
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def write_photos(folder: Path, names: tuple[str, ...]) -> Path:
    """Saves the named photos as BMP files in ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(_skimage_photo(name)).save(folder / f"{name}.bmp")   # BMP: decoded ~10x faster than PNG
    return folder


def bicubic_lr(hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth cropped to a multiple of the scale, its Pillow bicubic x4 downscale), both uint8 HWC."""
    height, width = (hr.shape[0] // SCALE) * SCALE, (hr.shape[1] // SCALE) * SCALE
    hr = hr[:height, :width]
    lr = Image.fromarray(hr).resize((width // SCALE, height // SCALE), Image.Resampling.BICUBIC)
    return hr, np.asarray(lr)


@torch.no_grad()
def upscale(model: torch.nn.Module | None, lr: np.ndarray) -> np.ndarray:
    """uint8 HWC LR -> uint8 HWC x4 output: the model's (clamped, rounded) or, for None, Pillow bicubic's."""
    if model is None:
        height, width = lr.shape[:2]
        return np.asarray(Image.fromarray(lr).resize((width * SCALE, height * SCALE), Image.Resampling.BICUBIC))
    x = torch.from_numpy(lr.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    out = model(x).squeeze(0).clamp(0, 1).mul(255).round().byte()
    return out.permute(1, 2, 0).numpy()


def psnr_table(models: dict[str, torch.nn.Module | None], images: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{image: {method: RGB PSNR with a 4-pixel border}} for every method (None: bicubic) on every image."""
    table = {}
    for image_name, photo in images.items():
        hr, lr = bicubic_lr(photo)
        table[image_name] = {method: calculate_psnr(upscale(model, lr), hr, crop_border=SCALE)
                             for method, model in models.items()}
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    methods = list(next(iter(table.values())))
    lines = ["| image | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    lines += [f"| {image} | " + " | ".join(f"{row[m]:.2f}" for m in methods) + " |" for image, row in table.items()]
    return "\n".join(lines)


def inherited_init(teacher_path: str, embed_dim: int, path: Path) -> Path:
    """Writes the teacher's weights cut to a DVMSR of width ``embed_dim`` (``inherit_weights``) to ``path``."""
    teacher = ssmblocks.load_checkpoint(teacher_path)
    student = ssmblocks.create_model("dvmsr", embed_dim=embed_dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(inherit_weights(teacher, student), str(path))
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="working folder: photos, training run, results")
    parser.add_argument("--weights", type=Path, help="also copy the student's weights (safetensors) here")
    parser.add_argument("--steps", type=int, default=5000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=8, help="patches per step")
    parser.add_argument("--patch-size", type=int, default=96, help="side of the ground-truth patches")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine)")
    parser.add_argument("--images", type=int, default=len(TRAIN_IMAGES), help="training photos to use")
    parser.add_argument("--held-out", type=int, default=len(HELD_OUT_IMAGES), help="held-out photos to measure")
    parser.add_argument("--embed-dim", type=int, default=30, help="the student's width (DVMSR's is 60)")
    parser.add_argument("--init", choices=("teacher", "scratch"), default="teacher",
                        help="start from the teacher's weights cut to the student's width, or from random weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the patches")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_args(argv)
    train_dir = write_photos(args.out / "train", TRAIN_IMAGES[:args.images])
    run_dir = args.out / "run"
    teacher_path = str(bundled_file(TEACHER_WEIGHTS))
    init = inherited_init(teacher_path, args.embed_dim, args.out / "init.safetensors") \
        if args.init == "teacher" else None
    config = TrainConfig(model="dvmsr", model_kwargs={"embed_dim": args.embed_dim}, data=str(train_dir),
                         init_checkpoint=None if init is None else str(init),
                         out=str(run_dir), overwrite=True,   # each run of the recipe starts afresh
                         teacher="dvmsr", teacher_checkpoint=teacher_path, steps=args.steps,
                         batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr,
                         warmup_steps=min(25, args.steps // 10), min_lr_ratio=0.01, clip_grad=1.0, seed=args.seed,
                         log_every=max(1, min(25, args.steps)), save_every=100, progress=False)
    start = time.perf_counter()
    train(config)
    train_seconds = time.perf_counter() - start

    student = ssmblocks.load_checkpoint(run_dir / "model.safetensors")
    teacher = ssmblocks.load_checkpoint(teacher_path)
    images = {name: _skimage_photo(name) for name in HELD_OUT_IMAGES[:args.held_out]}
    images["dvmsr_test"] = np.asarray(Image.open(bundled_file("sample.png")).convert("RGB"))
    table = psnr_table({"student": student, "teacher": teacher, "bicubic": None}, images)
    held_out = [name for name in table if name != "dvmsr_test"]
    table["held-out mean"] = {m: float(np.mean([table[n][m] for n in held_out])) for m in table["dvmsr_test"]}

    parameters = {"student": sum(p.numel() for p in student.parameters()),
                  "teacher": sum(p.numel() for p in teacher.parameters())}
    results = {"psnr": table, "train_seconds": train_seconds, "parameters": parameters, "args": vars(args),
               "threads": torch.get_num_threads()}
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    if args.weights is not None:
        args.weights.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "model.safetensors", args.weights)
    print(f"trained {args.steps} steps in {train_seconds / 60:.1f} min; parameters {parameters}")
    print(markdown(table))
    return table


if __name__ == "__main__":
    main()
