"""Image files: reading with Pillow (one clear error for anything unreadable), atomic writing, and listing inputs.

Outputs are written to a temporary file beside the target and renamed over it, so a file under the final name is
always complete.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ssmblocks._atomic import atomic_path
from ssmblocks.inference.video_io import is_video_file

__all__ = ["IMAGE_SUFFIXES", "expand_inputs", "image_format", "list_images", "read_image", "warnings_about",
           "write_image"]

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
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return image
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read {path} as an image ({type(err).__name__}: {err})") from err


def write_image(image: Any, path: str | Path) -> Path:
    """Writes a PIL image atomically (temporary file in the same folder, then rename); the format follows the
    suffix. JPEG has no alpha channel: an RGBA / LA image is written as RGB / L with a warning. Returns the path."""
    path = Path(path)
    fmt = image_format(path)
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        warnings.warn(f"{path.name}: JPEG has no alpha channel: the alpha channel is dropped (write .png, .webp or "
                      f".tif to keep it)", stacklevel=2)
        image = image.convert(image.mode[:-1])
    with atomic_path(path, suffix=path.suffix) as tmp:
        image.save(tmp, format=fmt)
    return path


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


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to its argument) for every image or video file named directly or found in a named
    folder.

    A folder that holds no images or videos but sub-folders of images (frame folders of videos) is walked one
    level down."""
    found: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_file():
            found.append((item, Path(item.name)))
        elif item.is_dir():
            images = sorted(list_images(item) + [p for p in item.iterdir() if p.is_file() and is_video_file(p)])
            if not images:
                images = [p for sub in sorted(d for d in item.iterdir() if d.is_dir()) for p in list_images(sub)]
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
