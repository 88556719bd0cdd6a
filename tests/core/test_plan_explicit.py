"""Explicit plans: ``stage_steps``, ``stage_entries``, ``final_steps`` (lssgen_core.explicit_plan).

Each planning rule has a property test; the refusals are checked before any schedule is built.
"""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_testkit import SHIFTS, paper_arguments

from lssgen_core.cost import TransformerCost, plan_cost
from lssgen_core.explicit_plan import MAX_SCHEDULE_STEPS, budget_final_steps, schedule_for_steps
from lssgen_core.parameterization import FLOW, VP, convert_sigma
from lssgen_core.plan import PURE_NOISE_LEVEL, entry_index, plan_stages
from lssgen_core.schedules import FlowSchedule, flux_schedule


def vp_schedule(num_steps, size):
    """VP levels whose first one is just below pure noise, as SD's discrete schedules are."""
    return [convert_sigma(0.995 * (1 - i / num_steps), FLOW, VP) for i in range(num_steps)] + [0.0]


@st.composite
def explicit_args(draw):
    """Square or oblong plans of 1..3 stages with explicit step counts and entry levels."""
    stages = draw(st.integers(2, 3))
    patch = draw(st.sampled_from([1, 2]))
    multiple = 8 * patch * 2 ** (stages - 1)
    height = multiple * draw(st.integers(1, 4))
    width = multiple * draw(st.integers(1, 4))
    steps = tuple(draw(st.lists(st.integers(1, 40), min_size=stages, max_size=stages)))
    entries = draw(
        st.none()
        | st.lists(st.none() | st.floats(0.02, 0.98), min_size=stages - 1, max_size=stages - 1).map(
            tuple
        )
    )
    vp = draw(st.booleans())
    return dict(
        height=height,
        width=width,
        num_steps=draw(st.integers(1, 60)),
        start_sigma=draw(st.floats(0.02, 0.98)),
        patch_size=patch,
        stage_steps=steps,
        stage_entries=entries,
        entry_rule=draw(st.sampled_from(["sigma", "strength"])),
        parameterization=VP if vp else FLOW,
        schedule=vp_schedule if vp else FlowSchedule(draw(st.sampled_from(SHIFTS))),
    )


def asked_level(args, index):
    entries = args["stage_entries"]
    if entries is not None and entries[index - 1] is not None:
        return entries[index - 1]
    return args["start_sigma"]


def flow_level(plan, stage):
    return convert_sigma(stage.entry_level, plan.parameterization, FLOW)


@settings(max_examples=150, deadline=None)
@given(explicit_args())
def test_stage_steps_give_that_many_stages_each_running_its_steps(args):
    plan = plan_stages(**args)
    assert len(plan.stages) == len(args["stage_steps"])
    assert plan.dropped_stages == 0
    assert [s.num_denoising_steps for s in plan.stages] == list(args["stage_steps"])
    assert plan.num_denoising_steps == sum(args["stage_steps"])
    assert (plan.target.height, plan.target.width) == (args["height"], args["width"])
    for k, stage in enumerate(plan.stages):
        scale = 2 ** (len(plan.stages) - 1 - k)
        assert (stage.height * scale, stage.width * scale) == (args["height"], args["width"])
    first = plan.stages[0]
    assert first.start_index == 0 and first.num_steps == args["stage_steps"][0]
    assert plan.min_size == min(args["height"], args["width"]) // 2 ** (len(plan.stages) - 1)


@settings(max_examples=150, deadline=None)
@given(explicit_args())
def test_later_stages_enter_inside_their_schedule_never_at_pure_noise(args):
    plan = plan_stages(**args)
    for stage in plan.stages[1:]:
        assert 1 <= stage.start_index <= stage.num_steps - 1 or (
            stage.start_index == 0 and flow_level(plan, stage) < PURE_NOISE_LEVEL
        )
        assert flow_level(plan, stage) < PURE_NOISE_LEVEL
        assert len(stage.sigmas) == stage.num_steps + 1 and stage.sigmas[-1] == 0
        assert stage.num_steps <= max(MAX_SCHEDULE_STEPS, stage.num_denoising_steps + 1)


@settings(max_examples=150, deadline=None)
@given(explicit_args())
def test_entry_is_the_rule_entry_of_the_longest_schedule_that_runs_the_asked_steps(args):
    plan = plan_stages(**args)
    schedule = args["schedule"]
    for index, stage in enumerate(plan.stages[1:], start=1):
        level = asked_level(args, index)

        def runs(length, stage=stage, level=level):
            sigmas = [float(s) for s in schedule(length, stage.size)]
            return length - entry_index(sigmas, level, plan.parameterization, args["entry_rule"])

        # At most the asked steps by the entry rule, so entering `steps` from the end is at
        # or above the rule's entry (as noisy as asked, or more) ...
        rule_entry = stage.num_steps - runs(stage.num_steps)
        assert stage.start_index <= rule_entry or stage.start_index == 1
        # ... and the next longer schedule would run more: none is closer to the asked level.
        if stage.num_steps < MAX_SCHEDULE_STEPS and stage.start_index > 0:
            assert runs(stage.num_steps + 1) > stage.num_denoising_steps


@settings(max_examples=100, deadline=None)
@given(
    steps=st.integers(1, 40),
    first=st.integers(1, 40),
    level=st.floats(0.05, 0.95),
)
def test_on_plain_flow_levels_a_later_stage_enters_floor_steps_over_level(steps, first, level):
    plan = plan_stages(
        256, 256, num_steps=50, start_sigma=level, stage_steps=(first, steps), schedule=None
    )
    target = plan.target
    expected = max(steps + 1, math.floor(steps / level + 1e-9))
    assert target.num_steps in (expected, min(expected, MAX_SCHEDULE_STEPS))
    assert target.entry_level >= level - 1e-9 or target.start_index == 1


@settings(max_examples=100, deadline=None)
@given(
    extra=st.integers(1, 2),
    num_steps=st.integers(1, 60),
    levels=st.lists(st.floats(0.02, 0.98), min_size=2, max_size=2),
    shorten=st.booleans(),
    shift=st.sampled_from(SHIFTS),
)
def test_stage_entries_alone_act_as_a_start_sigma_per_stage(
    extra, num_steps, levels, shorten, shift
):
    size = 64 * 2**extra
    common = dict(num_steps=num_steps, shorten_steps=shorten, schedule=FlowSchedule(shift))
    entries = tuple(levels[:extra])
    plan = plan_stages(size, size, stage_entries=entries, **common)
    assert plan.stage_entries == entries
    # Each later stage enters as the paper plan with start_sigma=its level would enter it.
    alone = [
        plan_stages(size, size, start_sigma=s, min_size=size // 2**extra, **common) for s in entries
    ]
    if extra == 1:
        assert (plan.stages, plan.dropped_stages) == (alone[0].stages, alone[0].dropped_stages)
    elif plan.dropped_stages == alone[0].dropped_stages == alone[1].dropped_stages == 0:
        assert plan.stages[1] == alone[0].stages[1]
        assert plan.stages[2] == alone[1].stages[2]
    none_entries = plan_stages(size, size, stage_entries=(None,) * extra, **common)
    assert (
        none_entries.stages == plan_stages(size, size, min_size=size // 2**extra, **common).stages
    )


@settings(max_examples=150, deadline=None)
@given(
    paper_arguments(
        extra=st.integers(1, 2),
        multiple=st.just(1),
        num_steps=st.integers(2, 60),
        start_sigma=st.floats(0.05, 0.95),
    ),
    st.integers(1, 60),
)
def test_final_steps_fix_the_target_stage_and_keep_the_paper_smaller_stages(args, final):
    paper = plan_stages(**args)
    plan = plan_stages(**args, final_steps=final)
    assert plan.target.num_denoising_steps == final
    assert (plan.target.height, plan.target.width) == (args["height"], args["width"])
    if paper.dropped_stages == 0 and plan.dropped_stages == 0:
        assert plan.stages[:-1] == paper.stages[:-1]


@settings(max_examples=200, deadline=None)
@given(
    paper_arguments(
        base=16,
        extra=st.integers(1, 3),
        patch=st.sampled_from([1, 2]),
        multiple=st.just(1),
        num_steps=st.integers(2, 80),
        start_sigma=st.floats(0.02, 0.98),
    ),
    st.floats(0.0, 1.0),
)
def test_final_steps_within_the_budget_rule_never_cost_more_than_plain(args, fraction):
    final = max(1, round(fraction * budget_final_steps(args["num_steps"])))
    plan = plan_stages(**args, final_steps=final)
    assert plan.token_steps_ratio() <= 1
    assert plan.target.num_denoising_steps == final


def test_explicit_plan_describes_its_inputs_and_predicted_cost():
    plan = plan_stages(
        1024,
        1024,
        num_steps=50,
        patch_size=2,
        schedule=flux_schedule(),
        stage_steps=(12, 6),
        stage_entries=(0.3,),
    )
    cost = plan_cost(plan, TransformerCost(width=3072, depth=57, text_tokens=512))
    text = f"{plan.describe()}\n{cost.describe()}"
    assert "stage_steps=(12, 6)" in text and "stage_entries=(0.3,)" in text
    assert "predicted denoiser cost" in text and "stage 1: 6 steps" in text
    assert [s.num_denoising_steps for s in plan.stages] == [12, 6]


def test_three_stage_plan_runs_256_512_1024():
    plan = plan_stages(1024, 1024, num_steps=50, stage_steps=(12, 6, 2), stage_entries=(0.5, 0.1))
    assert [s.height for s in plan.stages] == [256, 512, 1024]
    assert [s.num_denoising_steps for s in plan.stages] == [12, 6, 2]
    assert plan.stages[1].entry_level == pytest.approx(0.5, abs=0.04)
    assert plan.stages[2].entry_level == pytest.approx(0.1, abs=0.02)
    assert plan.min_size == 256


def test_no_explicit_inputs_plan_exactly_as_min_size_512():
    kwargs = dict(num_steps=50, patch_size=2, schedule=flux_schedule(), shorten_steps=True)
    assert plan_stages(1024, 1024, **kwargs) == plan_stages(1024, 1024, min_size=512, **kwargs)
    assert not plan_stages(1024, 1024, **kwargs).is_explicit


def test_one_stage_stage_steps_is_plain_generation():
    plan = plan_stages(512, 512, num_steps=20, stage_steps=(20,))
    assert plan.is_single_stage and plan.target.num_steps == 20
    assert plan == plan_stages(512, 512, num_steps=20, min_size=512, stage_steps=(20,))


def refusing_schedule(num_steps, size):
    raise AssertionError("a refused plan must not build any schedule")


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        (dict(stage_steps=(12, 6), final_steps=6), ["stage_steps", "final_steps"]),
        (dict(stage_steps=(12, 6), shorten_steps=True), ["stage_steps", "shorten_steps"]),
        (dict(stage_steps=(12, 6), start_sigma=1.0), ["start_sigma=1", "(0, 1)"]),
        (dict(stage_entries=(0.3,), start_sigma=1.0), ["start_sigma=1", "(0, 1)"]),
        (dict(stage_steps=(12, 6), stage_entries=(0.3, 0.2)), ["stage_entries", "stage_steps"]),
        (dict(stage_steps=(12, 6, 3), min_size=512), ["min_size=512", "min_size=256"]),
        (dict(stage_entries=(0.3,), min_size=256), ["min_size=256", "min_size=512"]),
        (dict(stage_steps=(12,)), ["stage_steps=(12,)", "num_steps=20"]),
        (dict(final_steps=4, min_size=1024), ["final_steps=4", "min_size <= 512"]),
        (dict(final_steps=4, start_sigma=1.0), ["start_sigma=1", "final_steps"]),
        (dict(stage_steps=(12, 0)), ["stage_steps[1]=0", ">= 1"]),
        (dict(stage_steps=(12, 2.5)), ["stage_steps[1]=2.5", ">= 1"]),
        (dict(stage_steps=(True, 2)), ["stage_steps[0]=True", ">= 1"]),
        (dict(stage_steps=()), ["stage_steps=()"]),
        (dict(stage_entries=(1.0,)), ["stage_entries[0]=1.0", "(0, 1)"]),
        (dict(stage_entries=(0.0,)), ["stage_entries[0]=0.0", "(0, 1)"]),
        (dict(stage_entries=(float("nan"),)), ["stage_entries[0]=nan", "(0, 1)"]),
        (dict(stage_entries=("0.3",)), ["stage_entries[0]='0.3'", "(0, 1)"]),
        (dict(stage_entries=()), ["stage_entries=()"]),
        (dict(final_steps=0), ["final_steps=0", ">= 1"]),
        (dict(final_steps=2.0), ["final_steps=2.0", ">= 1"]),
        (dict(stage_steps=(1 << 12,) * 12), ["12 stages", "min(height, width) >= 2048"]),
    ],
)
def test_contradictory_or_bad_explicit_inputs_are_refused_before_any_schedule(kwargs, names):
    args = dict(num_steps=20, schedule=refusing_schedule, **kwargs)
    with pytest.raises(ValueError) as error:
        plan_stages(1024, 1024, **args)
    for name in names:
        assert name in str(error.value)


@pytest.mark.parametrize("value", [12, "12,6", 0.3])
def test_explicit_inputs_that_are_not_tuples_are_type_errors(value):
    with pytest.raises(TypeError, match="stage_steps"):
        plan_stages(1024, 1024, num_steps=20, stage_steps=value, schedule=refusing_schedule)
    with pytest.raises(TypeError, match="stage_entries"):
        plan_stages(1024, 1024, num_steps=20, stage_entries=value, schedule=refusing_schedule)


def test_one_plain_step_leaves_no_final_steps_budget():
    assert budget_final_steps(1) == 0
    assert budget_final_steps(50) == 33


@settings(max_examples=150, deadline=None)
@given(
    steps=st.integers(1, 30),
    level=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**16),
    top=st.sampled_from([1.0, 0.97]),
)
def test_schedule_search_holds_for_any_non_increasing_schedule(steps, level, seed, top):
    # Levels drawn at random per length: no monotonicity across lengths for the search to rely on.
    def schedule_of(length):
        rng = random.Random(seed * 7919 + length)
        inner = sorted((0.99 * rng.random() * top for _ in range(length - 1)), reverse=True)
        return (top, *inner, 0.0)

    def entry_of(sigmas):
        return entry_index(sigmas, level)

    length, sigmas, start = schedule_for_steps(
        steps, schedule_of, entry_of, lambda s: s >= PURE_NOISE_LEVEL
    )
    assert sigmas == schedule_of(length) and length - start == steps
    assert steps <= length <= max(MAX_SCHEDULE_STEPS, steps + 1)
    assert sigmas[start] < PURE_NOISE_LEVEL
    if start > 0 and length > steps + 1:
        assert length - entry_of(sigmas) <= steps  # entering at or above the rule's entry
