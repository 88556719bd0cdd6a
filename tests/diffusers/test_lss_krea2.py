"""Krea 2's own differences: its patch size and rounding up, its shift (dynamic, or fixed for the
distilled checkpoint), and guidance on for ``guidance_scale > 0`` with an empty negative prompt
(its spatial view, Qwen-Image's, is tested with Qwen-Image's in ``test_lss_qwen_image``)."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import Krea2Pipeline
from lss_testkit import (
    Pair,
    call_counts,
    family_pair,
    random_upsampler,
    recorded_inputs,
    run,
    stage_call,
)

from lssgen_diffusers import LSSKrea2Pipeline

MIN_SIZE = 64


pair = family_pair("krea2")


def stage_timesteps_match_stock(pair: Pair, stock: Any, lss: Any, **kwargs: Any) -> None:
    """Every stage's denoiser timesteps are those of a stock call at the stage's size."""
    transformer = lss.transformer
    with recorded_inputs(transformer) as calls:
        run(lss, min_size=MIN_SIZE, guidance_scale=0.0, **kwargs)
    seen = [float(call["timestep"][0]) for call in calls]
    for stage in lss.lss_plan.stages:
        with recorded_inputs(transformer) as stock_calls:
            run(stock, **stage_call(stage), guidance_scale=0.0, **kwargs)
        expected = [float(call["timestep"][0]) for call in stock_calls][stage.start_index :]
        assert seen[: len(expected)] == expected, stage.index
        seen = seen[len(expected) :]
    assert seen == []


def test_each_stage_runs_the_stock_schedule_of_its_size(pair: Pair) -> None:
    stage_timesteps_match_stock(pair, pair.stock, pair.lss)
    small, large = (pair.lss.lss_plan_for(height=s, width=s, start_sigma=1.0) for s in (64, 128))
    assert small.target.sigmas != large.target.sigmas  # mu from the token count


def test_the_distilled_checkpoint_has_one_shift_for_every_stage(pair: Pair) -> None:
    stock = Krea2Pipeline(**pair.stock.components, is_distilled=True)
    stock.set_progress_bar_config(disable=True)
    # A config argument, not a component: from_pipe carries it over.
    lss = LSSKrea2Pipeline.from_pipe(stock, latent_upsampler=random_upsampler(16))
    lss.set_progress_bar_config(disable=True)
    assert lss.config.is_distilled
    stage_timesteps_match_stock(pair, stock, lss)
    small, large = (lss.lss_plan_for(height=s, width=s, start_sigma=1.0) for s in (64, 128))
    assert small.target.sigmas == large.target.sigmas  # mu fixed at 1.15


def test_sizes_are_rounded_up_as_stock_before_planning(pair: Pair) -> None:
    latents = run(pair.lss, height=120, width=90, min_size=48)
    plan = pair.lss.lss_plan
    assert (plan.target.height, plan.target.width) == (128, 96)
    assert [(s.height, s.width) for s in plan.stages] == [(64, 48), (128, 96)]
    assert tuple(latents.shape) == (1, (128 // 16) * (96 // 16), 64)
    stock = run(pair.stock, height=120, width=90)
    assert stock.shape == latents.shape


def test_guidance_runs_both_branches_with_an_empty_negative_prompt_encoded_once(
    pair: Pair,
) -> None:
    for scale, branches, encodes in ((4.5, 2, 2), (0.0, 1, 1)):
        counts = call_counts(pair, min_size=MIN_SIZE, guidance_scale=scale)
        assert counts == (branches * pair.lss.lss_plan.num_denoising_steps, encodes), scale
    # The default negative prompt is "", as stock: the first stage is the stock call at its size.
    seen: list[torch.Tensor] = []

    def keep(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        seen.append(tensors["latents"].clone())
        return tensors

    run(pair.lss, min_size=MIN_SIZE, callback_on_step_end=keep)
    first = pair.lss.lss_plan.stages[0]
    expected = run(pair.stock, **stage_call(first), negative_prompt="")
    assert torch.equal(seen[first.num_denoising_steps - 1], expected)
