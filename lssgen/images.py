"""Image folders for upsampler training and evaluation, and the labelled comparison grid (PIL).

`ImageFolder` is the `lssgen.training.pairs.ImageSource` the core draws crops from: it finds
images recursively, reads only their headers up front (sizes), and decodes an image when a crop
needs it. It holds nothing but paths and sizes, so DataLoader workers can pickle it.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# EXIF orientations that rotate by 90 degrees, so stored width and height swap on display.
_TRANSPOSED = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


def find_images(root: str | os.PathLike[str]) -> list[Path]:
    """Image files under `root`, recursively, sorted (hidden files and folders skipped)."""
    folder = Path(root)
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return found


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) as displayed (EXIF rotation applied), from the header only."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(_EXIF_ORIENTATION) in _TRANSPOSED:
            width, height = height, width
    return height, width


def read_image(path: Path) -> Tensor:
    """RGB uint8 tensor (3, H, W), EXIF rotation applied; alpha is dropped, not composited."""
    with Image.open(path) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
        array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class ImageFolder:
    """The images under `root` that are at least `min_size` on both sides.

    Smaller and unreadable files are skipped with a warning (real datasets hold a few); a folder
    left with no usable image is an error that says why.
    """

    def __init__(self, root: str | os.PathLike[str], *, min_size: int = 1) -> None:
        self.root = Path(root)
        paths = find_images(self.root)
        if not paths:
            raise ValueError(
                f"no images found under {self.root} (looked recursively for "
                f"{', '.join(IMAGE_SUFFIXES)})"
            )
        self.paths: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self.too_small: list[tuple[Path, tuple[int, int]]] = []
        self.unreadable: list[tuple[Path, str]] = []
        for path in paths:
            try:
                size = image_size(path)
            except (OSError, UnidentifiedImageError) as exc:
                self.unreadable.append((path, str(exc)))
                continue
            if min(size) < min_size:
                self.too_small.append((path, size))
                continue
            self.paths.append(path)
            self.sizes.append(size)
        if not self.paths:
            raise ValueError(self._nothing_usable(len(paths), min_size))
        skipped = len(self.too_small) + len(self.unreadable)
        if skipped:
            warnings.warn(self.skipped_summary(min_size), stacklevel=2)

    def _nothing_usable(self, found: int, min_size: int) -> str:
        parts = [f"none of the {found} images under {self.root} can be used"]
        if self.too_small:
            path, (h, w) = self.too_small[0]
            parts.append(
                f"{len(self.too_small)} are smaller than the {min_size}x{min_size} crop "
                f"(e.g. {path.name}: {w}x{h}); use larger images or a smaller --size"
            )
        if self.unreadable:
            path, reason = self.unreadable[0]
            parts.append(f"{len(self.unreadable)} cannot be read (e.g. {path.name}: {reason})")
        return "; ".join(parts)

    def skipped_summary(self, min_size: int) -> str:
        parts = []
        if self.too_small:
            parts.append(f"{len(self.too_small)} smaller than {min_size}x{min_size}")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable")
        return (
            f"skipping {' and '.join(parts)} of the images under {self.root}; "
            f"using {len(self.paths)}"
        )

    def __len__(self) -> int:
        return len(self.paths)

    def size(self, index: int) -> tuple[int, int]:
        return self.sizes[index]

    def load(self, index: int) -> Tensor:
        image = read_image(self.paths[index])
        if tuple(image.shape[1:]) != self.sizes[index]:
            raise ValueError(f"{self.paths[index]} changed size while in use")
        return image


def to_uint8_hwc(images: Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    scaled = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def comparison_grid(
    columns: Sequence[tuple[str, Tensor]],
    *,
    pad: int = 4,
    label_height: int = 16,
    min_side: int = 128,
) -> Image.Image:
    """One column per (label, images (K, 3, H, W) in [-1, 1]), one row per image, labelled.

    Crops smaller than `min_side` are enlarged by a whole factor with nearest-neighbour, so small
    evaluation crops stay inspectable without inventing detail.
    """
    if not columns:
        raise ValueError("comparison_grid needs at least one column")
    arrays = [(label, to_uint8_hwc(images)) for label, images in columns]
    factor = max(1, -(-min_side // max(1, min(arrays[0][1].shape[1:3]))))
    if factor > 1:
        arrays = [(label, a.repeat(factor, axis=1).repeat(factor, axis=2)) for label, a in arrays]
    rows = arrays[0][1].shape[0]
    height, width = arrays[0][1].shape[1:3]
    font = ImageFont.load_default()
    # Labels can be wider than tiny crops; widen the cells rather than cut the words.
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cell = max(width, *(int(probe.textlength(label, font=font)) + 2 for label, _ in arrays))
    grid = Image.new(
        "RGB",
        (pad + len(arrays) * (cell + pad), label_height + pad + rows * (height + pad)),
        "white",
    )
    draw = ImageDraw.Draw(grid)
    for c, (label, array) in enumerate(arrays):
        if array.shape[:3] != (rows, height, width):
            raise ValueError(
                f"column {label!r} has images of shape {array.shape[:3]}, expected "
                f"{(rows, height, width)}"
            )
        x = pad + c * (cell + pad)
        draw.text((x, 2), label, fill="black", font=font)
        for r in range(rows):
            y = label_height + pad + r * (height + pad)
            grid.paste(Image.fromarray(array[r]), (x + (cell - width) // 2, y))
    return grid


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
