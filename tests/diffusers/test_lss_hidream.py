"""HiDream's own differences: the stock call scales every size to one area (each stage runs at its
own), non-square latents padded to ``max_seq`` tokens inside the transformer, the constant shift
(and UniPC by the step count alone), and four text encoders encoded once, the Llama layers'
batch on axis 1."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
import torch
from diffusers import HiDreamImagePipeline, UniPCMultistepScheduler
from hypothesis import given, settings
from hypothesis import strategies as st
from lss_testkit import PROMPT, STEPS, Pair, lss_from_stock, recorded_inputs, run

from lssgen_core.errors import LSSArgumentError
from lssgen_diffusers.hidream import sample_size_keeping, stock_generated_size
from lssgen_diffusers.testing_hidream import tiny_hidream_pipeline, tiny_hidream_scheduler


def with_scheduler(scheduler: Any) -> Pair:
    stock = HiDreamImagePipeline(**{**tiny_hidream_pipeline().components, "scheduler": scheduler})
    stock.set_progress_bar_config(disable=True)
    return Pair("hidream", stock, lss_from_stock("hidream", stock))


class _Sized(Exception):
    def __init__(self, height: int, width: int) -> None:
        self.size = (height, width)


def stock_size(pipe: Any, embeds: dict[str, Any], height: int, width: int) -> tuple[int, int]:
    """The size the stock ``__call__`` generates for ``height`` x ``width``: the one it hands
    to ``prepare_latents`` (stopped there; the given embeddings spare the text encoders)."""

    def stop(batch: int, channels: int, height: int, width: int, *args: Any) -> None:
        raise _Sized(height, width)

    vars(pipe)["prepare_latents"] = stop
    try:
        HiDreamImagePipeline.__call__(pipe, height=height, width=width, **embeds)
    except _Sized as sized:
        return sized.size
    finally:
        del vars(pipe)["prepare_latents"]
    raise AssertionError("the stock call never prepared its latents")


@pytest.fixture(scope="module")
def embeds(lss_pair: Any) -> dict[str, Any]:
    pair = lss_pair("hidream")
    # The stock encode_prompt's outputs, named as its __call__ takes them (the LSS pipeline's
    # lss_encode_outputs).
    names = pair.lss.lss_encode_outputs
    with torch.no_grad():
        return dict(zip(names, pair.stock.encode_prompt(PROMPT), strict=True))


# --- sizes ---------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(height=st.integers(8, 4096), width=st.integers(8, 4096), vae=st.sampled_from([1, 8]))
def test_the_planned_target_is_the_size_the_stock_call_generates(
    lss_pair: Any, embeds: dict[str, Any], height: int, width: int, vae: int
) -> None:
    pipe = lss_pair("hidream").lss
    # vae 8: the released models' geometry (1024 x 1024 px area, multiples of 16 px).
    vars(pipe)["vae_scale_factor"], factor = vae, pipe.vae_scale_factor
    try:
        expected = stock_size(pipe, embeds, height, width)
        assert pipe.lss_stock_size(height, width) == expected
    finally:
        vars(pipe)["vae_scale_factor"] = factor
    assert expected[0] * expected[1] <= (128 * vae) ** 2  # the area of default_sample_size


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 400), width=st.integers(1, 400), vae=st.sampled_from([1, 8, 16]))
def test_a_stage_sample_size_makes_the_stock_call_keep_the_stage_size(
    height: int, width: int, vae: int
) -> None:
    division = 2 * vae
    height, width = height * division, width * division
    side = sample_size_keeping(height, width, vae)
    assert stock_generated_size(height, width, side, vae) == (height, width)


def test_sizes_off_the_stock_rounding_are_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        sample_size_keeping(1000, 1024, 8)


def test_one_stage_is_the_stock_call_which_scales_the_size(lss_pair: Any) -> None:
    pair: Pair = lss_pair("hidream")
    expected = run(pair.stock, height=64, width=64)
    assert expected.shape[-2:] == (128, 128)  # 64 px asked, the area of default_sample_size made
    assert torch.equal(run(pair.lss, height=64, width=64, start_sigma=1.0), expected)
    assert (pair.lss.lss_plan.height, pair.lss.lss_plan.width) == (128, 128)


def test_every_stage_runs_at_its_own_size_and_the_stock_setting_stays(lss_pair: Any) -> None:
    pair: Pair = lss_pair("hidream")
    seen: list[tuple[int, Any]] = []

    def during(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        seen.append((pipe.lss_stage.index, pipe.default_sample_size))
        return tensors

    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, height=64, width=64, min_size=64, callback_on_step_end=during)
    plan = pair.lss.lss_plan
    assert [s.height for s in plan.stages] == [64, 128]  # the target: the stock 128 px
    expected = [(s.latent_height, s.latent_width) for s in plan.stages]
    per_step = [e for e, s in zip(expected, plan.stages) for _ in range(s.num_denoising_steps)]
    assert [c["shape"][-2:] for c in calls] == per_step
    assert tuple(latents.shape) == (1, 16, 128, 128)
    assert {index: size for index, size in seen} == {0: 64, 1: 128}
    assert pair.lss.default_sample_size == pair.stock.default_sample_size == 128


def test_non_square_stages_are_padded_to_max_seq_by_the_transformer(lss_pair: Any) -> None:
    pair: Pair = lss_pair("hidream")
    transformer = pair.lss.transformer
    with recorded_inputs(transformer.x_embedder) as tokens:
        latents = run(pair.lss, height=256, width=64, min_size=32)  # the area of 128 x 128 px
    plan = pair.lss.lss_plan
    assert [(s.height, s.width) for s in plan.stages] == [(128, 32), (256, 64)]
    assert tuple(latents.shape) == (1, 16, 256, 64)
    # Every step of both stages: max_seq tokens (64 and 256 real ones), 8x8x16 features each.
    assert {c["shape"] for c in tokens} == {(2, transformer.max_seq, 8 * 8 * 16)}
    assert len(tokens) == plan.num_denoising_steps
    assert run(pair.stock, height=256, width=64).shape == latents.shape


@pytest.mark.parametrize("asked", [(136, 120), (68, 60)], ids=["kept", "scaled"])
def test_a_target_that_cannot_halve_is_refused_before_any_model_runs(
    lss_pair: Any, asked: tuple[int, int]
) -> None:
    pair: Pair = lss_pair("hidream")
    height, width = asked
    with (
        recorded_inputs(pair.denoiser) as calls,
        recorded_inputs(pair.lss.text_encoder_4) as text,
        pytest.raises(LSSArgumentError) as refused,
    ):
        # The stock call makes 136 x 120 of both; 68 px (a half) is no multiple of 8 px.
        run(pair.lss, height=height, width=width, min_size=60)
    assert refused.value.argument == "height" and "height=136" in str(refused.value)
    if height != 136:
        assert f"height={height} rounds (or scales) to 136" in str(refused.value)
    assert calls == [] and text == []


# --- schedule ------------------------------------------------------------------------------------


def stage_schedules(pair: Pair, **kwargs: Any) -> dict[int, torch.Tensor]:
    """The full schedule each stage's scheduler holds, by stage index."""
    schedules: dict[int, torch.Tensor] = {}

    def keep(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        schedules.setdefault(pipe.lss_stage.index, pipe.scheduler.scheduler.sigmas.clone())
        return tensors

    run(pair.lss, callback_on_step_end=keep, **kwargs)
    return schedules


def stock_schedule(pair: Pair, steps: int) -> torch.Tensor:
    run(pair.stock, num_inference_steps=steps)
    return pair.stock.scheduler.sigmas.clone()


@pytest.mark.parametrize(
    "scheduler",
    [
        lambda: tiny_hidream_scheduler(use_dynamic_shifting=True),
        lambda: UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
    ],
    ids=["flow-match-dynamic", "unipc-flow"],
)
def test_every_stage_has_the_stock_schedule_of_its_step_count(scheduler: Any) -> None:
    pair = with_scheduler(scheduler())
    schedules = stage_schedules(pair, min_size=64, shorten_intermediate_steps=True)
    plan = pair.lss.lss_plan
    assert [s.num_steps for s in plan.stages] == [STEPS // 2, STEPS]
    for stage in plan.stages:
        # The stock call's schedule does not depend on the size (mu from max_seq, not tokens).
        assert torch.equal(schedules[stage.index], stock_schedule(pair, stage.num_steps))


def test_the_shift_is_not_the_token_count_rule() -> None:
    # The FLUX rule (mu from the stage's tokens) would give the 64-px stage another schedule.
    pair = with_scheduler(tiny_hidream_scheduler(use_dynamic_shifting=True))
    small = stage_schedules(pair, min_size=64)[0]
    flux_rule = tiny_hidream_scheduler(use_dynamic_shifting=True)
    tokens = 64 * 64 // 8**2
    flux_rule.set_timesteps(STEPS, mu=0.5 + (tokens - 256) * (1.15 - 0.5) / (4096 - 256))
    assert not torch.allclose(small, flux_rule.sigmas)


# --- prompts -------------------------------------------------------------------------------------

PROMPTS = {
    "prompt": ["a red circle", "a blue square"],
    "prompt_2": "clip two",
    "prompt_3": "t5 three",
    "prompt_4": "llama four",
    "negative_prompt": "blurry",
    "negative_prompt_4": "llama negative",
}
EMBEDS = ("encoder_hidden_states_t5", "encoder_hidden_states_llama3", "pooled_embeds")


def test_four_encoders_run_once_and_every_stage_gets_the_stock_embeddings(lss_pair: Any) -> None:
    pair: Pair = lss_pair("hidream")
    encoders = [pair.lss.text_encoder, pair.lss.text_encoder_2]
    encoders += [pair.lss.text_encoder_3, pair.lss.text_encoder_4]
    arguments = {**PROMPTS, "num_images_per_prompt": 2}
    counts, inputs = [], []
    for pipe, extra in ((pair.stock, {}), (pair.lss, {"min_size": 64})):
        generators = [torch.Generator().manual_seed(s) for s in range(4)]
        with ExitStack() as stack:
            calls = stack.enter_context(recorded_inputs(pair.denoiser))
            encoded = [stack.enter_context(recorded_inputs(e)) for e in encoders]
            run(pipe, generator=generators, **arguments, **extra)
        counts.append([len(e) for e in encoded])
        inputs.append(calls)
    stock_counts, lss_counts = counts
    stock_calls, lss_calls = inputs
    assert len(pair.lss.lss_plan.stages) == 2
    assert lss_counts == stock_counts == [2, 2, 2, 2]  # the prompts, then the negative ones
    llama = stock_calls[0]["kwargs"]["encoder_hidden_states_llama3"]
    layers = pair.lss.text_encoder_4.config.num_hidden_layers
    assert llama.shape[:2] == (layers, 2 * 4)  # (layers, guided batch of 2 prompts x 2 images)
    for call in lss_calls:  # both stages
        for name in EMBEDS:
            assert torch.equal(call["kwargs"][name], stock_calls[0]["kwargs"][name]), name


def test_embeddings_instead_of_prompts_give_the_prompted_images(
    lss_pair: Any, embeds: dict[str, Any]
) -> None:
    pair: Pair = lss_pair("hidream")
    # One row per prompt (the Llama layers' batch on axis 1), two images per prompt.
    arguments = {"min_size": 64, "num_images_per_prompt": 2}
    generators = [torch.Generator().manual_seed(s) for s in range(2)]
    prompted = run(pair.lss, generator=generators, **arguments)
    generators = [torch.Generator().manual_seed(s) for s in range(2)]
    given = run(pair.lss, prompt=None, generator=generators, **embeds, **arguments)
    assert len(pair.lss.lss_plan.stages) == 2
    assert embeds["prompt_embeds_llama3"].shape[1] == 1
    assert torch.equal(given, prompted)
