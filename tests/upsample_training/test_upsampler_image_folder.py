"""Image folders (recursive, formats, clear errors) and the labelled comparison grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lssgen.images import ImageFolder, comparison_grid, find_images, read_image


def _save(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = np.random.default_rng(0).integers(0, 256, (size[0], size[1], channels), np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
    return path


def test_images_are_found_recursively_in_common_formats(train_dir: Path, tmp_path: Path) -> None:
    found = find_images(train_dir)
    assert {p.suffix for p in found} == {".png", ".jpg", ".webp"}
    assert any("nested" in p.parts for p in found)
    _save(tmp_path / "A.JPG", (10, 10))
    _save(tmp_path / ".hidden" / "b.png", (10, 10))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in find_images(tmp_path)] == ["A.JPG"]


def test_image_folder_reads_rgb_uint8_of_the_recorded_size(tmp_path: Path) -> None:
    _save(tmp_path / "rgba.png", (70, 90), "RGBA")
    _save(tmp_path / "grey.png", (80, 64), "L")
    folder = ImageFolder(tmp_path, min_size=64)
    assert len(folder) == 2
    for i in range(2):
        image = folder.load(i)
        assert image.dtype == torch.uint8 and image.shape == (3, *folder.size(i))


def test_exif_rotation_is_applied_to_size_and_pixels(tmp_path: Path) -> None:
    array = np.zeros((20, 40, 3), np.uint8)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    folder = ImageFolder(tmp_path)
    assert folder.size(0) == (40, 20)
    assert read_image(folder.paths[0]).shape == (3, 40, 20)


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no images found under"):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        ImageFolder(tmp_path / "missing")


def test_images_smaller_than_the_crop_are_a_clear_error(tmp_path: Path) -> None:
    _save(tmp_path / "small.png", (40, 300))
    with pytest.raises(ValueError, match=r"smaller than the 64x64 crop \(e.g. small.png: 300x40\)"):
        ImageFolder(tmp_path, min_size=64)


def test_some_small_or_broken_images_are_skipped_with_a_warning(tmp_path: Path) -> None:
    _save(tmp_path / "big.png", (64, 64))
    _save(tmp_path / "small.png", (32, 64))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipping 1 smaller than 64x64 and 1 unreadable"):
        folder = ImageFolder(tmp_path, min_size=64)
    assert [p.name for p in folder.paths] == ["big.png"]


def test_comparison_grid_has_a_labelled_column_per_method() -> None:
    columns = [(name, torch.rand(2, 3, 16, 16) * 2 - 1) for name in ("target", "upsampler")]
    grid = comparison_grid(columns, pad=4, label_height=16, min_side=32)
    # 16 px crops are enlarged 2x to reach min_side; two rows under a label strip.
    assert grid.height == 16 + 4 + 2 * (32 + 4)
    assert grid.width >= 4 + 2 * (32 + 4)
    top_left = np.asarray(grid)[16 + 4 : 16 + 4 + 32, 4 : 4 + 32]
    assert top_left.std() > 0  # an image was pasted there, not left white
    with pytest.raises(ValueError, match="column 'b'"):
        comparison_grid([("a", torch.zeros(2, 3, 8, 8)), ("b", torch.zeros(1, 3, 8, 8))])
