"""Qwen-Image's own differences: its spatial view (5-D VAE latents normalised per channel, packed
2x2), its pixel codec, the per-stage shift, true CFG and the prompt masks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lss_testkit import (
    PROMPT,
    STEPS,
    TARGET,
    Pair,
    call_counts,
    family_pair,
    latent_call,
    lss_from_stock,
    recorded_inputs,
    run,
)
from PIL import Image

from lssgen.cli import main
from lssgen_core.errors import LSSArgumentError
from lssgen_core.upsample import LatentUpsampler
from lssgen_diffusers.qwen_image import qwen_image_pixel_codec
from lssgen_diffusers.vae import load_vae
from lssgen_diffusers.video_vae import VideoFrameCodec

MIN_SIZE = 64


pair = family_pair("qwen-image")


# Krea 2 ships Qwen-Image's VAE and packing, so it has the same spatial view.
@pytest.mark.parametrize("kind", ["qwen-image", "krea2"])
def test_the_spatial_view_is_the_vae_latent_normalised_as_the_transformer_sees_it(
    lss_pair: Any, kind: str
) -> None:
    pair: Pair = lss_pair(kind)
    packed = run(pair.lss, min_size=MIN_SIZE)
    target = pair.lss.lss_plan.target
    spatial = pair.lss.lss_unpack(packed, target)
    assert tuple(spatial.shape) == (1, 16, TARGET // 8, TARGET // 8)
    assert torch.equal(pair.lss.lss_pack(spatial, target), packed)
    # The pixel codec decodes the spatial view to the image the stock decode makes of it.
    image = pair.lss(**latent_call(TARGET, STEPS, min_size=MIN_SIZE, output_type="pt")).images
    with torch.no_grad():
        decoded = pair.lss.lss_pixel_codec().decode(spatial)
    torch.testing.assert_close((decoded / 2 + 0.5).clamp(0, 1), image, rtol=0, atol=1e-5)


def test_load_vae_gives_the_pipelines_pixel_codec(pair: Pair, tmp_path: Path) -> None:
    pair.stock.vae.save_pretrained(tmp_path / "vae")
    loaded = load_vae(tmp_path)
    assert isinstance(loaded, VideoFrameCodec)
    assert (loaded.latent_channels, loaded.spatial_factor) == (16, 8)
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = qwen_image_pixel_codec(pair.stock.vae).encode(images)
    assert expected.shape == (2, 16, 4, 6)
    torch.testing.assert_close(loaded.encode(images), expected)


def test_train_upsampler_through_the_qwen_image_vae_and_use_it(pair: Pair, tmp_path: Path) -> None:
    pair.stock.vae.save_pretrained(tmp_path / "vae")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        pixels = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    out = tmp_path / "upsampler"
    args = [
        "train-upsampler", "--vae", str(tmp_path / "vae"), "--images", str(images),
        "--output", str(out), "--size", "64", "--batch-size", "2", "--steps", "2",
        "--num-workers", "0", "--seed", "0",
    ]  # fmt: skip
    assert main(args) == 0
    trained = LatentUpsampler.from_pretrained(out)
    assert trained.in_channels == 16
    lss = lss_from_stock("qwen-image", pair.stock, latent_upsampler=trained)
    latents = run(lss, min_size=MIN_SIZE)
    assert len(lss.lss_plan.stages) == 2
    assert torch.isfinite(latents).all()


def test_each_stage_runs_the_stock_schedule_of_its_size(pair: Pair) -> None:
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=MIN_SIZE)
    plan = pair.lss.lss_plan
    seen = [call["timestep"] for call in calls]
    for stage in plan.stages:
        with recorded_inputs(pair.denoiser) as stock_calls:
            pair.stock(**latent_call(stage.height, stage.num_steps))
        stock = [call["timestep"] for call in stock_calls][stage.start_index :]
        ran, seen = seen[: len(stock)], seen[len(stock) :]
        assert [float(t) for t in ran] == [float(t) for t in stock], stage.index
    assert seen == []
    # The shift depends on the token count: the two sizes' schedules differ at one step count.
    small, large = (pair.lss.lss_plan_for(height=s, width=s, start_sigma=1.0) for s in (64, 128))
    assert small.target.sigmas != large.target.sigmas


def test_true_cfg_runs_both_branches_at_every_stage_and_encodes_the_negative_once(
    pair: Pair,
) -> None:
    for scale, branches, encodes in ((4.0, 2, 2), (1.0, 1, 1)):
        arguments = {"negative_prompt": "blurry", "true_cfg_scale": scale}
        counts = call_counts(pair, min_size=MIN_SIZE, **arguments)
        assert counts == (branches * pair.lss.lss_plan.num_denoising_steps, encodes), scale


def test_prompt_masks_reach_every_stage_for_every_image(pair: Pair) -> None:
    prompts = ["a cat", PROMPT]  # different lengths: the stock encoding keeps a padding mask
    with torch.no_grad():
        _, mask = pair.stock.encode_prompt(prompts, num_images_per_prompt=2)
    assert mask is not None and not mask.all()
    with recorded_inputs(pair.denoiser) as calls:
        run(
            pair.lss,
            prompt=prompts,
            num_images_per_prompt=2,
            generator=[torch.Generator().manual_seed(i) for i in range(4)],
            min_size=MIN_SIZE,
        )
    assert len(pair.lss.lss_plan.stages) == 2
    assert {call["shape"][1] for call in calls} == {16, 64}  # both stages' token counts
    for call in calls:
        assert torch.equal(call["kwargs"]["encoder_hidden_states_mask"], mask)


def test_guidance_scale_may_be_left_unset_but_not_nan(pair: Pair) -> None:
    # Unset (None) is the stock default: the transformer is not guidance-distilled.
    assert run(pair.lss, min_size=MIN_SIZE, guidance_scale=None).shape == (1, 64, 64)
    with recorded_inputs(pair.denoiser) as calls, pytest.raises(LSSArgumentError) as refused:
        run(pair.lss, min_size=MIN_SIZE, guidance_scale=float("nan"))
    assert refused.value.argument == "guidance_scale"
    assert calls == []


def test_stages_do_not_warn_that_the_one_encodings_embeddings_lack_a_mask(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    # One prompt has no padding: the stock encode_prompt returns no mask (all tokens valid).
    with caplog.at_level(logging.WARNING):
        run(pair.lss, min_size=MIN_SIZE, negative_prompt="blurry")
    assert len(pair.lss.lss_plan.stages) == 2
    assert "prompt_embeds_mask" not in caplog.text
    # A caller's own embeddings without a mask still get the stock warning.
    with torch.no_grad():
        embeds, _ = pair.stock.encode_prompt(PROMPT)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run(pair.lss, prompt=None, prompt_embeds=embeds, min_size=MIN_SIZE)
    assert "`prompt_embeds_mask` is not provided" in caplog.text
