"""Helpers shared by the upsampler-training tests (imported by conftest.py and test modules).

A uniquely named module rather than `from conftest import ...`: other test folders have their
own conftest.py, and only one module can be called `conftest` in sys.modules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lssgen.images import ImageFolder
from lssgen.training.pairs import held_out_crops as draw_held_out_crops
from lssgen.training.train import TrainConfig

SIZE = 32  # low-resolution training size; crops are 64 px


def draw_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A gradient with a few flat discs and boxes, sometimes striped: simple, varied content."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (t.max() - t.min())
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(rng.integers(2, 5)):
        colour = rng.uniform(0, 255, 3)
        cx, cy = rng.uniform(0, 1, 2)
        r = rng.uniform(0.08, 0.3)
        if rng.random() < 0.5:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            mask = (abs(xx - cx) < r) & (abs(yy - cy) < r * rng.uniform(0.3, 1))
        image[mask] = colour
    if rng.random() < 0.5:
        freq, phase = rng.uniform(4, 12), rng.uniform(0, 6)
        image = image * (0.85 + 0.15 * np.sin(2 * np.pi * freq * xx + phase))[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(
    folder: Path, count: int, seed: int, *, sizes: tuple[int, int] = (128, 176)
) -> Path:
    """PNG, JPEG and WebP files, some in a nested subfolder."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = (int(v) for v in rng.integers(sizes[0], sizes[1], 2))
        suffix = (".png", ".jpg", ".webp")[i % 3]
        sub = folder / ("nested/deeper" if i % 4 == 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw_image(rng, height, width)).save(sub / f"img{i:03d}{suffix}")
    return folder


# The budget that makes the learned upsampler beat bicubic interpolation on held-out crops of
# this image distribution with the 4-channel tiny VAE (about 2-4 s on two cores). A higher LR
# than the recipe's 1e-4 because the run is 200 steps, not 100k.
TRAINED_CONFIG = TrainConfig(
    size=SIZE,
    steps=200,
    batch_size=16,
    lr=1e-3,
    seed=0,
    cache_latents=True,
    pool_size=256,
    pool_reuse=8,
)


def held_out_crops(heldout_dir: Path, count: int = 6) -> torch.Tensor:
    """``count`` high-resolution crops of the held-out images, drawn as the evaluation draws."""
    images = ImageFolder(heldout_dir, min_size=2 * SIZE)
    return draw_held_out_crops(images, crop_size=2 * SIZE, count=count, seed=0)
