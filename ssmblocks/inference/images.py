"""Image files: reading with Pillow (one clear error for anything unreadable), atomic writing, and listing inputs.

Outputs are written to a temporary file beside the target and renamed over it, so a file under the final name is
always complete. The temporary name is hidden and ends in ``.part`` (``.res.png.k3j2.part``), never in an image
suffix, and listings skip hidden files: what a killed run leaves behind is never read as an input.

Refused with a ValueError naming the file: what Pillow cannot decode, images declaring more pixels than Pillow's
decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS`` twice over: a few bytes that would decode to gigabytes),
and animated or multi-page files (only their first frame would be restored). A 16-bit colour image, which Pillow
decodes at 8 bits per channel, is read with a warning that says so.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ssmblocks._atomic import atomic_path
from ssmblocks.inference.video_io import is_video_file

__all__ = ["IMAGE_SUFFIXES", "errors_about", "expand_inputs", "image_format", "list_images", "read_image",
           "warnings_about", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image(path: str | Path) -> Any:
    """Reads an image file into a (fully loaded) PIL image, upright: an EXIF orientation (camera and phone photos)
    is applied, as image viewers do, so a restored photo is written the way its original is seen (outputs carry
    no EXIF orientation). FileNotFoundError / ValueError name the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise ValueError(f"{path} holds {frames} frames (an animated or multi-page image), and an image is "
                                 f"restored whole or not at all: save its frames as a folder of images (or a video "
                                 f"file) and restore that")
            if image.mode in ("RGB", "RGBA") and any(";16" in str(tile.args) for tile in image.tile):
                warnings.warn(f"{path.name}: a 16-bit colour image is read at 8 bits per channel (Pillow decodes "
                              f"16-bit colour at 8 bits): the low 8 bits are dropped and the output is 8-bit",
                              stacklevel=2)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return image
    except Image.DecompressionBombError as err:
        raise ValueError(f"cannot read {path}: {err} (a file declaring a size that large is refused unread: a "
                         f"decompression bomb, or an image far too large to restore)") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read {path} as an image ({type(err).__name__}: {err})") from err


def write_image(image: Any, path: str | Path) -> Path:
    """Writes a PIL image atomically (temporary file in the same folder, then rename); the format follows the
    suffix. JPEG has no alpha channel: an RGBA / LA image is written as RGB / L with a warning. A float ("F") image
    in [0, 1] is written as is to TIFF, as 16-bit grey to PNG and as 8-bit grey to other formats. The temporary file
    is hidden and ends in ``.part``. Returns the path."""
    path = Path(path)
    fmt = image_format(path)
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        warnings.warn(f"{path.name}: JPEG has no alpha channel: the alpha channel is dropped (write .png, .webp or "
                      f".tif to keep it)", stacklevel=2)
        image = image.convert(image.mode[:-1])
    if getattr(image, "mode", None) == "F" and fmt != "TIFF":
        image = _quantised(image, 16 if fmt == "PNG" else 8)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path


def _quantised(image: Any, bits: int) -> Any:
    """A float ("F") image in [0, 1] as a 16-bit ("I;16") or 8-bit ("L") grey image."""
    from PIL import Image

    peak, dtype = (65535, np.uint16) if bits == 16 else (255, np.uint8)
    values = np.clip(np.asarray(image, dtype=np.float32), 0, 1) * peak
    return Image.fromarray(np.round(values).astype(dtype))


def image_format(path: str | Path) -> str:
    """The Pillow format a file named ``path`` is written in (from its suffix); ValueError for an unknown suffix."""
    from PIL import Image

    path = Path(path)
    Image.init()
    fmt = Image.EXTENSION.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot write {path}: unknown image suffix {path.suffix!r}; use one of "
                         f"{', '.join(IMAGE_SUFFIXES)}")
    return fmt


def _visible(path: Path) -> bool:
    """Not a hidden file or folder (temporary files of an interrupted write are hidden)."""
    return not path.name.startswith(".")


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name; hidden files are skipped."""
    return sorted(p for p in Path(folder).iterdir()
                  if _visible(p) and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to its argument) for every image or video file named directly or found in a named
    folder.

    A folder that holds no images or videos but sub-folders of images (frame folders of videos) is walked one
    level down. Hidden files and folders in a folder are skipped."""
    found: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append((item, Path(item.name)))
        elif item.is_dir():
            images = sorted(list_images(item) + [p for p in item.iterdir()
                                                 if _visible(p) and p.is_file() and is_video_file(p)])
            if not images:
                images = [p for sub in sorted(d for d in item.iterdir() if _visible(d) and d.is_dir())
                          for p in list_images(sub)]
            if not images:
                raise FileNotFoundError(f"{item} holds no images ({', '.join(IMAGE_SUFFIXES)}) or videos")
            found.extend((p, p.relative_to(item)) for p in images)
        else:
            raise FileNotFoundError(f"no such file or folder: {item}")
    return found


@contextlib.contextmanager
def warnings_about(path: str | Path) -> Iterator[None]:
    """Warnings raised inside the block are re-issued with ``path``'s name in front (``photo.png: the model takes
    colour images ...``), so a warning about one file of many says which."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        warnings.warn(f"{Path(path).name}: {warning.message}", warning.category, stacklevel=3)


@contextlib.contextmanager
def errors_about(path: str | Path) -> Iterator[None]:
    """A ValueError raised inside the block (a refused input, a NaN output) is re-raised with ``path`` in front
    (``photo.png: the model's output contains NaN ...``) unless it names the file already."""
    path = Path(path)
    try:
        yield
    except ValueError as err:
        if path.name in str(err):
            raise
        raise ValueError(f"{path}: {err}") from err
