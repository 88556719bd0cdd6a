"""Z-Image's own differences: prompt embeddings as lists of per-prompt tensors (different
lengths) repeated per image and batched with their negatives, Z-Image's sigmas with a static
shift (Z-Image-Turbo) or a dynamic one per stage size, guidance on above 0, and ``cfg_truncation``
by noise level in every stage (the shared tests run the Turbo scheduler with guidance 5)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from lss_testkit import (
    PROMPT,
    STEPS,
    TARGET,
    Pair,
    lss_from_stock,
    recorded_inputs,
    run,
)

from lssgen_core.errors import LSSArgumentError
from lssgen_diffusers.testing_z_image import tiny_z_image_pipeline

# A dynamic-shift scheduler (FLUX.1's constants) for the resolution-dependent schedule.
DYNAMIC = {
    "num_train_timesteps": 1000,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}


@contextmanager
def captions(transformer: torch.nn.Module) -> Iterator[list[list[torch.Tensor]]]:
    """The caption list (the third positional input) of every transformer call."""
    seen: list[list[torch.Tensor]] = []

    def hook(_: torch.nn.Module, args: tuple[Any, ...]) -> None:
        seen.append(list(args[2]))

    handle = transformer.register_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@pytest.fixture
def dynamic_pair() -> Pair:
    stock = tiny_z_image_pipeline(0, scheduler=DYNAMIC)
    stock.set_progress_bar_config(disable=True)
    return Pair("z-image", stock, lss_from_stock("z-image", stock))


def test_one_stage_with_cfg_truncation_and_normalization_is_the_stock_call(
    lss_pair: Any,
) -> None:
    pair: Pair = lss_pair("z-image")
    extra = {"cfg_truncation": 0.5, "cfg_normalization": True, "negative_prompt": "blurry"}
    assert torch.equal(run(pair.lss, start_sigma=1.0, **extra), run(pair.stock, **extra))


def test_one_stage_with_a_dynamic_shift_is_the_stock_call(dynamic_pair: Pair) -> None:
    assert torch.equal(run(dynamic_pair.lss, start_sigma=1.0), run(dynamic_pair.stock))


@pytest.mark.parametrize("dynamic", [False, True], ids=["static (Turbo)", "dynamic"])
def test_every_stage_runs_the_stock_schedule_of_its_size(
    lss_pair: Any, dynamic_pair: Pair, dynamic: bool
) -> None:
    pair: Pair = dynamic_pair if dynamic else lss_pair("z-image")
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64)
    plan = pair.lss.lss_plan
    assert [s.height for s in plan.stages] == [64, TARGET]
    done = 0
    for stage in plan.stages:
        with recorded_inputs(pair.denoiser) as stock_calls:
            run(pair.stock, height=stage.height, width=stage.width, num_inference_steps=STEPS)
        expected = [c["timestep"] for c in stock_calls][stage.start_index :]
        got = [c["timestep"] for c in calls[done : done + stage.num_denoising_steps]]
        done += stage.num_denoising_steps
        assert len(got) == len(expected) == stage.num_denoising_steps
        for a, b in zip(got, expected):
            assert torch.equal(a, b)
    first, last = (list(s.sigmas) for s in plan.stages)
    # Turbo's static shift gives one schedule at every size; the dynamic one shifts by size.
    assert (first == last) is not dynamic


def test_embedding_lists_are_repeated_per_image_and_reach_every_stage(lss_pair: Any) -> None:
    pair: Pair = lss_pair("z-image")
    prompts = ["a cat", "a red circle left of a blue square, in the evening light"]
    negatives = ["blurry", "dark"]  # one per prompt, as the stock call requires

    def arguments() -> dict[str, Any]:
        # Fresh lists: the stock encode_prompt writes the chat-templated prompts into them.
        return {"prompt": list(prompts), "negative_prompt": list(negatives)}

    with captions(pair.denoiser) as stock_seen:
        run(pair.stock, num_images_per_prompt=2, **arguments())
    generators = [torch.Generator().manual_seed(s) for s in range(4)]
    with recorded_inputs(pair.lss.text_encoder) as encodes, captions(pair.denoiser) as seen:
        latents = run(
            pair.lss, min_size=64, generator=generators, num_images_per_prompt=2, **arguments()
        )
    assert len(pair.lss.lss_plan.stages) == 2
    assert tuple(latents.shape) == (4, 16, 16, 16)
    assert len(encodes) == 2  # the prompts and the negative prompts, once for all stages
    expected = stock_seen[0]
    # Four images with their four negatives, each prompt's own (unpadded) length.
    assert len(expected) == 8
    assert len({entry.shape[0] for entry in expected[:4]}) == 2
    assert len(seen) == pair.lss.lss_plan.num_denoising_steps
    for call in seen:
        assert len(call) == len(expected)
        for got, want in zip(call, expected):
            assert torch.equal(got, want)


def test_given_embedding_lists_without_a_prompt(lss_pair: Any) -> None:
    pair: Pair = lss_pair("z-image")
    with torch.no_grad():
        embeds, negative = pair.stock.encode_prompt(PROMPT, negative_prompt="blurry")
    arguments = {"num_images_per_prompt": 2, "min_size": 64}
    generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
    expected = run(pair.lss, negative_prompt="blurry", generator=generators, **arguments)
    generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
    got = run(
        pair.lss,
        prompt=None,
        prompt_embeds=embeds,
        negative_prompt_embeds=negative,
        generator=generators,
        **arguments,
    )
    assert tuple(got.shape) == (2, 16, 16, 16)
    assert torch.equal(got, expected)
    with recorded_inputs(pair.denoiser) as calls, pytest.raises(LSSArgumentError) as error:
        run(pair.lss, prompt=None, prompt_embeds=embeds, min_size=64)
    assert error.value.argument == "negative_prompt_embeds"
    assert calls == []


def test_no_guidance_at_zero_as_turbo_runs(lss_pair: Any) -> None:
    pair: Pair = lss_pair("z-image")
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=64, guidance_scale=0.0)
    assert torch.isfinite(latents).all()
    assert len(calls) == pair.lss.lss_plan.num_denoising_steps
    assert {call["shape"][0] for call in calls} == {1}  # one image, no negative branch


def test_cfg_truncation_stops_guidance_at_the_same_level_in_every_stage(lss_pair: Any) -> None:
    pair: Pair = lss_pair("z-image")
    cutoff = 0.3
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64, cfg_truncation=cutoff)
    plan = pair.lss.lss_plan
    assert len(plan.stages) == 2
    # The transformer gets the stock (1000 - t) / 1000: guided (both branches, batch 2) while it
    # is at most cfg_truncation, in whichever stage the step is.
    guided = [float(call["timestep"][0]) <= cutoff for call in calls]
    assert [2 if g else 1 for g in guided] == [call["shape"][0] for call in calls]
    first = plan.stages[0].num_denoising_steps
    assert any(guided[:first]) and not all(guided[:first])
