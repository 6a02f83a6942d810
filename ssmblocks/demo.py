"""``ssmblocks demo``: restore the bundled sample with the bundled default model, offline, and show the result.

The sample (``ssmblocks/data/sample.png``, the DVMSR repository's ``utils/test.bmp``, 256x256) is downscaled x4 with
Pillow's bicubic filter, restored with the default model (``dvmsr``: the released DVMSR student, bundled as
``ssmblocks/data/dvmsr_team07.safetensors``; MIT, see ``ssmblocks/data/LICENSE-DVMSR.txt``), and compared with the
original: RGB PSNR/SSIM with a 4-pixel border, as the DVMSR test script measures (27.20 dB; bicubic 20.86 dB).
Writes ``lr.png``, ``restored.png`` and ``comparison.png`` (bicubic | restored | original) into the output folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssmblocks._builder import create_model
from ssmblocks.data import bundled_file
from ssmblocks.inference import restore
from ssmblocks.inference.images import write_image
from ssmblocks.metrics import calculate_psnr, calculate_ssim
from ssmblocks.ops import get_backend

__all__ = ["DEFAULT_MODEL", "DemoResult", "run_demo"]

DEFAULT_MODEL = "dvmsr"
SCALE = 4


@dataclass(frozen=True)
class DemoResult:
    """PSNR/SSIM (RGB, border 4) of bicubic upscaling and of the model against the original; the files written."""

    bicubic_psnr: float
    bicubic_ssim: float
    psnr: float
    ssim: float
    files: tuple[Path, ...]


def _side_by_side(*images):
    from PIL import Image

    canvas = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    return canvas


def run_demo(out_dir: str | Path = "ssmblocks-demo", model_name: str = DEFAULT_MODEL) -> DemoResult:
    """Runs the demo (see the module docstring) and returns its numbers."""
    from PIL import Image

    original = Image.open(bundled_file("sample.png")).convert("RGB")
    lr = original.resize((original.width // SCALE, original.height // SCALE), Image.BICUBIC)
    bicubic = lr.resize(original.size, Image.BICUBIC)
    model = create_model(model_name, pretrained=True).eval()
    restored = restore(model, lr, progress=False)
    out = Path(out_dir)
    files = (write_image(lr, out / "lr.png"), write_image(restored, out / "restored.png"),
             write_image(_side_by_side(bicubic, restored, original), out / "comparison.png"))
    bicubic_a, restored_a, original_a = (np.asarray(im) for im in (bicubic, restored, original))
    return DemoResult(calculate_psnr(bicubic_a, original_a, SCALE), calculate_ssim(bicubic_a, original_a, SCALE),
                      calculate_psnr(restored_a, original_a, SCALE), calculate_ssim(restored_a, original_a, SCALE),
                      files)


def main(out_dir: str | Path = "ssmblocks-demo") -> DemoResult:
    """The command: runs the demo and prints what it did."""
    result = run_demo(out_dir)
    print(f"scan backend on this CPU: {get_backend('selective_scan', 'cpu')}")
    print(f"bicubic x{SCALE}:       PSNR {result.bicubic_psnr:.2f} dB  SSIM {result.bicubic_ssim:.4f}")
    print(f"{DEFAULT_MODEL} x{SCALE}:         PSNR {result.psnr:.2f} dB  SSIM {result.ssim:.4f}"
          f"   (RGB, border {SCALE})")
    print("wrote " + ", ".join(str(f) for f in result.files))
    return result
