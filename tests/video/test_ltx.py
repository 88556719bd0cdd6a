"""LSSLTXPipeline on a tiny random LTX-Video: stock with one stage, the planned calls with two on
packed 128-channel latents, LTX's own LTXLatentUpsamplerModel as the scaler (object or name),
and bad sizes and frames refused before work."""

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

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_diffusers.ltx import LSSLTXPipeline, LTXUpsamplerScaler
from lssgen_diffusers.testing_video import tiny_ltx_upsampler

# 64x64, 9 frames: 2 latent frames of 2x2 (32x space, 8x time); min_size 32 gives 32 -> 64 px.
SIZE, FRAMES, LATENT_FRAMES, STEPS = 64, 9, 2, 12


lss_with = partial(lss_over, LSSLTXPipeline)


def packed(stage_side: int) -> tuple[int, int, int]:
    """A packed LTX latent's shape for one video with classifier-free guidance (batch 2)."""
    return (2, LATENT_FRAMES * stage_side * stage_side, 128)


@pytest.mark.parametrize("scaling_mode", ["resnet", "latent", "pixel"])
def test_two_stages_run_the_planned_denoiser_calls_and_make_the_asked_video(
    ltx: Any, scaling_mode: str
) -> None:
    call = video_call(SIZE, SIZE, FRAMES, STEPS)
    lss, calls = two_stage_calls(
        LSSLTXPipeline,
        ltx[0],
        scaling_mode,
        call,
        (LATENT_FRAMES, 128, 1, 1),
        shorten_intermediate_steps=True,
    )
    plan = lss.lss_plan
    # Guidance 3 (the stock default) batches the unconditional call: one call per step.
    assert dict(Counter(c["shape"] for c in calls)) == {
        packed(1): plan.stages[0].num_denoising_steps,
        packed(2): plan.stages[1].num_denoising_steps,
    }
    # Each stage's transformer is told its own latent grid; the frames are the call's.
    assert {(c["kwargs"]["num_frames"], c["kwargs"]["height"]) for c in calls} == {
        (LATENT_FRAMES, 1),
        (LATENT_FRAMES, 2),
    }


def test_each_stage_shifts_its_schedule_by_its_own_frame_aware_token_count(ltx: Any) -> None:
    """LTX's mu comes from latent frames x height x width: the 64 px stage of 2 frames has 8
    tokens, the 32 px stage 2, and their schedules differ accordingly."""
    _, lss = ltx
    plan = lss.lss_plan_for(height=SIZE, width=SIZE, num_frames=FRAMES, min_size=32)
    assert [s.num_tokens for s in plan.stages] == [2, 8]
    longer = lss.lss_plan_for(height=SIZE, width=SIZE, num_frames=4 * 8 + 1, min_size=32)
    assert [s.num_tokens for s in longer.stages] == [5, 20]
    assert longer.target.sigmas != plan.target.sigmas  # more tokens, more shift
    assert "33 frames (5 latent)" in longer.describe()
    stock_default = lss.lss_plan_for()  # 704x512, 161 frames: 21 latent frames of 16x22
    assert stock_default.target.num_tokens == 21 * 16 * 22
    assert [(s.height, s.width) for s in stock_default.stages] == [(256, 352), (512, 704)]


def test_ltx_upsampler_object_runs_as_the_scaler_on_the_raw_latent(ltx: Any) -> None:
    """LTX's own model upsamples the whole clip in the VAE's raw latent space (de-normalised,
    then normalised again), as LTXLatentUpsamplePipeline runs it."""
    stock, _ = ltx
    model = tiny_ltx_upsampler()
    lss = lss_with(stock, latent_upsampler=model)
    last: dict[str, torch.Tensor] = {}

    def keep_last(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        if pipe.lss_stage.index == 0:
            last["latents"] = tensors["latents"]
        return tensors

    with recorded_inputs(model) as upsampled, recorded_inputs(lss.transformer) as calls:
        frames = lss(
            **video_call(SIZE, SIZE, FRAMES, STEPS),
            min_size=32,
            shorten_intermediate_steps=True,
            callback_on_step_end=keep_last,
        ).frames
    assert frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    assert len(upsampled) == 1 and upsampled[0]["shape"] == (1, 128, LATENT_FRAMES, 1, 1)
    stage_0 = lss._unpack_latents(last["latents"], LATENT_FRAMES, 1, 1, 1, 1)
    codec = lss.lss_video_codec()
    torch.testing.assert_close(upsampled[0]["input"], codec.to_raw(stage_0))
    assert {c["shape"] for c in calls} == {packed(1), packed(2)}


def test_ltx_upsampler_scaler_normalises_its_output_back_to_model_space(ltx: Any) -> None:
    _, lss = ltx
    model = tiny_ltx_upsampler()
    codec = lss.lss_video_codec()
    latent = torch.randn(1, 128, 2, 3, 4)
    with torch.no_grad():
        scaled = LTXUpsamplerScaler(model, codec)(latent)
        expected = codec.to_model(model(codec.to_raw(latent)))
    assert scaled.shape == (1, 128, 2, 6, 8)
    torch.testing.assert_close(scaled, expected)
    # The (de)normalisation is not the identity on this VAE (the test would prove nothing).
    assert not torch.allclose(codec.to_raw(latent), latent)


@pytest.mark.parametrize("layout", ["model folder", "pipeline folder"])
def test_ltx_upsampler_by_name(ltx: Any, tmp_path: Any, layout: str) -> None:
    stock, _ = ltx
    model = tiny_ltx_upsampler()
    folder = tmp_path / "upscaler"
    model.save_pretrained(folder / "latent_upsampler" if layout == "pipeline folder" else folder)
    lss = lss_with(stock, latent_upsampler=str(folder))
    loaded = lss.latent_upsampler
    assert type(loaded) is type(model)
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values())
    )
    frames = lss(**video_call(SIZE, SIZE, FRAMES, STEPS), min_size=32).frames
    assert frames.shape == (1, FRAMES, SIZE, SIZE, 3)


def test_an_ltx_upsampler_that_changes_the_frames_is_refused(ltx: Any, tmp_path: Any) -> None:
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

    stock, _ = ltx
    temporal = LTXLatentUpsamplerModel(
        in_channels=128, mid_channels=32, num_blocks_per_stage=1, temporal_upsample=True
    )
    with pytest.raises(LSSArgumentError) as caught:
        lss_with(stock, latent_upsampler=temporal)
    assert caught.value.argument == "latent_upsampler"
    assert "temporal_upsample" in str(caught.value)
    with pytest.raises(LSSArgumentTypeError) as wrong:
        lss_with(stock, latent_upsampler=torch.nn.Identity())
    assert wrong.value.argument == "latent_upsampler"
    with pytest.raises(LSSArgumentError, match=r"config\.json"):
        lss_with(stock, latent_upsampler=str(tmp_path))


def test_a_frame_count_ltx_cannot_decode_is_refused_with_one_stage_too(ltx: Any) -> None:
    _, lss = ltx
    with pytest.raises(LSSArgumentError, match="num_frames=10 must be k \\* 8 \\+ 1"):
        lss(**video_call(SIZE, SIZE, 10, 2), start_sigma=1)


def test_prompt_embeds_and_masks_for_several_videos_per_prompt(ltx: Any) -> None:
    stock, lss = ltx
    embeds, mask, _, _ = stock.encode_prompt(prompt="a dot", do_classifier_free_guidance=False)
    call = video_call(SIZE, SIZE, FRAMES, STEPS)
    assert_several_videos_per_prompt(lss, call, prompt_embeds=embeds, prompt_attention_mask=mask)


def test_a_pipeline_with_ltx_upsampler_saves_and_loads_it(ltx: Any, tmp_path: Any) -> None:
    stock, _ = ltx
    model = tiny_ltx_upsampler()
    lss_with(stock, latent_upsampler=model).save_pretrained(tmp_path / "pipe")
    back = LSSLTXPipeline.from_pretrained(tmp_path / "pipe")
    loaded = back.latent_upsampler
    assert type(loaded) is type(model)
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_auto_start_sigma_with_ltx_upsampler_is_refused_naming_start_sigma(ltx: Any) -> None:
    """LTX's model carries no measured error for start_sigma='auto' to read."""
    stock, _ = ltx
    lss = lss_with(stock, latent_upsampler=tiny_ltx_upsampler())
    with pytest.raises(LSSArgumentError) as caught:
        lss(**video_call(SIZE, SIZE, FRAMES, STEPS), min_size=32, start_sigma="auto")
    assert caught.value.argument == "start_sigma"
