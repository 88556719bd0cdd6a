"""PixArt-Sigma's own differences: resolution binning across stages, attention masks per image,
guidance decided without a ``do_classifier_free_guidance`` property (the shared tests run it
with binning off)."""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from lss_testkit import Pair, latent_call, recorded_inputs

TARGET = 128  # binned to 256 px by the tiny model's 256-px bins
STEPS = 8


def run(pipe: Any, **kwargs: Any) -> Any:
    return pipe(**latent_call(TARGET, STEPS, **kwargs)).images


def latent_sides(calls: list[dict[str, Any]]) -> list[int]:
    return [call["shape"][-1] for call in calls]


def test_binning_one_stage_is_the_stock_call(lss_pair: Any) -> None:
    pair: Pair = lss_pair("pixart-sigma")
    expected = run(pair.stock)
    assert expected.shape[-1] == 256 // 8  # the stock call generates the bin, not 128 px
    assert torch.equal(run(pair.lss, start_sigma=1.0), expected)
    assert pair.lss.lss_plan.height == 256


def test_binning_runs_earlier_stages_unbinned_and_ends_at_the_size_asked(lss_pair: Any) -> None:
    pair: Pair = lss_pair("pixart-sigma")
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=64)
    plan = pair.lss.lss_plan
    # The target is the stock bin; every stage runs at its planned size, not at a bin of it.
    assert [s.height for s in plan.stages] == [64, 128, 256]
    expected = [s.latent_width for s in plan.stages for _ in range(s.num_denoising_steps)]
    assert latent_sides(calls) == expected
    assert tuple(latents.shape) == (1, 4, 32, 32)
    (image,) = run(pair.lss, min_size=64, output_type="pil")
    assert isinstance(image, PIL.Image.Image)
    assert image.size == (TARGET, TARGET)  # resized back to the size asked, as stock does


def test_attention_masks_reach_every_stage_one_row_per_image(lss_pair: Any) -> None:
    pair: Pair = lss_pair("pixart-sigma")
    arguments = {"num_images_per_prompt": 2, "use_resolution_binning": False}
    with recorded_inputs(pair.denoiser) as stock_calls:
        run(pair.stock, **arguments)
    with recorded_inputs(pair.denoiser) as calls:
        run(
            pair.lss,
            min_size=64,
            generator=[torch.Generator().manual_seed(s) for s in (1, 2)],
            **arguments,
        )
    assert len(pair.lss.lss_plan.stages) == 2
    stock_mask = stock_calls[0]["kwargs"]["encoder_attention_mask"]
    assert stock_mask.shape[0] == 4  # two images, each with its negative (CFG in one batch)
    for call in calls:
        assert torch.equal(call["kwargs"]["encoder_attention_mask"], stock_mask)


def test_guidance_follows_the_scale_without_a_guidance_property(lss_pair: Any) -> None:
    pair: Pair = lss_pair("pixart-sigma")
    assert not hasattr(type(pair.stock), "do_classifier_free_guidance")
    for scale, batch in ((1.0, 1), (4.5, 2)):
        with recorded_inputs(pair.denoiser) as calls:
            run(pair.lss, min_size=64, guidance_scale=scale, use_resolution_binning=False)
        assert {call["shape"][0] for call in calls} == {batch}
