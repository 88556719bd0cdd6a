"""Scaling video latents [B, C, F, H, W]: image scalers per frame, the pixel round trip per
clip, and the stage loop's hand-over keeping the frames (lssgen_core.upsample.video)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_testkit import three_stage_plan

from lssgen_core.errors import LSSArgumentError
from lssgen_core.frames import video_frame_axis
from lssgen_core.noise import randn
from lssgen_core.sampling import StageOutcome, enter_stage, run_stages
from lssgen_core.schedules import FlowSchedule
from lssgen_core.upsample import (
    LatentUpsampler,
    PerFrameScaler,
    PixelRoundTripScaler,
    UpsamplerConfig,
    VideoPixelRoundTripScaler,
    as_video_scaler,
    make_latent_scaler,
    make_video_latent_scaler,
)
from lssgen_core.upsample.video import batch_as_frames, frames_as_batch


def small_upsampler(channels=16):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LatentUpsampler(UpsamplerConfig.released(channels)).eval()


@settings(max_examples=25)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))
def test_frames_as_batch_round_trips_frame_major(batch, frames, height, width):
    video = torch.randn(batch, 3, frames, height, width)
    flat = frames_as_batch(video)
    assert flat.shape == (batch * frames, 3, height, width)
    assert torch.equal(flat[1 if frames > 1 else 0], video[0, :, 1 if frames > 1 else 0])
    assert torch.equal(batch_as_frames(flat, batch), video)


@pytest.mark.parametrize("mode", ["latent", "bicubic", "bilinear", "nearest"])
def test_interpolation_modes_scale_every_frame_as_an_image(mode):
    video = torch.randn(2, 4, 3, 5, 7)
    scaled = make_video_latent_scaler(mode)(video)
    image_scaler = make_latent_scaler(mode)
    assert scaled.shape == (2, 4, 3, 10, 14)
    for f in range(3):
        assert torch.equal(scaled[:, :, f], image_scaler(video[:, :, f].contiguous()))


def test_the_learned_upsampler_runs_per_frame_over_the_frames_as_a_batch():
    upsampler = small_upsampler()
    video = torch.randn(2, 16, 3, 4, 6)
    with torch.no_grad():
        scaled = make_video_latent_scaler("resnet", upsampler=upsampler)(video)
        assert scaled.shape == (2, 16, 3, 8, 12)
        for f in range(3):
            torch.testing.assert_close(scaled[:, :, f], upsampler(video[:, :, f].contiguous()))


def test_image_latents_pass_through_a_per_frame_scaler_unchanged():
    upsampler = small_upsampler()
    image = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        assert torch.equal(PerFrameScaler(upsampler)(image), upsampler(image))


def test_resnet_without_an_upsampler_is_refused_as_for_images():
    with pytest.raises(LSSArgumentError) as caught:
        make_video_latent_scaler("resnet")
    assert caught.value.argument == "latent_upsampler"
    with pytest.raises(ValueError, match="decode and encode"):
        make_video_latent_scaler("pixel", decode=lambda x: x)


def _fake_video_codec(spatial=8, temporal=4):
    """A causal-VAE-shaped decode/encode pair: frames 1 + 4k, space x8, channels 4 <-> 3."""

    def decode(latent):
        rgb = latent[:, :3]
        rgb = torch.cat([rgb[:, :, :1], rgb[:, :, 1:].repeat_interleave(temporal, dim=2)], dim=2)
        return F.interpolate(rgb, scale_factor=(1, spatial, spatial), mode="nearest")

    def encode(video):
        first, rest = video[:, :, :1], video[:, :, 1::temporal]
        frames = torch.cat([first, rest], dim=2)
        small = F.avg_pool3d(frames, kernel_size=(1, spatial, spatial))
        return torch.cat([small, small[:, :1]], dim=1)

    return decode, encode


def test_the_video_pixel_round_trip_codes_the_whole_clip_and_resizes_each_frame():
    decode, encode = _fake_video_codec()
    latent = torch.randn(1, 4, 3, 2, 3)
    calls = []

    def counting_decode(x):
        calls.append(x.shape)
        return decode(x)

    scaled = make_video_latent_scaler("pixel", decode=counting_decode, encode=encode)(latent)
    assert calls == [latent.shape]  # one decode of the clip, not one per frame
    assert scaled.shape == (1, 4, 3, 4, 6)
    # Nearest decode, bicubic 2x, average encode: a constant frame stays constant.
    flat = torch.ones(1, 4, 3, 2, 3)
    torch.testing.assert_close(
        VideoPixelRoundTripScaler(decode, encode)(flat), torch.ones(1, 4, 3, 4, 6)
    )


def test_a_video_round_trip_with_mismatched_codecs_is_refused():
    decode, _ = _fake_video_codec()
    with pytest.raises(ValueError, match="same VAE"):
        VideoPixelRoundTripScaler(decode, lambda v: torch.zeros(1, 4, 3, 1, 1))(
            torch.randn(1, 4, 3, 2, 3)
        )


@settings(max_examples=10)
@given(st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_the_stage_loop_hands_each_video_stage_its_frames_upsampled_and_renoised(s, seed):
    plan = three_stage_plan(s, FlowSchedule("static", shift=3.0), frames=video_frame_axis(9, 4))
    scaler = make_video_latent_scaler("nearest")
    seen = []

    def runner(stage, latent):
        seen.append(latent)
        shape = (2, 4, 3, stage.latent_height, stage.latent_width)
        return StageOutcome(torch.full(shape, float(stage.index)))

    generators = [torch.Generator().manual_seed(seed + i) for i in range(2)]
    run_stages(plan, scaler, runner, first=None, generator=generators)
    replay = [torch.Generator().manual_seed(seed + i) for i in range(2)]
    for stage in plan.stages[1:]:
        before = plan.stages[stage.index - 1]
        previous = torch.full((2, 4, 3, before.latent_height, before.latent_width), before.index)
        noise = randn((2, 4, 3, stage.latent_height, stage.latent_width), replay)
        expected = enter_stage(previous.float(), stage, scaler, noise, plan.parameterization)
        assert seen[stage.index].shape == (2, 4, 3, stage.latent_height, stage.latent_width)
        assert torch.equal(seen[stage.index], expected)
        # Re-noised as for images: (1 - s) * up + s * noise at the stage's own entry level.
        level = stage.entry_level
        up = scaler(previous.float())
        assert torch.allclose(seen[stage.index], (1 - level) * up + level * noise)


def test_the_video_form_of_an_image_scaler_round_trips_pixels_per_clip_and_the_rest_per_frame():
    decode, encode = _fake_video_codec()
    pixel = as_video_scaler(PixelRoundTripScaler(decode, encode, "bilinear"))
    assert pixel == VideoPixelRoundTripScaler(decode, encode, "bilinear")
    nearest = make_latent_scaler("nearest")
    assert as_video_scaler(nearest) == PerFrameScaler(nearest)
