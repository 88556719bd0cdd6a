"""LSSWanPipeline on a tiny random Wan 2.1 / 2.2: stock with one stage, the planned calls with two,
Wan 2.2's expert switch on the noise-level axis, and bad sizes and frames refused before work."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

import pytest
import torch
from video_testkit import (
    assert_several_videos_per_prompt,
    lss_over,
    recorded_inputs,
    two_stage_calls,
    video_call,
)

from lssgen_core.errors import LSSArgumentError
from lssgen_diffusers.wan import LSSWanPipeline

# 64x64, 9 frames: 3 latent frames of 8x8 (4x4 patches); min_size 32 gives 32 -> 64 px.
SIZE, FRAMES, LATENT_FRAMES, STEPS = 64, 9, 3, 8


lss_with = partial(lss_over, LSSWanPipeline)


def test_one_stage_of_wan_2_2_is_the_stock_call_bit_for_bit(wan22: Any) -> None:
    stock, lss = wan22
    call = video_call(SIZE, SIZE, FRAMES, 4, output_type="latent")
    expected = stock(**call).frames
    got = lss(**{**call, "generator": torch.Generator().manual_seed(0)}, start_sigma=1).frames
    assert torch.equal(got, expected)


@pytest.mark.parametrize("scaling_mode", ["resnet", "latent", "pixel"])
def test_two_stages_run_the_planned_denoiser_calls_and_make_the_asked_video(
    wan: Any, scaling_mode: str
) -> None:
    steps: list[tuple[int, int]] = []

    def count(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        steps.append((pipe.lss_stage.index, step))
        return tensors

    call = video_call(SIZE, SIZE, FRAMES, STEPS)
    # The 2-D upsampler runs over the B * F frames of the first stage's latent.
    lss, calls = two_stage_calls(
        LSSWanPipeline,
        wan[0],
        scaling_mode,
        call,
        (LATENT_FRAMES, 16, 4, 4),
        callback_on_step_end=count,
    )
    plan = lss.lss_plan
    # Guidance 5 (the stock default): a conditional and an unconditional call per step, on
    # [B, 16, F, h, w] latents with the call's frames in every stage.
    per_stage = Counter(call["shape"] for call in calls)
    assert dict(per_stage) == {
        (1, 16, LATENT_FRAMES, 4, 4): 2 * plan.stages[0].num_denoising_steps,
        (1, 16, LATENT_FRAMES, 8, 8): 2 * plan.stages[1].num_denoising_steps,
    }
    assert steps == [(s.index, i) for s in plan.stages for i in range(s.num_denoising_steps)]
    assert lss.num_timesteps == plan.num_denoising_steps
    # The target stage's first step is at the planned entry level: UniPC's timesteps are
    # 1000 * sigma cast to integers, the sigma itself is the planned one.
    first_target = calls[2 * plan.stages[0].num_denoising_steps]["timestep"]
    assert abs(float(first_target[0]) - 1000 * plan.target.entry_level) < 1


def test_the_plan_counts_tokens_over_frames(wan: Any) -> None:
    _, lss = wan
    plan = lss.lss_plan_for(height=480, width=832, num_frames=81)  # the 480p setting
    assert [(s.height, s.width) for s in plan.stages] == [(240, 416), (480, 832)]
    assert plan.target.num_tokens == 21 * 30 * 52  # 81 frames -> 21 latent; 16 px patches
    assert plan.stages[0].num_tokens == 21 * 15 * 26
    assert "81 frames (21 latent)" in plan.describe()


def test_a_frame_count_stock_rounds_is_planned_as_stock_makes_it(wan: Any) -> None:
    """WanPipeline makes 4 * (num_frames // 4) + 1 frames for other counts: 12 -> 13 frames,
    4 latent frames (not (12 - 1) // 4 + 1 = 3)."""
    stock, lss = wan
    plan = lss.lss_plan_for(height=SIZE, width=SIZE, num_frames=12, min_size=32)
    assert plan.frames is not None and plan.frames.num_frames == 13
    assert plan.target.size.latent_frames == 4
    made = stock(**video_call(SIZE, SIZE, 12, 1, output_type="latent")).frames
    assert made.shape[2] == 4
    frames = lss(**video_call(SIZE, SIZE, 12, STEPS), min_size=32, scaling_mode="latent").frames
    assert frames.shape == (1, 13, SIZE, SIZE, 3)


def boundary_split(calls: list[dict], boundary: float) -> tuple[set, set]:
    """The timesteps of a recorded list of calls above / below ``boundary``."""
    levels = {float(c["timestep"][0]) for c in calls}
    return {t for t in levels if t >= boundary}, {t for t in levels if t < boundary}


@pytest.mark.parametrize("start_sigma", [0.95, 0.6])
def test_wan_2_2_switches_experts_at_the_same_noise_level_with_and_without_lss(
    wan22: Any, start_sigma: float
) -> None:
    """transformer denoises every step at t >= boundary_ratio * 1000, transformer_2 every step
    below, in the stock call and in every LSS stage; a later stage entering above the boundary
    starts on transformer and switches, one entering below runs transformer_2 only."""
    stock, lss = wan22
    boundary = stock.config.boundary_ratio * stock.scheduler.config.num_train_timesteps
    call = video_call(SIZE, SIZE, FRAMES, STEPS, output_type="latent")
    with recorded_inputs(stock.transformer) as high, recorded_inputs(stock.transformer_2) as low:
        stock(**call)
    assert high and low
    assert boundary_split(high, boundary)[1] == set() and boundary_split(low, boundary)[0] == set()

    with recorded_inputs(lss.transformer) as high, recorded_inputs(lss.transformer_2) as low:
        lss(
            **{**call, "generator": torch.Generator().manual_seed(0)},
            min_size=32,
            start_sigma=start_sigma,
            scaling_mode="latent",
        )
    plan = lss.lss_plan
    assert plan is not None and len(plan.stages) == 2
    assert boundary_split(high, boundary)[1] == set() and boundary_split(low, boundary)[0] == set()
    target_latent = (1, 16, LATENT_FRAMES, 8, 8)
    high_target = [c for c in high if c["shape"] == target_latent]
    low_target = [c for c in low if c["shape"] == target_latent]
    entry = 1000 * plan.target.entry_level
    assert (entry >= boundary) == (start_sigma > stock.config.boundary_ratio)  # both cases run
    if entry >= boundary:
        assert high_target and low_target
        assert abs(float(high_target[0]["timestep"][0]) - entry) < 1
    else:
        assert not high_target and low_target
        assert abs(float(low_target[0]["timestep"][0]) - entry) < 1
    # The first (small) stage runs from pure noise through both experts, as stock does.
    assert any(c["shape"] == (1, 16, LATENT_FRAMES, 4, 4) for c in high)
    assert any(c["shape"] == (1, 16, LATENT_FRAMES, 4, 4) for c in low)


def test_prompt_embeds_for_several_videos_per_prompt(wan: Any) -> None:
    stock, lss = wan
    embeds, _ = stock.encode_prompt(prompt="a dot", do_classifier_free_guidance=False)
    assert_several_videos_per_prompt(
        lss, video_call(SIZE, SIZE, FRAMES, STEPS), prompt_embeds=embeds
    )


def test_720p_cannot_halve_and_is_refused_naming_height_and_the_fix(wan: Any) -> None:
    """1280x720 halves to 360 px, 22.5 patches of 16 px: refused before any work."""
    _, lss = wan
    with pytest.raises(LSSArgumentError) as caught:
        lss.lss_plan_for(height=720, width=1280, num_frames=81)
    assert caught.value.argument == "height" and "min_size" in str(caught.value)
    assert lss.lss_plan_for(height=720, width=1280, num_frames=81, min_size=720).is_single_stage


def test_a_flow_euler_scheduler_is_entered_part_way_too(wan: Any) -> None:
    """Wan with FlowMatchEulerDiscreteScheduler (static shift), as Diffusers' own Wan tests run it:
    one stage is stock; two run the planned steps, the target entered at its planned level."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    stock, _ = wan
    euler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    lss = lss_with(stock, scheduler=euler)
    plain = type(stock)(**{**stock.components, "scheduler": euler})
    plain.set_progress_bar_config(disable=True)
    call = video_call(SIZE, SIZE, FRAMES, 4, output_type="latent")
    expected = plain(**call).frames
    got = lss(**{**call, "generator": torch.Generator().manual_seed(0)}, start_sigma=1).frames
    assert torch.equal(got, expected)
    with recorded_inputs(lss.transformer) as calls:
        lss(**video_call(SIZE, SIZE, FRAMES, STEPS), min_size=32, scaling_mode="latent")
    plan = lss.lss_plan
    per_stage = Counter(call["shape"] for call in calls)
    assert list(per_stage.values()) == [2 * s.num_denoising_steps for s in plan.stages]
    first_target = calls[2 * plan.stages[0].num_denoising_steps]["timestep"]
    assert float(first_target[0]) == pytest.approx(1000 * plan.target.entry_level, rel=1e-5)
