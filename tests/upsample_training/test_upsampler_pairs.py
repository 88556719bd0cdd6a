"""Pair making and batch iteration: deterministic, resumable from any step, worker-independent."""

from __future__ import annotations

import pickle

import attrs
import pytest
import torch

from lssgen.training.batches import BatchPlan, iterate_batches
from lssgen.training.pairs import (
    STREAM_BATCH,
    CropBatches,
    downsample,
    draw_crops,
    seeded_generator,
    to_signed_unit,
)

CPU = torch.device("cpu")
# Pools of 8 crops seen twice at batch 4: a pool lasts 4 steps.
POOLED = BatchPlan(crop_size=64, batch_size=4, seed=0, pool_size=8, pool_reuse=2)


def _encode(images: torch.Tensor) -> torch.Tensor:
    # A stand-in "VAE": 8x average pooling, so iteration tests need no network.
    return torch.nn.functional.avg_pool2d(images, 8)


def test_seeded_generators_are_reproducible_and_independent() -> None:
    a = torch.rand(4, generator=seeded_generator(0, 1, 2))
    assert torch.equal(a, torch.rand(4, generator=seeded_generator(0, 1, 2)))
    assert not torch.equal(a, torch.rand(4, generator=seeded_generator(0, 1, 3)))
    assert not torch.equal(a, torch.rand(4, generator=seeded_generator(1, 1, 2)))
    with pytest.raises(ValueError):
        seeded_generator(-1)


def test_crops_stay_inside_their_images() -> None:
    sizes = [(64, 64), (80, 200), (300, 65)]
    crops = draw_crops(sizes, 64, 500, seeded_generator(0))
    assert {c.index for c in crops} == {0, 1, 2}
    for crop in crops:
        height, width = sizes[crop.index]
        assert 0 <= crop.top <= height - 64 and 0 <= crop.left <= width - 64
    assert {c.top for c in crops if c.index == 0} == {0}
    with pytest.raises(ValueError, match="smaller than the 96px crop"):
        draw_crops(sizes, 96, 20, seeded_generator(0))


def test_downsample_modes() -> None:
    x = to_signed_unit(torch.randint(0, 256, (2, 3, 8, 6), dtype=torch.uint8))
    assert torch.equal(downsample(x, "nearest"), x[..., 1::2, 1::2])
    area = downsample(x, "area")
    assert torch.allclose(area[0, 0, 0, 0], x[0, 0, :2, :2].mean())
    bicubic = downsample(x, "bicubic")
    assert bicubic.shape == (2, 3, 4, 3) and bicubic.abs().max() <= 1
    with pytest.raises(ValueError, match="even"):
        downsample(x[..., :5], "area")
    with pytest.raises(ValueError, match="one of"):
        downsample(x, "lanczos")


def test_to_signed_unit_range() -> None:
    out = to_signed_unit(torch.tensor([0, 255], dtype=torch.uint8))
    assert out.tolist() == [-1.0, 1.0]


def test_crop_batches_are_a_pure_function_of_their_index(train_images) -> None:
    data = CropBatches(train_images, crop_size=64, batch_size=3, seed=5, stream=STREAM_BATCH)
    again = pickle.loads(pickle.dumps(data))  # what DataLoader workers receive
    assert torch.equal(data[7], again[7])
    assert data[7].shape == (3, 3, 64, 64) and data[7].dtype == torch.uint8
    assert not torch.equal(data[7], data[8])
    other_rank = CropBatches(
        train_images, crop_size=64, batch_size=3, seed=5, stream=STREAM_BATCH, rank=1
    )
    assert not torch.equal(data[7], other_rank[7])
    with pytest.raises(ValueError, match="images are smaller than the 512px crop"):
        CropBatches(train_images, crop_size=512, batch_size=1, seed=0, stream=STREAM_BATCH)


def _run(source, plan: BatchPlan, start: int, stop: int, workers: int = 0) -> list[torch.Tensor]:
    return [
        b.low_latent
        for b in iterate_batches(
            source, _encode, plan, start=start, stop=stop, device=CPU, num_workers=workers
        )
    ]


@pytest.mark.parametrize("cache", [False, True], ids=["streamed", "cached"])
def test_iteration_started_at_step_k_continues_the_full_run(train_images, cache: bool) -> None:
    plan = attrs.evolve(POOLED, cache_latents=cache)  # step 5 is mid-pool
    full = _run(train_images, plan, 0, 10)
    assert len(full) == 10 and full[0].shape == (4, 3, 4, 4)
    tail = _run(train_images, plan, 5, 10)
    assert all(torch.equal(a, b) for a, b in zip(full[5:], tail, strict=True))


def test_cached_pool_is_revisited_then_replaced(train_images) -> None:
    plan = attrs.evolve(POOLED, cache_latents=True, keep_images=True)
    batches = list(iterate_batches(train_images, _encode, plan, start=0, stop=8, device=CPU))
    assert batches[0].high_image is not None and batches[0].high_image.shape == (4, 3, 64, 64)

    def crops(steps: range) -> set[bytes]:
        return {row.numpy().tobytes() for s in steps for row in batches[s].high_latent.flatten(1)}

    first_pass, second_pass, next_pool = crops(range(2)), crops(range(2, 4)), crops(range(4, 6))
    assert first_pass == second_pass  # the same 8 crops again, in another order
    assert not first_pass & next_pool


def test_data_loader_workers_give_the_same_batches(train_images) -> None:
    plan = BatchPlan(crop_size=64, batch_size=2, seed=1)
    single = _run(train_images, plan, 0, 4)
    parallel = _run(train_images, plan, 0, 4, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(single, parallel, strict=True))
