"""The one LSS stage loop (run_stages): what it gives each runner, and how a runner stops it."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_testkit import three_stage_plan

from lssgen_core.noise import randn
from lssgen_core.sampling import (
    StageOutcome,
    enter_stage,
    run_stages,
    sample_euler,
    sample_progressive,
    step_runner,
)


def nearest(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class RecordingRunner:
    """A runner whose 'denoised' latent is a fixed function of the stage; records its inputs."""

    def __init__(self, stop_at=None):
        self.seen = []
        self.stop_at = stop_at

    def __call__(self, stage, latent):
        self.seen.append((stage.index, latent))
        out = torch.full((2, 4, stage.latent_height, stage.latent_width), float(stage.index))
        return StageOutcome(out, output=("result", stage.index), stop=stage.index == self.stop_at)


@settings(deadline=None, max_examples=20)
@given(st.floats(0.05, 0.95), st.integers(0, 2**31 - 1))
def test_each_later_stage_gets_the_upsampled_latent_renoised_from_the_generator(s, seed):
    plan = three_stage_plan(s)
    runner = RecordingRunner()
    first = torch.randn(2, 4, 8, 8)
    outcome = run_stages(
        plan, nearest, runner, first=first, generator=torch.Generator().manual_seed(seed)
    )
    assert [index for index, _ in runner.seen] == [0, 1, 2]
    assert runner.seen[0][1] is first
    replay = torch.Generator().manual_seed(seed)
    for stage in plan.stages[1:]:
        before = plan.stages[stage.index - 1]
        previous = torch.full(
            (2, 4, before.latent_height, before.latent_width), float(before.index)
        )
        noise = randn((2, 4, stage.latent_height, stage.latent_width), replay)
        expected = enter_stage(previous, stage, nearest, noise, plan.parameterization)
        assert torch.equal(runner.seen[stage.index][1], expected)
    assert outcome.result == ("result", 2)


def test_a_runner_that_stops_ends_the_loop_with_its_own_outcome():
    runner = RecordingRunner(stop_at=0)
    outcome = run_stages(three_stage_plan(), nearest, runner, first=None)
    assert [index for index, _ in runner.seen] == [0]
    assert runner.seen[0][1] is None  # the first stage's input is passed on as given
    assert outcome.stop and outcome.result == ("result", 0)


def test_a_stage_that_gives_no_latent_for_the_next_is_refused():
    def runner(stage, latent):
        return StageOutcome(None, output="image")

    with pytest.raises(RuntimeError, match="stage 0 gave no latent for stage 1"):
        run_stages(three_stage_plan(), nearest, runner)


def test_sample_progressive_is_the_stage_loop_with_a_step_runner():
    plan = three_stage_plan()

    def model(x, sigma):
        return x / (1 + sigma.view(-1, 1, 1, 1) ** 2)

    noise = torch.randn(1, 16, 8, 8)
    ours = sample_progressive(
        model, plan, nearest, channels=16, noise=noise, generator=torch.Generator().manual_seed(3)
    )
    runner = step_runner(model, plan, sample_euler)
    first = plan.parameterization.pure_noise(noise, plan.stages[0].entry_level)
    loop = run_stages(
        plan, nearest, runner, first=first, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(ours, loop.latent)
