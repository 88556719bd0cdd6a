import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_testkit import SHIFTS, plan_arguments, stage_geometry

from lssgen_core.parameterization import FLOW, VP, convert_sigma
from lssgen_core.plan import entry_index, plan_stages, shortened_steps
from lssgen_core.schedules import FlowSchedule, StageSize, flux_mu, flux_schedule, shift_exponential


def plan_args():
    return plan_arguments(
        stage_geometry(max_extra_stages=3, max_multiple=6),
        max_steps=80,
        min_start_sigma=0.01,
        schedule=st.sampled_from(SHIFTS).map(FlowSchedule),
    )


@given(plan_args())
def test_stage_sizes_halve_down_from_the_target_and_divide_the_latent_multiple(args):
    plan = plan_stages(**args)
    n = len(plan.stages)
    expected_extra = (
        0
        if args["start_sigma"] >= 1
        else int(math.log2(min(args["height"], args["width"]) // args["min_size"]))
    )
    # Stages a pure-noise entry would throw away are dropped (test_plan_reliability).
    assert n + plan.dropped_stages == expected_extra + 1
    assert (plan.target.height, plan.target.width) == (args["height"], args["width"])
    multiple = args["vae_scale_factor"] * args["patch_size"]
    for k, stage in enumerate(plan.stages):
        scale = 2 ** (n - 1 - k)
        assert (stage.height * scale, stage.width * scale) == (args["height"], args["width"])
        assert stage.height % multiple == 0 and stage.width % multiple == 0
        assert stage.latent_height * args["vae_scale_factor"] == stage.height
        assert (
            stage.num_tokens * args["patch_size"] ** 2 == stage.latent_height * stage.latent_width
        )
    if n > 1 and not plan.dropped_stages:
        # The first stage is the smallest size that is still >= min_size.
        smallest = min(plan.stages[0].height, plan.stages[0].width)
        assert args["min_size"] <= smallest < 2 * args["min_size"]


@given(plan_args())
def test_steps_follow_the_shortening_rule(args):
    plan = plan_stages(**args)
    n_target = args["num_steps"]
    for stage in plan.stages:
        area_ratio = (plan.target.height * plan.target.width) / (stage.height * stage.width)
        if not args["shorten_steps"] or area_ratio == 1:
            assert stage.num_steps == n_target
        else:
            assert stage.num_steps == max(1, int(n_target // math.log2(area_ratio)))
        assert 1 <= stage.num_steps <= n_target


@given(plan_args())
def test_schedules_are_monotone_in_range_and_entries_straddle_start_sigma(args):
    plan = plan_stages(**args)
    assert plan.stages[0].start_index == 0
    for stage in plan.stages:
        sigmas = stage.sigmas
        assert len(sigmas) == stage.num_steps + 1 and sigmas[-1] == 0.0
        assert all(0 <= s <= 1 for s in sigmas)
        assert all(b <= a for a, b in zip(sigmas, sigmas[1:]))
        assert 0 <= stage.start_index < stage.num_steps
        assert stage.num_denoising_steps >= 1
        if stage.index > 0:
            s = args["start_sigma"]
            entry = stage.entry_level
            # Never re-enter at pure noise (that would discard the previous stage); otherwise the
            # last level that is still >= start_sigma.
            assert entry < 1 - 1e-3
            if stage.start_index > 1 or sigmas[0] < 1 - 1e-3:
                assert entry >= s - 1e-9 or stage.start_index == 0
            assert (
                sigmas[stage.start_index + 1] < s + 1e-9 or stage.start_index == stage.num_steps - 1
            )


def test_the_originals_worked_example():
    """FLUX.1-dev scheduler, 1024x1024, N=50, start_sigma 0.75, shorten on, min 512."""
    plan = plan_stages(
        1024,
        1024,
        num_steps=50,
        min_size=512,
        start_sigma=0.75,
        shorten_steps=True,
        patch_size=2,
        schedule=flux_schedule(),
    )
    low, high = plan.stages
    assert (low.height, low.num_steps, low.num_denoising_steps) == (512, 25, 25)
    assert (high.height, high.num_steps, high.num_denoising_steps) == (1024, 50, 25)
    assert high.start_index == 25
    assert high.entry_level == pytest.approx(0.7595, abs=1e-4)
    assert flux_mu(low.num_tokens) == pytest.approx(0.63)
    assert low.sigmas[1] == pytest.approx(shift_exponential(1 - 1 / 25, 0.63))
    assert plan.token_steps_ratio() == pytest.approx(0.625)

    unshortened = plan_stages(
        1024,
        1024,
        num_steps=50,
        min_size=512,
        start_sigma=0.75,
        patch_size=2,
        schedule=flux_schedule(),
    )
    assert [s.num_denoising_steps for s in unshortened.stages] == [50, 25]
    assert unshortened.token_steps_ratio() == pytest.approx(0.75)


def test_three_stages_and_non_square():
    plan = plan_stages(
        2048, 2048, num_steps=40, min_size=512, patch_size=2, schedule=flux_schedule()
    )
    assert [s.height for s in plan.stages] == [512, 1024, 2048]
    wide = plan_stages(1024, 2048, num_steps=40, min_size=512, patch_size=2)
    assert [(s.height, s.width) for s in wide.stages] == [(512, 1024), (1024, 2048)]
    assert [(s.latent_height, s.latent_width) for s in wide.stages] == [(64, 128), (128, 256)]


def test_a_short_schedule_never_reenters_at_pure_noise():
    sigmas = [1.0, 0.5, 0.0]
    assert entry_index(sigmas, 0.75) == 1
    assert entry_index([1.0, 0.0], 0.75) == 0  # nothing later to enter at


def test_start_sigma_one_or_min_size_at_target_give_one_stage():
    assert plan_stages(1024, 1024, num_steps=10, start_sigma=1.0).is_single_stage
    assert plan_stages(1024, 1024, num_steps=10, min_size=1024).is_single_stage
    single = plan_stages(1024, 1024, num_steps=10, min_size=1024)
    assert single.target.start_index == 0 and single.num_denoising_steps == 10


@given(st.integers(1, 100), st.floats(0.0, 1.0))
def test_strength_entry_is_the_img2img_rule(n, s):
    sigmas = [1 - i / n for i in range(n)] + [0.0]
    index = entry_index(sigmas, s, FLOW, "strength")
    assert index == min(max(n - int(n * s), 0), n - 1)


@given(st.integers(1, 100), st.floats(0.05, 0.99))
def test_vp_entry_matches_flow_level_through_snr(n, s):
    vp_sigmas = [convert_sigma(1 - i / (n + 1), FLOW, VP) for i in range(n)] + [0.0]
    index = entry_index(vp_sigmas, s, VP)
    levels = [convert_sigma(v, VP, FLOW) for v in vp_sigmas]
    pure_noise_skipped = index == 1 and levels[0] >= 1 - 1e-3
    assert levels[index] >= s - 1e-9 or index == 0 or pure_noise_skipped
    assert all(level < s + 1e-9 for level in levels[index + 1 : -1])


def test_vp_plan_uses_snr_matching():
    def vp_schedule(num_steps, size: StageSize):
        return [convert_sigma(1 - i / num_steps, FLOW, VP) for i in range(num_steps)] + [0.0]

    plan = plan_stages(
        128, 128, num_steps=20, min_size=64, parameterization=VP, schedule=vp_schedule
    )
    entry = plan.stages[1].entry_level
    assert convert_sigma(entry, VP, FLOW) == pytest.approx(0.75)


def test_describe_prints_a_table():
    text = plan_stages(
        1024, 1024, num_steps=50, shorten_steps=True, patch_size=2, schedule=flux_schedule()
    ).describe()
    assert "stage" in text and "512x512" in text and "1024x1024" in text
    assert "token-steps vs plain 62.5%" in text
    assert str(plan_stages(512, 512, num_steps=4)) == plan_stages(512, 512, num_steps=4).describe()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(start_sigma=0.0), r"start_sigma=0.0 is outside the allowed range \(0, 1\]"),
        (dict(start_sigma=1.2), r"start_sigma=1.2 is outside the allowed range \(0, 1\]"),
        (dict(start_sigma=math.nan), r"start_sigma=nan"),
        (dict(min_size=2048), r"min_size=2048 must be <= min\(height, width\) = 1024"),
        (dict(min_size=0), r"min_size=0 must be an integer >= 1"),
        (dict(num_steps=0), r"num_steps=0 must be an integer >= 1"),
        (dict(num_steps=2.5), r"num_steps=2.5 must be an integer >= 1"),
        (dict(height=1040), r"height=1040 must be a multiple of 32"),
        (dict(width=1040), r"width=1040 must be a multiple of 32.*520 -> 1040"),
        (
            dict(height=1000, min_size=1000),
            r"height=1000 must be a multiple of vae_scale_factor \* patch_size = 16$",
        ),
        (dict(entry_rule="nope"), r"entry_rule='nope' must be one of"),
    ],
)
def test_bad_input_is_rejected_with_the_argument_and_range(kwargs, pattern):
    args = dict(height=1024, width=1024, num_steps=50, min_size=512, patch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        plan_stages(**args)


def test_shortened_steps_never_reach_zero():
    assert shortened_steps(1, 16) == 1
    assert shortened_steps(50, 4) == 25 and shortened_steps(50, 16) == 12


@given(plan_args())
def test_a_plan_holds_the_checked_arguments_it_was_planned_from(args):
    """The plan's argument fields live once, in its PlanArguments, and read as the plan's own."""
    plan = plan_stages(**args)
    values = plan.arguments.values
    assert (plan.height, plan.width, plan.num_steps, plan.min_size) == (
        args["height"],
        args["width"],
        args["num_steps"],
        args["min_size"],
    )
    assert plan.start_sigma == values.start_sigma == args["start_sigma"]
    assert plan.shorten_steps is values.shorten_steps is args["shorten_steps"]
    assert plan.entry_rule == values.entry_rule == "sigma"
    assert (plan.stage_steps, plan.stage_entries, plan.final_steps) == (None, None, None)
    assert not plan.is_explicit
