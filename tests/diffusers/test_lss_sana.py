"""SANA's own differences: resolution binning across stages on a 32x DC-AE, the Gemma-2 prompt
with its ``complex_human_instruction`` encoded once (attention masks per image), and the flow
DPM-Solver with a static ``flow_shift`` entered part-way (the shared tests run it with binning
off)."""

from __future__ import annotations

from typing import Any

import PIL.Image
import torch
from lss_testkit import PROMPT, Pair, recorded_inputs

TARGET = 128  # binned to 512 px by the tiny model's 512-px bins (transformer sample_size 16)
STEPS = 8
UNBINNED = {"use_resolution_binning": False}


def run(pipe: Any, **kwargs: Any) -> Any:
    arguments = {
        "prompt": PROMPT,
        "height": TARGET,
        "width": TARGET,
        "num_inference_steps": STEPS,
        "generator": torch.Generator().manual_seed(0),
        "output_type": "latent",
        **kwargs,
    }
    return pipe(**arguments).images


def test_latents_are_the_dc_ae_space_at_32x(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    latents = run(pair.lss, min_size=64, **UNBINNED)
    assert pair.lss.lss_vae_scale_factor == 32
    assert pair.lss.lss_latent_channels == 32 == pair.lss.latent_upsampler.config.in_channels
    assert [s.latent_height for s in pair.lss.lss_plan.stages] == [2, 4]  # 64 px, then 128 px
    assert tuple(latents.shape) == (1, 32, 4, 4)


def test_binning_one_stage_is_the_stock_call(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    expected = run(pair.stock)
    assert expected.shape[-1] == 512 // 32  # the stock call generates the bin, not 128 px
    assert torch.equal(run(pair.lss, start_sigma=1.0), expected)
    assert pair.lss.lss_plan.height == 512


def test_binning_runs_earlier_stages_unbinned_and_ends_at_the_size_asked(lss_pair: Any) -> None:
    pair: Pair = lss_pair("sana")
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=256)
    plan = pair.lss.lss_plan
    # The target is the stock bin; the first stage runs at its planned size, not at a bin of it.
    assert [s.height for s in plan.stages] == [256, 512]
    expected = [s.latent_width for s in plan.stages for _ in range(s.num_denoising_steps)]
    assert [call["shape"][-1] for call in calls] == expected
    assert tuple(latents.shape) == (1, 32, 16, 16)
    (image,) = run(pair.lss, min_size=256, output_type="pil")
    assert isinstance(image, PIL.Image.Image)
    assert image.size == (TARGET, TARGET)  # resized back to the size asked, as stock does


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
        run(pair.stock, height=last.height, width=last.width, num_inference_steps=last.num_steps)
    # The static flow_shift gives the same schedule at every size; the last stage runs the stock
    # call's timesteps from its entry step on, after the first stage's own steps.
    stock_timesteps = [call["timestep"] for call in stock_calls]
    stage_timesteps = [call["timestep"] for call in calls[first.num_denoising_steps :]]
    assert len(stage_timesteps) == last.num_steps - last.start_index
    for got, expected in zip(stage_timesteps, stock_timesteps[last.start_index :]):
        assert torch.equal(got, expected)
