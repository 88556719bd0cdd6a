"""FLUX.2 [dev]'s own differences: its output is the denoiser's normalised tokens, guidance is an
input of the transformer at every stage, caption upsampling runs once, each stage has the
empirical ``mu`` of its size and steps, and reference images are refused with several stages."""

from __future__ import annotations

from typing import Any

import PIL.Image
import pytest
import torch
from lss_testkit import PROMPT, Pair, family_pair, recorded_inputs, run, stage_call

from lssgen_core.errors import LSSArgumentError
from lssgen_core.parameterization import FLOW
from lssgen_diffusers.scheduler_levels import scheduler_levels

KIND = "flux2"


pair = family_pair(KIND)


def test_the_upsampler_gets_the_first_stages_tokens_unpatchified(pair: Pair) -> None:
    seen: list[torch.Tensor] = []
    handle = pair.lss.latent_upsampler.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].clone())
    )
    try:
        out = run(pair.lss, min_size=64)
    finally:
        handle.remove()
    first = pair.lss.lss_plan.stages[0]
    tokens = run(pair.stock, **stage_call(first))
    assert tuple(tokens.shape) == (1, 16, 128)  # the stock result: normalised tokens
    grid = tokens.transpose(1, 2).reshape(1, 128, 4, 4)
    assert len(seen) == 1
    assert torch.equal(seen[0], pair.stock._unpatchify_latents(grid))
    assert tuple(out.shape) == (1, 64, 128) and torch.isfinite(out).all()


def test_guidance_and_schedule_of_every_stage(pair: Pair) -> None:
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64, guidance_scale=2.5)
    plan = pair.lss.lss_plan
    assert len(calls) == plan.num_denoising_steps  # one call per step: no negative branch
    assert {float(call["kwargs"]["guidance"][0]) for call in calls} == {2.5}
    # Each stage's schedule is the one the stock call sets at that stage's size and step count
    # (the run checks it against the stock call too; here against a separate stock run).
    for stage in plan.stages:
        run(
            pair.stock,
            **stage_call(stage),
            guidance_scale=2.5,
        )
        stock = scheduler_levels(pair.stock.scheduler, FLOW)
        assert list(stage.sigmas) == pytest.approx(stock, rel=1e-6, abs=1e-7)
    small, target = plan.stages
    assert small.num_steps == target.num_steps
    assert small.sigmas != target.sigmas  # mu of 16 tokens, not of 64


def test_caption_upsampling_runs_once_and_every_stage_gets_its_prompt(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stock upsample_prompt samples a new prompt with the Mistral model and decodes it with
    # the stock processor, which the tiny pipeline's plain tokenizer stands in for; recorded here
    # by a stand-in that rewrites the prompt deterministically.
    asked: list[tuple[Any, float]] = []

    def upsample_prompt(prompt: Any, images: Any = None, temperature: float = 0.2, **_: Any) -> Any:
        asked.append((prompt, temperature))
        return [f"{prompt}, detailed"]

    monkeypatch.setattr(pair.lss, "upsample_prompt", upsample_prompt)
    with recorded_inputs(pair.lss.text_encoder) as encodes:
        got = run(pair.lss, min_size=64, caption_upsample_temperature=0.2)
    assert asked == [(PROMPT, 0.2)]
    assert len(encodes) == 1
    assert len(pair.lss.lss_plan.stages) == 2
    expected = run(pair.lss, prompt=f"{PROMPT}, detailed", min_size=64)
    assert torch.equal(got, expected)


def test_a_reference_image_is_refused_with_several_stages_before_any_model_runs(
    pair: Pair,
) -> None:
    image = PIL.Image.new("RGB", (64, 64), (40, 200, 40))
    with (
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(LSSArgumentError, match=r"^image cannot be split over LSS stages") as info,
    ):
        run(pair.lss, image=image, min_size=64)
    assert info.value.argument == "image" and calls == []
    one = run(pair.lss, image=image, num_inference_steps=4, start_sigma=1.0)
    assert torch.equal(one, run(pair.stock, image=image, num_inference_steps=4))
