"""Plans, costs and describe() of video plans: tokens count frames x height x width / patch,
frames stay the same in every stage, height and width double per stage (lssgen_core.frames)."""

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_testkit import SHIFTS, plan_arguments, stage_geometry

from lssgen_core.cost import TransformerCost, plan_cost
from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.frames import (
    FrameAxis,
    causal_latent_frames,
    check_num_frames,
    stage_tokens,
    video_frame_axis,
)
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import FlowSchedule


@st.composite
def video_plans(draw, schedules=SHIFTS):
    """Plan arguments of a fitting size, and a video frame axis (Wan's 4x or LTX's 8x time)."""
    args = draw(
        plan_arguments(
            stage_geometry(max_extra_stages=3, max_multiple=4, vae_factors=(8, 16, 32)),
            max_steps=60,
            min_start_sigma=0.05,
            schedule=st.sampled_from(schedules).map(
                lambda shift_type: FlowSchedule(shift_type, shift=3.0)
            ),
        )
    )
    compression = draw(st.sampled_from([4, 8]))
    frames = video_frame_axis(compression * draw(st.integers(0, 20)) + 1, compression)
    return args, frames


@given(video_plans())
def test_every_stage_keeps_the_frames_and_counts_them_in_its_tokens(drawn):
    args, frames = drawn
    plan = plan_stages(**args, frames=frames)
    assert plan.frames == frames
    patch = args["patch_size"]
    for stage in plan.stages:
        assert stage.size.latent_frames == frames.latent_frames
        spatial = (stage.latent_height // patch) * (stage.latent_width // patch)
        assert stage.num_tokens == frames.latent_frames * spatial
    n = len(plan.stages)
    for k, stage in enumerate(plan.stages):  # height and width double per stage, to the target
        assert stage.height * 2 ** (n - 1 - k) == args["height"]
        assert stage.width * 2 ** (n - 1 - k) == args["width"]


@given(video_plans(schedules=("none", "static")))
def test_with_a_schedule_blind_to_tokens_a_video_plans_as_its_frame(drawn):
    """Wan's static flow_shift: the frames change the token count, not the steps or levels."""
    args, frames = drawn
    image, video = plan_stages(**args), plan_stages(**args, frames=frames)
    assert len(video.stages) == len(image.stages)
    for a, b in zip(image.stages, video.stages):
        assert (a.height, a.width, a.sigmas, a.start_index) == (
            b.height,
            b.width,
            b.sigmas,
            b.start_index,
        )
    # Frames scale every stage's tokens alike, so the token-steps ratio is the image's.
    assert video.token_steps_ratio() == pytest.approx(image.token_steps_ratio(), rel=1e-12)


@given(video_plans())
def test_the_schedule_is_given_the_frame_aware_token_count(drawn):
    """LTX's shift mu comes from latent frames x height x width: the schedule must see that."""
    args, frames = drawn
    seen = []
    inner = args["schedule"]

    def recording(num_steps, size):
        seen.append(size)
        return inner(num_steps, size)

    plan = plan_stages(**{**args, "schedule": recording}, frames=frames)
    patch = args["patch_size"]
    assert seen
    for size in seen:
        assert size.latent_frames == frames.latent_frames
        expected = (
            frames.latent_frames * (size.latent_height // patch) * (size.latent_width // patch)
        )
        assert size.num_tokens == expected
    assert plan.target.size in seen


@given(video_plans())
def test_one_frame_plans_as_an_image(drawn):
    args, _ = drawn
    image = plan_stages(**args)
    single = plan_stages(**args, frames=FrameAxis(1, 1))
    assert attrs.evolve(single, frames=None) == image


@given(video_plans(), st.integers(1, 300), st.integers(0, 2000))
def test_the_cost_model_counts_frames_and_video_gains_at_least_what_its_frame_gains(
    drawn, width, text
):
    """Attention is quadratic in the tokens, so with a token-blind schedule the predicted speed-up
    grows with the frame count: a video gains at least what one of its frames gains."""
    args, frames = drawn
    args = {**args, "schedule": FlowSchedule("static", shift=3.0)}
    cost = TransformerCost(width=width, depth=2, text_tokens=text)
    image, video = plan_stages(**args), plan_stages(**args, frames=frames)
    predicted = plan_cost(video, cost)
    for stage, stage_cost in zip(video.stages, predicted.stages):
        assert stage_cost.num_tokens == stage.num_tokens
        assert stage_cost.flops == stage.num_denoising_steps * cost.flops(stage.num_tokens)
    assert predicted.plain_flops == video.num_steps * cost.flops(video.target.num_tokens)
    assert predicted.speedup >= plan_cost(image, cost).speedup * (1 - 1e-9)


def test_describe_shows_the_frames_and_the_frame_aware_tokens():
    frames = video_frame_axis(81, 4)  # Wan 2.1: 81 frames -> 21 latent frames
    plan = plan_stages(
        480,
        832,
        num_steps=50,
        min_size=240,
        vae_scale_factor=8,
        patch_size=2,
        schedule=FlowSchedule("static", shift=3.0),
        frames=frames,
    )
    text = plan.describe()
    assert "832x480, 81 frames (21 latent)" in text
    assert "21x104x60" in text and "21x52x30" in text
    assert str(21 * 52 * 30) in text  # 32,760 tokens at 480p (the figure)
    assert plan.target.num_tokens == 32760


@given(st.integers(-5, 400), st.sampled_from([4, 8]))
def test_exact_frame_counts_are_those_a_causal_vae_decodes(num_frames, compression):
    decodable = num_frames >= 1 and (num_frames - 1) % compression == 0
    if decodable:
        assert check_num_frames(num_frames, compression, exact=True) == num_frames
        latent = causal_latent_frames(num_frames, compression)
        assert (latent - 1) * compression + 1 == num_frames
        return
    with pytest.raises(LSSArgumentError) as caught:
        check_num_frames(num_frames, compression, exact=True)
    assert caught.value.argument == "num_frames" and "num_frames" in str(caught.value)
    if num_frames >= 1:
        assert check_num_frames(num_frames, compression, exact=False) == num_frames


@pytest.mark.parametrize("bad", [True, 8.0, "9", None])
def test_frame_counts_of_another_type_are_refused_naming_the_argument(bad):
    with pytest.raises(LSSArgumentTypeError) as caught:
        check_num_frames(bad, 4, exact=False)
    assert caught.value.argument == "num_frames"


def test_a_frame_axis_refuses_frames_that_do_not_fill_its_temporal_patches():
    with pytest.raises(LSSArgumentError, match="temporal patches"):
        FrameAxis(9, 3, temporal_patch_size=2)
    assert FrameAxis(9, 4, temporal_patch_size=2).token_frames == 2
    assert stage_tokens(8, 6, 2, FrameAxis(9, 4, temporal_patch_size=2)) == 2 * 4 * 3
