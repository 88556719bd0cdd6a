"""Lumina 2's own differences: the Gemma-2 prompt with its system prompt encoded once (attention
masks per image), guidance as two transformer calls, ``cfg_normalization`` and
``cfg_trunc_ratio`` (restated per stage: guidance covers the noise levels a one-stage stock call
guides), and a schedule that does not change with the size (the stock ``mu`` reads the channel
count)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

import torch
from hypothesis import given
from hypothesis import strategies as st
from lss_testkit import PROMPT, STEPS, Pair, recorded_inputs, run

from lssgen_diffusers.lumina2 import stage_cfg_trunc_ratio


def stock_guided(ratio: float, steps: int) -> list[bool]:
    """Which steps a stock call guides: step ``i`` unless ``(i + 1) / steps > ratio``."""
    return [not (i + 1) / steps > ratio for i in range(steps)]


def guided_steps(calls: list[dict[str, Any]]) -> list[tuple[float, bool]]:
    """(noise level, guided) per denoising step from the transformer calls: a guided step calls
    it twice at its timestep (the conditional branch, then the unconditional one), and no two
    steps in a row share a timestep. Lumina's transformer gets ``1 - sigma`` (0 is noise)."""
    timesteps = [float(call["timestep"][0]) for call in calls]
    return [(1 - t, len(list(group)) == 2) for t, group in groupby(timesteps)]


def test_one_stage_with_truncation_normalization_and_a_system_prompt_is_stock(
    lss_pair: Any,
) -> None:
    pair: Pair = lss_pair("lumina2")
    extra = {
        "cfg_trunc_ratio": 0.5,
        "cfg_normalization": False,
        "system_prompt": "You draw shapes.",
        "negative_prompt": "blurry",
    }
    assert torch.equal(run(pair.lss, start_sigma=1.0, **extra), run(pair.stock, **extra))


def test_the_system_prompt_and_masks_are_encoded_once_for_every_stage(lss_pair: Any) -> None:
    pair: Pair = lss_pair("lumina2")
    arguments = {"num_images_per_prompt": 2, "system_prompt": "You draw shapes."}
    with recorded_inputs(pair.denoiser) as stock_calls:
        run(pair.stock, **arguments)
    generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
    with recorded_inputs(pair.lss.text_encoder) as encodes, recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64, generator=generators, **arguments)
    assert len(pair.lss.lss_plan.stages) == 2
    assert len(encodes) == 2  # the prompt and the negative prompt, once for all stages
    # The system prompt goes before the prompt, not before the (empty) negative prompt.
    prompt_mask, negative_mask = (e["kwargs"]["attention_mask"] for e in encodes)
    assert prompt_mask.sum() > negative_mask.sum() + len(PROMPT)
    conditional, unconditional = (c["kwargs"] for c in stock_calls[:2])
    assert conditional["encoder_attention_mask"].shape[0] == 2  # one row per image
    for index, call in enumerate(calls):
        expected = (conditional, unconditional)[index % 2]  # every step is guided here
        for name in ("encoder_hidden_states", "encoder_attention_mask"):
            assert torch.equal(call["kwargs"][name], expected[name])


def test_the_schedule_is_the_same_at_every_size(lss_pair: Any) -> None:
    pair: Pair = lss_pair("lumina2")
    plan = pair.lss.lss_plan_for(height=256, width=256, num_inference_steps=STEPS, min_size=64)
    assert [s.height for s in plan.stages] == [64, 128, 256]
    assert len({s.sigmas for s in plan.stages}) == 1


def test_cfg_trunc_ratio_guides_the_levels_a_one_stage_call_guides(lss_pair: Any) -> None:
    pair: Pair = lss_pair("lumina2")
    for ratio in (0.5, 0.875):
        with recorded_inputs(pair.denoiser) as stock_calls:
            run(pair.stock, cfg_trunc_ratio=ratio)
        plain = [t for t, _ in guided_steps(stock_calls)]
        assert [g for _, g in guided_steps(stock_calls)] == stock_guided(ratio, STEPS)
        lowest = min(t for t, g in zip(plain, stock_guided(ratio, STEPS)) if g)
        with recorded_inputs(pair.denoiser) as calls:
            run(pair.lss, min_size=64, cfg_trunc_ratio=ratio)
        plan = pair.lss.lss_plan
        steps = guided_steps(calls)
        assert len(steps) == plan.num_denoising_steps
        assert [g for _, g in steps] == [t >= lowest for t, _ in steps]
        last = steps[plan.stages[0].num_denoising_steps :]
        # 0.5 guides down to a level above the last stage's entry: the last stage is unguided
        # (as those levels are in the one-stage call), though its own ratio would guide half.
        assert any(g for _, g in last) is (ratio == 0.875)


@given(
    steps=st.integers(1, 40),
    ratio=st.floats(-0.5, 1.5, allow_nan=False),
    entry=st.integers(0, 39),
    shift=st.floats(1.0, 8.0),
)
def test_stage_ratio_guides_the_steps_at_or_above_the_lowest_guided_level(
    steps: int, ratio: float, entry: int, shift: float
) -> None:
    def levels(n: int) -> list[float]:
        linear = [1 - i / n for i in range(n)]
        return [shift * s / (1 + (shift - 1) * s) for s in linear]

    plain = levels(steps)
    guided = stock_guided(ratio, steps)
    # One stage with the same schedule: exactly the stock steps.
    assert stock_guided(stage_cfg_trunc_ratio(ratio, plain, plain), steps) == guided
    # A later stage entering another schedule part-way: the steps at or above the lowest level.
    run_levels = levels(steps + 3)[min(entry, steps + 2) :]
    got = stock_guided(stage_cfg_trunc_ratio(ratio, plain, run_levels), len(run_levels))
    if all(guided):
        assert all(got)
    else:
        lowest = min((level for level, g in zip(plain, guided) if g), default=float("inf"))
        assert got == [level >= lowest for level in run_levels]


def test_an_interrupt_stops_nothing_as_in_the_stock_loop(lss_pair: Any) -> None:
    pair: Pair = lss_pair("lumina2")

    def stop(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        pipe._interrupt = True
        return tensors

    with recorded_inputs(pair.denoiser) as stock_calls:
        expected = run(pair.stock, guidance_scale=1.0, callback_on_step_end=stop)
    assert len(stock_calls) == STEPS  # the stock loop ran on
    got = run(pair.lss, start_sigma=1.0, guidance_scale=1.0, callback_on_step_end=stop)
    assert torch.equal(got, expected)
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=64, guidance_scale=1.0, callback_on_step_end=stop)
    assert len(calls) == pair.lss.lss_plan.num_denoising_steps  # every stage ran
    assert tuple(latents.shape) == (1, 16, 16, 16)
    assert not pair.lss.interrupt
