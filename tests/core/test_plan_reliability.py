"""Plans never throw a stage away, say when they cost as much as plain, and check their types."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_testkit import SHIFTS, plan_arguments, stage_geometry

from lssgen_core.parameterization import FLOW, VE, VP, convert_sigma
from lssgen_core.plan import (
    MAX_QUIET_STAGES,
    PURE_NOISE_LEVEL,
    count_extra_stages,
    plan_notes,
    plan_stages,
)
from lssgen_core.schedules import FlowSchedule, StageSize


def _ve_schedule(sigma_max: float):
    """A VE schedule that starts below pure noise (as Euler-type schedulers do)."""

    def schedule(steps: int, size: StageSize) -> list[float]:
        return [sigma_max * (1 - i / steps) ** 2 for i in range(steps)] + [0.0]

    return schedule


# (schedule, parameterization): flow schedules, a VE one, and flow levels read as VP sigmas.
SIGMA_SPACES = st.one_of(
    st.sampled_from(SHIFTS).map(lambda shift_type: (FlowSchedule(shift_type), FLOW)),
    st.floats(1.0, 100.0).map(lambda sigma_max: (_ve_schedule(sigma_max), VE)),
    st.just((FlowSchedule("static"), VP)),
)


@st.composite
def plans(draw):
    schedule, parameterization = draw(SIGMA_SPACES)
    return draw(
        plan_arguments(
            stage_geometry(max_extra_stages=4, max_multiple=4),
            max_steps=12,
            min_start_sigma=0.01,
            schedule=st.just(schedule),
            parameterization=st.just(parameterization),
            entry_rule=st.sampled_from(["sigma", "strength"]),
        )
    )


def _flow_level(stage, parameterization) -> float:
    return float(convert_sigma(stage.entry_level, parameterization, FLOW))


@given(plans())
def test_no_later_stage_enters_at_pure_noise(args):
    plan = plan_stages(**args)
    assert plan.stages[0].start_index == 0
    assert [s.index for s in plan.stages] == list(range(len(plan.stages)))
    for stage in plan.stages[1:]:
        assert _flow_level(stage, plan.parameterization) < PURE_NOISE_LEVEL


@given(plans())
def test_dropped_stages_are_exactly_the_ones_a_pure_noise_entry_would_discard(args):
    plan = plan_stages(**args)
    planned = count_extra_stages(
        args["height"], args["width"], args["min_size"], args["start_sigma"]
    )
    assert len(plan.stages) + plan.dropped_stages == planned + 1
    # What is left is the tail of the full plan: same sizes, same schedules, same step counts.
    assert plan.target.height == args["height"] and plan.target.width == args["width"]
    for k, stage in enumerate(plan.stages):
        scale = 2 ** (len(plan.stages) - 1 - k)
        assert (stage.height * scale, stage.width * scale) == (args["height"], args["width"])
    if plan.dropped_stages:
        # The new first stage would have entered at pure noise: it now runs from pure noise.
        first = plan.stages[0]
        assert first.start_index == 0
        assert _flow_level(first, plan.parameterization) >= PURE_NOISE_LEVEL
        assert any("pure noise" in note for note in plan_notes(plan))
        # Exactly the plan a min_size at that stage would have given.
        replanned = plan_stages(**{**args, "min_size": min(first.height, first.width)})
        assert replanned.stages == plan.stages and replanned.dropped_stages == 0
    else:
        assert not any("pure noise" in note for note in plan_notes(plan))


@given(plans())
def test_a_cost_note_exactly_when_several_stages_cost_at_least_plain(args):
    plan = plan_stages(**args)
    costly = not plan.is_single_stage and plan.token_steps_ratio() >= 1
    notes = plan_notes(plan)
    assert any("token-steps" in note for note in notes) == costly
    assert any("stages" in note and "min_size" in note for note in notes) == (
        len(plan.stages) > MAX_QUIET_STAGES
    )
    assert len(notes) == len(set(notes))


def test_one_step_two_stages_falls_back_to_plain():
    plan = plan_stages(1024, 1024, num_steps=1, min_size=512, patch_size=2)
    assert plan.is_single_stage and plan.dropped_stages == 1
    assert plan.target.num_steps == 1 and plan.target.start_index == 0
    (note,) = plan_notes(plan)
    assert "pure noise" in note and "512x512" in note and "one stage" in note
    assert "pure noise" in plan.describe()


def test_a_costly_plan_is_noted():
    # Few steps: the later stage enters at step 0 of a VE schedule, so both run all 4 steps.
    plan = plan_stages(
        128,
        128,
        num_steps=4,
        min_size=64,
        start_sigma=0.99,
        schedule=_ve_schedule(14.6),
        parameterization=VE,
    )
    assert plan.token_steps_ratio() == pytest.approx(1.25)
    (note,) = plan_notes(plan)
    assert "125.0% of plain's token-steps" in note
    quiet = plan_stages(1024, 1024, num_steps=50, min_size=512, patch_size=2, shorten_steps=True)
    assert plan_notes(quiet) == ()


def test_many_stages_are_noted():
    plan = plan_stages(16384, 16384, num_steps=4, min_size=64)
    assert len(plan.stages) == 9
    notes = plan_notes(plan)
    assert any("9 stages (64 -> 128" in n and "16384" in n and "min_size" in n for n in notes)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        (dict(start_sigma="0.7"), TypeError, r"start_sigma must be a real number.*'0.7'"),
        (dict(start_sigma=True), TypeError, r"start_sigma must be a real number"),
        (dict(start_sigma=math.inf), ValueError, r"start_sigma=inf is outside"),
        (dict(shorten_steps="no"), TypeError, r"shorten_steps must be a bool.*'no'"),
        (
            dict(schedule=lambda n, size: [1.0, math.nan, *([0.5] * (n - 2)), 0.0]),
            ValueError,
            r"schedule returned a non-finite level \(nan\) at step 1 of stage 512x512",
        ),
        (
            dict(schedule=lambda n, size: [math.inf, *([0.5] * (n - 1)), 0.0]),
            ValueError,
            r"schedule returned a non-finite level \(inf\) at step 0",
        ),
    ],
)
def test_types_and_non_finite_schedules_are_refused(kwargs, error, pattern):
    args = dict(height=1024, width=1024, num_steps=8, min_size=512, patch_size=2)
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        plan_stages(**args)
