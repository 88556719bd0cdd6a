"""Training data of lssgen-mini: renders of `scene_for_index` as tensors, crops and flips.

Training draws from the dataset `TRAIN_DATA_SEED` (index `i` is the same scene and caption on
every machine); held-out checks inside the training code use `HELD_OUT_SEED`. Benchmarks and
the demo should draw their prompts from yet other seeds, so no test scene was trained on.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lssgen.mini.render import render
from lssgen.mini.scenes import scene_for_index
from lssgen_core.atomic import write_bytes_atomic

TRAIN_DATA_SEED = 1000
HELD_OUT_SEED = 1001


def to_tensor(image: object) -> Tensor:
    """A PIL RGB image as a (3, H, W) float32 tensor in [-1, 1] (the VAE's input range)."""
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def render_tensor(seed: int, index: int, size: int) -> Tensor:
    return to_tensor(render(scene_for_index(seed, index)[0], size))


def render_batch(seed: int, indices: Sequence[int], size: int) -> Tensor:
    """(B, 3, size, size) renders of the scenes `indices` of dataset `seed`."""
    return torch.stack([render_tensor(seed, i, size) for i in indices])


def captions(seed: int, indices: Sequence[int]) -> list[str]:
    return [scene_for_index(seed, i)[1].text for i in indices]


def _randint(high: int, generator: torch.Generator) -> int:
    return int(torch.randint(high, (1,), generator=generator))


def random_crop(
    seed: int,
    index: int,
    render_sizes: Sequence[int],
    crop: int,
    generator: torch.Generator,
) -> Tensor:
    """A `crop` x `crop` patch of scene `index`, rendered at a size drawn from `render_sizes`,
    at a random offset, randomly flipped (the VAE has no orientation to learn)."""
    size = render_sizes[_randint(len(render_sizes), generator)]
    image = render_tensor(seed, index, size)
    top, left = _randint(size - crop + 1, generator), _randint(size - crop + 1, generator)
    patch = image[:, top : top + crop, left : left + crop]
    flips = [dim for dim in (1, 2) if _randint(2, generator)]
    return patch.flip(flips) if flips else patch


def write_images(
    folder: str | os.PathLike[str],
    *,
    count: int,
    size: int,
    seed: int = TRAIN_DATA_SEED,
    on_image: Callable[[int], None] | None = None,
) -> int:
    """Save renders `000000.png` ... of scenes 0..count-1 (for `lssgen train-upsampler`);
    existing files are kept, so an interrupted run continues. Returns how many were written."""
    root = Path(folder)
    written = 0
    for index in range(count):
        path = root / f"{index:06d}.png"
        if not path.is_file():
            buffer = io.BytesIO()
            render(scene_for_index(seed, index)[0], size).save(buffer, format="PNG")
            write_bytes_atomic(path, buffer.getvalue())
            written += 1
        if on_image is not None:
            on_image(index + 1)
    return written
