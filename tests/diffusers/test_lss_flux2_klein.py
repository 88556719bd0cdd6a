"""FLUX.2 [klein]'s own differences: the normalised 32-channel spatial view of its patchified,
batch-normalised latents, the empirical shift ``mu`` of each stage's token and step count, the
empty negative prompt under guidance, and reference images refused with several stages."""

from __future__ import annotations

from typing import Any

import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lss_testkit import PROMPT, Pair, family_pair, recorded_inputs, run, stage_call

from lssgen_core.errors import LSSArgumentError
from lssgen_core.parameterization import FLOW
from lssgen_diffusers.scheduler_levels import scheduler_levels
from lssgen_diffusers.vae_space import to_model_latents, to_vae_latents

KIND = "flux2-klein"


pair = family_pair(KIND)


def bn_stats(vae: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The stock pipelines' own formula for the patch statistics."""
    mean = vae.bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
    return mean, std


def test_model_space_is_the_stock_normalisation_unpatchified(pair: Pair) -> None:
    stock, vae = pair.stock, pair.stock.vae
    raw = torch.randn(2, 32, 8, 12, generator=torch.Generator().manual_seed(0))
    mean, std = bn_stats(vae)
    # What the stock _encode_vae_image does to a raw latent, then unpatchified.
    normalised = (stock._patchify_latents(raw) - mean) / std
    expected = stock._unpatchify_latents(normalised)
    torch.testing.assert_close(to_model_latents(vae, raw), expected)
    torch.testing.assert_close(to_vae_latents(vae, expected), raw)
    assert not torch.allclose(expected, raw, atol=0.1)  # the tiny VAE's statistics are not 1
    # The spatial view patchifies to the stock `latents` argument, the patch grid.
    stage = pair.lss.lss_plan_for(height=64, width=96, start_sigma=1.0).target
    packed = pair.lss.lss_pack(expected, stage)
    assert torch.equal(packed, normalised)
    assert tuple(packed.shape) == pair.lss.lss_packed_shape(2, stage) == (2, 128, 4, 6)


def test_the_upsampler_gets_the_first_stages_latent_normalised(pair: Pair) -> None:
    seen: list[torch.Tensor] = []

    def keep(_: torch.nn.Module, args: tuple[Any, ...]) -> None:
        seen.append(args[0].clone())

    upsampler = pair.lss.latent_upsampler
    handle = upsampler.register_forward_pre_hook(keep)
    try:
        out = run(pair.lss, min_size=64)
    finally:
        handle.remove()
    first = pair.lss.lss_plan.stages[0]
    tokens: list[torch.Tensor] = []

    def last_tokens(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        tokens.append(tensors["latents"].clone())
        return tensors

    raw = run(
        pair.stock,
        **stage_call(first),
        callback_on_step_end=last_tokens,
    )
    assert tuple(raw.shape) == (1, 32, 8, 8)  # the stock result: the raw VAE latent
    assert len(seen) == 1
    # Exactly the stock call's last normalised tokens, unpatchified: no round trip through raw.
    grid = tokens[-1].transpose(1, 2).reshape(1, 128, 4, 4)
    assert torch.equal(seen[0], pair.stock._unpatchify_latents(grid))
    torch.testing.assert_close(seen[0], to_model_latents(pair.stock.vae, raw))
    assert tuple(out.shape) == (1, 32, 16, 16)
    assert torch.isfinite(out).all()


def stock_schedule(pipe: Any, embeds: torch.Tensor, height: int, width: int, steps: int) -> Any:
    """The levels the stock call sets at this size and step count (one denoising step run)."""

    class Stop(Exception):
        pass

    def stop(*_: Any) -> dict:
        raise Stop

    with pytest.raises(Stop):
        pipe(
            prompt_embeds=embeds,
            guidance_scale=1.0,
            height=height,
            width=width,
            num_inference_steps=steps,
            callback_on_step_end=stop,
            output_type="latent",
        )
    return scheduler_levels(pipe.scheduler, FLOW)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stages=st.integers(2, 3),
    multiple=st.integers(2, 17),
    steps=st.integers(2, 60),
    shorten=st.booleans(),
)
def test_every_stage_has_the_stock_schedule_of_its_size_and_steps(
    pair: Pair, stages: int, multiple: int, steps: int, shorten: bool
) -> None:
    # FLUX.2's mu depends on the token count and the step count: each stage's schedule is the one
    # the stock call makes at that stage's size and step count. Sizes 128..1088 px, so the
    # target has 64..4624 tokens (both of compute_empirical_mu's rules, below and above 4300).
    side = max(128, 16 * 2 ** (stages - 1) * multiple)
    plan = pair.lss.lss_plan_for(
        height=side,
        width=side,
        num_inference_steps=steps,
        min_size=side >> (stages - 1),
        shorten_intermediate_steps=shorten,
    )
    embeds, _ = pair.stock.encode_prompt(PROMPT, device="cpu", max_sequence_length=8)
    for stage in plan.stages:
        stock = stock_schedule(pair.stock, embeds, stage.height, stage.width, stage.num_steps)
        assert stage.sigmas == pytest.approx(stock, rel=1e-6, abs=1e-7)


def test_a_smaller_stage_has_its_own_mu(pair: Pair) -> None:
    plan = pair.lss.lss_plan_for(height=1024, width=1024, num_inference_steps=20, min_size=512)
    small, target = plan.stages
    assert small.num_steps == target.num_steps == 20
    # Same step count, a quarter of the tokens: a smaller shift, so lower levels mid-schedule.
    assert small.sigmas[10] < target.sigmas[10] - 0.01
    shortened = pair.lss.lss_plan_for(
        height=1024,
        width=1024,
        num_inference_steps=20,
        min_size=512,
        shorten_intermediate_steps=True,
    )
    assert shortened.stages[0].num_steps == 10
    assert shortened.stages[0].sigmas != small.sigmas[::2]  # mu changes with the step count


def test_guidance_encodes_the_empty_negative_prompt_once(pair: Pair) -> None:
    with recorded_inputs(pair.lss.text_encoder) as encodes, recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, prompt=[PROMPT, "a cat"], min_size=64, num_images_per_prompt=2)
    assert [call["shape"][0] for call in encodes] == [2, 2]  # the prompts, then ["", ""]
    assert {call["shape"][0] for call in calls} == {4}
    plan = pair.lss.lss_plan
    assert len(calls) == 2 * plan.num_denoising_steps
    with recorded_inputs(pair.lss.text_encoder) as encodes, recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=64, guidance_scale=1.0)
    assert len(encodes) == 1 and len(calls) == pair.lss.lss_plan.num_denoising_steps


def reference() -> PIL.Image.Image:
    return PIL.Image.new("RGB", (64, 64), (200, 40, 40))


def test_one_stage_with_a_reference_image_is_the_stock_call(pair: Pair) -> None:
    expected = run(pair.stock, image=reference(), num_inference_steps=4)
    got = run(pair.lss, image=reference(), num_inference_steps=4, start_sigma=1.0)
    assert torch.equal(got, expected)


def test_a_reference_image_is_refused_with_several_stages_before_any_model_runs(
    pair: Pair,
) -> None:
    with (
        recorded_inputs(pair.lss.text_encoder) as encodes,
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(LSSArgumentError, match=r"^image cannot be split over LSS stages") as info,
    ):
        run(pair.lss, image=reference(), min_size=64)
    assert info.value.argument == "image"
    assert "start_sigma=1" in str(info.value)
    assert encodes == [] and calls == []


def test_an_interrupted_first_stage_decodes_its_own_latent(pair: Pair) -> None:
    def interrupt(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        if pipe.lss_stage is None or pipe.lss_stage.index == 0:
            pipe._interrupt = True
        return tensors

    got = run(pair.lss, min_size=64, callback_on_step_end=interrupt, output_type="pt")
    first = pair.lss.lss_plan.stages[0]

    def stock_interrupt(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        pipe._interrupt = True
        return tensors

    expected = run(
        pair.stock,
        **stage_call(first),
        callback_on_step_end=stock_interrupt,
        output_type="pt",
    )
    assert tuple(got.shape) == (1, 3, 64, 64)
    assert torch.equal(got, expected)
