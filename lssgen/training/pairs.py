"""Training pairs for the latent upsampler: a high-resolution crop and its 2x downsample.

As in the original recipe, a crop at twice the training size is the high-resolution target and its
downsample (nearest by default) is the low-resolution input; both are VAE-encoded by the caller.
Randomness is counter-based: every batch comes from a generator seeded by (seed, stream, index),
so any batch can be rebuilt from its index alone. That is what makes a resumed run draw exactly
the crops an uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DOWNSAMPLE_MODES = ("nearest", "area", "bicubic")
SCALE_FACTOR = 2

# Independent random streams drawn from one user seed.
STREAM_BATCH = 0  # crops of training step i
STREAM_POOL = 1  # crops of cached-pool chunk i
STREAM_ORDER = 2  # order in which cached pool i is visited
STREAM_EVAL = 3  # held-out evaluation crops


@runtime_checkable
class ImageSource(Protocol):
    """Random access to RGB images; must be picklable to feed DataLoader workers."""

    def __len__(self) -> int: ...

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of image `index`, without decoding the pixels if possible."""
        ...

    def load(self, index: int) -> Tensor:
        """Image `index` as a uint8 tensor (3, H, W)."""
        ...


@attrs.frozen
class Crop:
    """A square window of one image of a source."""

    index: int
    top: int
    left: int
    size: int


def seeded_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU generator for (seed, *keys); nearby keys give unrelated streams."""
    if seed < 0 or any(key < 0 for key in keys):
        raise ValueError(f"seed and keys must be non-negative, got {seed} and {keys}")
    # SeedSequence hashes the whole tuple, so (seed, step) and (seed, step + 1) do not give
    # correlated torch streams the way seed + step would.
    (state,) = np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)
    generator = torch.Generator()
    generator.manual_seed(int(state) >> 1)  # 63 bits: manual_seed's safe range on every version
    return generator


def draw_crops(
    sizes: Sequence[tuple[int, int]], crop_size: int, count: int, generator: torch.Generator
) -> list[Crop]:
    """`count` crops of `crop_size`, images uniformly at random, positions uniformly inside."""
    if not sizes:
        raise ValueError("cannot draw crops from an empty image source")
    indices = torch.randint(len(sizes), (count,), generator=generator).tolist()
    # One uniform draw per coordinate, scaled to each image's range, keeps the number of draws
    # independent of the image sizes.
    u = torch.rand((count, 2), generator=generator, dtype=torch.float64).tolist()
    crops = []
    for index, (u_top, u_left) in zip(indices, u):
        height, width = sizes[index]
        if min(height, width) < crop_size:
            raise ValueError(
                f"image {index} ({height}x{width}) is smaller than the {crop_size}px crop"
            )
        top = min(int(u_top * (height - crop_size + 1)), height - crop_size)
        left = min(int(u_left * (width - crop_size + 1)), width - crop_size)
        crops.append(Crop(index, top, left, crop_size))
    return crops


def cut(image: Tensor, crop: Crop) -> Tensor:
    """The `crop` window of a (C, H, W) image."""
    return image[:, crop.top : crop.top + crop.size, crop.left : crop.left + crop.size]


def load_crops(source: ImageSource, crops: Sequence[Crop]) -> Tensor:
    """uint8 (N, 3, S, S) batch; each image is decoded once however many crops it gives."""
    loaded: dict[int, Tensor] = {}
    out = []
    for crop in crops:
        if crop.index not in loaded:
            loaded[crop.index] = source.load(crop.index)
        out.append(cut(loaded[crop.index], crop))
    return torch.stack(out).contiguous()


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the range VAEs take."""
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    return images.float().div_(127.5).sub_(1.0)


def downsample(images: Tensor, mode: str = "nearest") -> Tensor:
    """2x downsample of (B, C, H, W) images in [-1, 1]; H and W must be even.

    nearest: every other pixel (centre-aligned like PIL's NEAREST), the original's choice;
    area: 2x2 box average; bicubic: antialiased bicubic, clamped back into [-1, 1].
    """
    if mode not in DOWNSAMPLE_MODES:
        raise ValueError(f"downsample mode must be one of {DOWNSAMPLE_MODES}, got {mode!r}")
    if images.ndim != 4 or images.shape[-1] % 2 or images.shape[-2] % 2:
        raise ValueError(
            f"images must be (B, C, H, W) with even H and W, got {tuple(images.shape)}"
        )
    if mode == "nearest":
        return images[..., 1::SCALE_FACTOR, 1::SCALE_FACTOR].contiguous()
    if mode == "area":
        return F.avg_pool2d(images, SCALE_FACTOR)
    out = F.interpolate(
        images, scale_factor=1 / SCALE_FACTOR, mode="bicubic", antialias=True, align_corners=False
    )
    return out.clamp_(-1.0, 1.0)


def held_out_crops(source: ImageSource, *, crop_size: int, count: int, seed: int) -> Tensor:
    """The uint8 batch (count, 3, S, S) of evaluation crops of ``source``: the first batch of
    its own stream, so it never repeats a training batch's crops."""
    return CropBatches(
        source, crop_size=crop_size, batch_size=count, seed=seed, stream=STREAM_EVAL
    )[0]


class CropBatches(torch.utils.data.Dataset[Tensor]):
    """Map-style dataset: item i is the uint8 batch (B, 3, S, S) of crops for key i.

    Indexed by step (or pool chunk), so a DataLoader with workers can prefetch while the result
    stays a pure function of (seed, stream, rank, i).
    """

    def __init__(
        self,
        source: ImageSource,
        *,
        crop_size: int,
        batch_size: int,
        seed: int,
        stream: int,
        rank: int = 0,
    ) -> None:
        self.source = source
        self.sizes = [source.size(i) for i in range(len(source))]
        too_small = [i for i, (h, w) in enumerate(self.sizes) if min(h, w) < crop_size]
        if too_small:
            # Checked once here rather than found by chance mid-run.
            raise ValueError(
                f"{len(too_small)} of {len(self.sizes)} images are smaller than the "
                f"{crop_size}px crop (first: index {too_small[0]}, {self.sizes[too_small[0]]})"
            )
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.seed = seed
        self.stream = stream
        self.rank = rank

    def crops(self, index: int) -> list[Crop]:
        generator = seeded_generator(self.seed, self.stream, self.rank, index)
        return draw_crops(self.sizes, self.crop_size, self.batch_size, generator)

    def __getitem__(self, index: int) -> Tensor:
        return load_crops(self.source, self.crops(index))

    def __len__(self) -> int:
        # Keys are unbounded; the sampler decides which ones are read.
        return 2**62
