"""Encoded training batches, either encoded fresh every step or drawn from a cached pool.

Streaming encodes 2 x batch crops per step. With caching, a pool of crops is encoded once and then
visited `pool_reuse` times in shuffled order before a new pool is drawn, which divides the VAE
encoding cost (the dominant cost of a step: the upsampler is tiny next to a VAE encoder) by
`pool_reuse` at the price of seeing each crop several times. Both modes are pure functions of
(seed, step): starting the iterator at step k yields exactly what an uninterrupted run yields
from step k on.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Generator, Iterator

import attrs
import torch
from torch import Tensor

from lssgen.training.pairs import (
    STREAM_BATCH,
    STREAM_ORDER,
    STREAM_POOL,
    CropBatches,
    ImageSource,
    downsample,
    seeded_generator,
    to_signed_unit,
)

Encode = Callable[[Tensor], Tensor]


@attrs.frozen(eq=False)
class PairBatch:
    """Model-space latents of a batch of pairs, and the high-resolution images if a pixel-space
    loss needs them (float [-1, 1])."""

    low_latent: Tensor
    high_latent: Tensor
    high_image: Tensor | None = None

    def __len__(self) -> int:
        return int(self.low_latent.shape[0])


@attrs.frozen
class BatchPlan:
    """Everything that decides which pairs a step sees."""

    crop_size: int  # high-resolution crop side in pixels (twice the training size)
    batch_size: int
    seed: int
    downsample: str = "nearest"
    keep_images: bool = False
    cache_latents: bool = False
    pool_size: int = 512  # crops per cached pool, rounded up to whole batches
    pool_reuse: int = 4  # times each cached pool is visited

    @property
    def pool_chunks(self) -> int:
        return math.ceil(self.pool_size / self.batch_size)

    @property
    def steps_per_pool(self) -> int:
        return self.pool_chunks * self.pool_reuse


def _ignore_sigint(_worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; workers must leave it to the main process, which
    # finishes its step and writes a checkpoint instead of dying on a broken worker pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _loader(
    dataset: CropBatches, keys: range, num_workers: int, device: torch.device
) -> Iterator[Tensor]:
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=keys,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_sigint if num_workers else None,
        prefetch_factor=2 if num_workers else None,
        persistent_workers=False,
    )
    return iter(loader)


def encode_pairs(
    high_uint8: Tensor, encode: Encode, *, mode: str, keep_image: bool, device: torch.device
) -> PairBatch:
    """Downsample and encode a uint8 batch of high-resolution crops."""
    high = to_signed_unit(high_uint8.to(device, non_blocking=True))
    low = downsample(high, mode)
    with torch.no_grad():
        low_latent = encode(low).float()
        high_latent = encode(high).float()
    return PairBatch(low_latent, high_latent, high if keep_image else None)


@attrs.frozen(eq=False)
class _Pool:
    low_latent: Tensor
    high_latent: Tensor
    # uint8, not float: a pool of 512 crops of 512px is 400 MB as uint8 and 1.6 GB as float32.
    high_uint8: Tensor | None

    def __len__(self) -> int:
        return int(self.low_latent.shape[0])

    def take(self, index: Tensor) -> PairBatch:
        image = None if self.high_uint8 is None else to_signed_unit(self.high_uint8[index])
        return PairBatch(self.low_latent[index], self.high_latent[index], image)


def _encode_pool(
    chunks: Iterator[Tensor], encode: Encode, plan: BatchPlan, device: torch.device
) -> _Pool:
    low, high, images = [], [], []
    for crops in chunks:
        pair = encode_pairs(crops, encode, mode=plan.downsample, keep_image=False, device=device)
        low.append(pair.low_latent)
        high.append(pair.high_latent)
        if plan.keep_images:
            images.append(crops.to(device))
    return _Pool(torch.cat(low), torch.cat(high), torch.cat(images) if images else None)


def pool_order(plan: BatchPlan, pool: int, pool_len: int, rank: int = 0) -> Tensor:
    """Visiting order of cached pool `pool`: `pool_reuse` shuffled passes."""
    generator = seeded_generator(plan.seed, STREAM_ORDER, rank, pool)
    return torch.cat(
        [torch.randperm(pool_len, generator=generator) for _ in range(plan.pool_reuse)]
    )


def iterate_batches(
    source: ImageSource,
    encode: Encode,
    plan: BatchPlan,
    *,
    start: int,
    stop: int,
    device: torch.device,
    rank: int = 0,
    num_workers: int = 0,
) -> Generator[PairBatch, None, None]:
    """The encoded batches of steps start, ..., stop - 1."""
    dataset = CropBatches(
        source,
        crop_size=plan.crop_size,
        batch_size=plan.batch_size,
        seed=plan.seed,
        # Item i is step i's batch, or with cached latents chunk i of the pools: two streams.
        stream=STREAM_POOL if plan.cache_latents else STREAM_BATCH,
        rank=rank,
    )
    if plan.cache_latents:
        yield from _pooled(dataset, encode, plan, start, stop, device, rank, num_workers)
        return
    for crops in _loader(dataset, range(start, stop), num_workers, device):
        yield encode_pairs(
            crops, encode, mode=plan.downsample, keep_image=plan.keep_images, device=device
        )


def _pooled(
    dataset: CropBatches,
    encode: Encode,
    plan: BatchPlan,
    start: int,
    stop: int,
    device: torch.device,
    rank: int,
    num_workers: int,
) -> Generator[PairBatch, None, None]:
    step = start
    while step < stop:
        pool_index, offset = divmod(step, plan.steps_per_pool)
        chunks = range(pool_index * plan.pool_chunks, (pool_index + 1) * plan.pool_chunks)
        pool = _encode_pool(_loader(dataset, chunks, num_workers, device), encode, plan, device)
        order = pool_order(plan, pool_index, len(pool), rank).to(device)
        while offset < plan.steps_per_pool and step < stop:
            yield pool.take(order[offset * plan.batch_size : (offset + 1) * plan.batch_size])
            offset += 1
            step += 1
