"""Resolution binning across stages, for every family that bins (PixArt-Sigma, SANA): with one
stage the stock call bit for bit, with more the earlier stages unbinned and the image resized
back to the size asked (the shared tests run these families with binning off)."""

from __future__ import annotations

from typing import Any

import attrs
import PIL.Image
import pytest
import torch
from lss_testkit import LSS_CLASSES, TARGET, recorded_inputs, run


@attrs.frozen
class Binned:
    """What a family's tiny model bins ``TARGET`` to, and a multi-stage plan of it."""

    bin_side: int  # the side of the tiny model's bin for a square TARGET
    vae_factor: int
    channels: int
    min_size: int
    stage_heights: tuple[int, ...]


BINNED = {
    # 256-px bins (transformer sample_size 32), 8x VAE.
    "pixart-sigma": Binned(256, 8, 4, min_size=64, stage_heights=(64, 128, 256)),
    # 512-px bins (transformer sample_size 16), 32x DC-AE.
    "sana": Binned(512, 32, 32, min_size=256, stage_heights=(256, 512)),
}


@pytest.mark.parametrize("kind", list(BINNED))
def test_binning_one_stage_is_the_stock_call(lss_pair: Any, kind: str) -> None:
    binned, pair = BINNED[kind], lss_pair(kind)
    expected = run(pair.stock)
    # The stock call generates the bin, not TARGET.
    assert expected.shape[-1] == binned.bin_side // binned.vae_factor
    assert torch.equal(run(pair.lss, start_sigma=1.0), expected)
    assert pair.lss.lss_plan.height == binned.bin_side


@pytest.mark.parametrize("kind", list(BINNED))
def test_binning_runs_earlier_stages_unbinned_and_ends_at_the_size_asked(
    lss_pair: Any, kind: str
) -> None:
    binned, pair = BINNED[kind], lss_pair(kind)
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=binned.min_size)
    plan = pair.lss.lss_plan
    # The target is the stock bin; every stage runs at its planned size, not at a bin of it.
    assert tuple(s.height for s in plan.stages) == binned.stage_heights
    expected = [s.latent_width for s in plan.stages for _ in range(s.num_denoising_steps)]
    assert [call["shape"][-1] for call in calls] == expected
    side = binned.bin_side // binned.vae_factor
    assert tuple(latents.shape) == (1, binned.channels, side, side)
    (image,) = run(pair.lss, min_size=binned.min_size, output_type="pil")
    assert isinstance(image, PIL.Image.Image)
    assert image.size == (TARGET, TARGET)  # resized back to the size asked, as stock does


def test_every_family_that_bins_is_tested_here() -> None:
    binning = {kind for kind, cls in LSS_CLASSES.items() if cls.lss_resolution_binning}
    assert binning == set(BINNED)
