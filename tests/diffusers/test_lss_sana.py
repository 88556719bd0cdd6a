"""SANA's own differences: the 32x DC-AE latent space, the Gemma-2 prompt with its
``complex_human_instruction`` encoded once (attention masks per image), and the flow DPM-Solver
with a static ``flow_shift`` entered part-way (binning across stages: ``test_lss_binning``)."""

from __future__ import annotations

from typing import Any

import torch
from lss_testkit import Pair, recorded_inputs, run, stage_call

UNBINNED = {"use_resolution_binning": False}


def test_latents_are_the_dc_ae_space_at_32x(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    latents = run(pair.lss, min_size=64, **UNBINNED)
    assert pair.lss.lss_vae_scale_factor == 32
    assert pair.lss.lss_latent_channels == 32 == pair.lss.latent_upsampler.config.in_channels
    assert [s.latent_height for s in pair.lss.lss_plan.stages] == [2, 4]  # 64 px, then 128 px
    assert tuple(latents.shape) == (1, 32, 4, 4)


def test_the_instructed_prompt_and_its_masks_reach_every_stage_once(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    arguments = {"num_images_per_prompt": 2, **UNBINNED}
    with recorded_inputs(pair.denoiser) as stock_calls:
        run(pair.stock, **arguments)
    with recorded_inputs(pair.lss.text_encoder) as encodes, recorded_inputs(pair.denoiser) as calls:
        run(
            pair.lss,
            min_size=64,
            generator=[torch.Generator().manual_seed(s) for s in (1, 2)],
            **arguments,
        )
    assert len(pair.lss.lss_plan.stages) == 2
    assert len(encodes) == 2  # the prompt and the negative prompt, once for all stages
    # The stock default complex_human_instruction is prepended to the prompt, not the negative.
    assert encodes[0]["shape"][1] > encodes[1]["shape"][1]
    stock = stock_calls[0]["kwargs"]
    assert stock["encoder_attention_mask"].shape[0] == 4  # two images, each with its negative
    for call in calls:
        assert torch.equal(
            call["kwargs"]["encoder_attention_mask"], stock["encoder_attention_mask"]
        )
        assert torch.equal(call["kwargs"]["encoder_hidden_states"], stock["encoder_hidden_states"])


def test_later_stages_enter_the_stock_flow_schedule_part_way(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    assert pair.lss.scheduler.config.use_flow_sigmas
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64, **UNBINNED)
    first, last = pair.lss.lss_plan.stages
    assert last.start_index > 0
    with recorded_inputs(pair.denoiser) as stock_calls:
        run(pair.stock, **stage_call(last))
    # The static flow_shift gives the same schedule at every size; the last stage runs the stock
    # call's timesteps from its entry step on, after the first stage's own steps.
    stock_timesteps = [call["timestep"] for call in stock_calls]
    stage_timesteps = [call["timestep"] for call in calls[first.num_denoising_steps :]]
    assert len(stage_timesteps) == last.num_steps - last.start_index
    for got, expected in zip(stage_timesteps, stock_timesteps[last.start_index :]):
        assert torch.equal(got, expected)
