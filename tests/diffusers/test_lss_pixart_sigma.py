"""PixArt-Sigma's own differences: attention masks per image, guidance decided without a
``do_classifier_free_guidance`` property (binning across stages: ``test_lss_binning``)."""

from __future__ import annotations

from typing import Any

import torch
from lss_testkit import Pair, recorded_inputs, run


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
