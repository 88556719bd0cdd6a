from functools import partial

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lssgen_core.noise import randn
from lssgen_core.parameterization import FLOW, VE, VP, convert_sigma
from lssgen_core.plan import plan_stages
from lssgen_core.sampling import enter_stage, sample_ddim, sample_euler, sample_progressive
from lssgen_core.schedules import flux_schedule


def nearest(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class PointDenoiser:
    """The exact denoiser of a data set holding one latent per size: it always returns it."""

    def __init__(self, targets, parameterization=None):
        self.targets = targets
        self.calls = []
        if parameterization is not None:
            self.parameterization = parameterization

    def __call__(self, x, sigma, **cond):
        self.calls.append((tuple(x.shape), float(sigma[0]), dict(cond)))
        return self.targets[x.shape[-1]].expand_as(x)


class ShrinkDenoiser:
    """A smooth, input-dependent denoiser for comparing samplers step by step."""

    def __call__(self, x, sigma, **cond):
        return x / (1 + sigma.view(-1, 1, 1, 1) ** 2)


def vp_schedule(num_steps, size):
    return [convert_sigma(1 - i / num_steps, FLOW, VP) for i in range(num_steps)] + [0.0]


def flux_plan(**kwargs):
    args = dict(num_steps=8, min_size=64, patch_size=2, schedule=flux_schedule())
    args.update(kwargs)
    return plan_stages(128, 128, **args)


@settings(deadline=None, max_examples=25)
@given(
    st.integers(1, 12),
    st.floats(0.05, 0.99),
    st.booleans(),
    st.sampled_from(["flow", "vp"]),
)
def test_the_sampler_lands_on_the_exact_denoisers_target_in_every_stage(n, s, shorten, kind):
    torch.manual_seed(0)
    targets = {8: torch.randn(1, 4, 8, 8), 16: torch.randn(1, 4, 16, 16)}
    # Flow: Euler on FLUX's schedule; VP: DDIM on a VP schedule.
    sigma_space, step = {
        "flow": ({}, sample_euler),
        "vp": (
            dict(parameterization=VP, schedule=vp_schedule),
            partial(sample_ddim, parameterization=VP),
        ),
    }[kind]
    plan = flux_plan(num_steps=n, start_sigma=s, shorten_steps=shorten, **sigma_space)
    model = PointDenoiser(targets)
    out = sample_progressive(
        model, plan, nearest, channels=4, generator=torch.Generator().manual_seed(1), step=step
    )
    assert torch.allclose(out, targets[16], atol=1e-5)
    calls_per_stage = [
        sum(1 for c in model.calls if c[0][-1] == st_.latent_width) for st_ in plan.stages
    ]
    assert calls_per_stage == [stage.num_denoising_steps for stage in plan.stages]


def test_one_stage_equals_plain_euler_on_the_same_noise_and_sigmas():
    plan = flux_plan(start_sigma=1.0)
    assert plan.is_single_stage
    noise = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(3))
    model = ShrinkDenoiser()
    lss = sample_progressive(model, plan, nearest, channels=4, batch_size=2, noise=noise)
    plain = sample_euler(model, noise.clone(), torch.tensor(plan.target.sigmas))
    assert torch.equal(lss, plain)


def test_later_stages_start_from_the_renoised_upsample_drawn_from_the_generator():
    plan = flux_plan(start_sigma=0.6)
    model = ShrinkDenoiser()
    seen = []
    out = sample_progressive(
        model,
        plan,
        nearest,
        channels=4,
        generator=torch.Generator().manual_seed(5),
        callback=lambda info: seen.append(info),
    )
    # Replay: the same generator draws the first noise, then the re-noise.
    g = torch.Generator().manual_seed(5)
    first = randn((1, 4, 8, 8), g)
    low = sample_euler(model, first, torch.tensor(plan.stages[0].run_sigmas))
    renoise = randn((1, 4, 16, 16), g)
    s = plan.stages[1].entry_level
    entry = (1 - s) * nearest(low) + s * renoise
    stage1 = [info for info in seen if info["stage"] == 1]
    assert torch.allclose(stage1[0]["x"], entry, atol=1e-6)
    assert float(stage1[0]["sigma"]) == pytest.approx(s)
    assert [info["step"] for info in seen] == list(range(plan.num_denoising_steps))
    assert torch.allclose(out, sample_euler(model, entry, torch.tensor(plan.stages[1].run_sigmas)))


def test_a_generator_per_batch_element_makes_images_independent_of_the_batch():
    plan = flux_plan(start_sigma=0.7)
    model = ShrinkDenoiser()

    def run(seeds):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return sample_progressive(
            model, plan, nearest, channels=4, batch_size=len(seeds), generator=gens
        )

    both = run([10, 11])
    assert torch.allclose(both[1:], run([11]), atol=1e-6)
    assert torch.allclose(both[:1], run([10]), atol=1e-6)
    with pytest.raises(ValueError, match="generator is a list of 1 generators but the batch has 2"):
        sample_progressive(
            model, plan, nearest, channels=4, batch_size=2, generator=[torch.Generator()]
        )


def test_extra_args_may_depend_on_the_stage():
    plan = flux_plan()
    model = PointDenoiser({8: torch.zeros(1, 4, 8, 8), 16: torch.zeros(1, 4, 16, 16)})
    sample_progressive(
        model, plan, nearest, channels=4, extra_args=lambda stage: {"res": stage.height}
    )
    assert {c[2]["res"] for c in model.calls} == {64, 128}


def test_ddim_equals_euler_for_flow_and_ve_sigmas():
    x = torch.randn(1, 4, 8, 8)
    model = ShrinkDenoiser()
    flow_sigmas = torch.tensor(flux_plan().target.sigmas)
    assert torch.allclose(
        sample_ddim(model, x, flow_sigmas, parameterization=FLOW),
        sample_euler(model, x, flow_sigmas),
        atol=1e-5,
    )
    ve_sigmas = torch.tensor([14.6, 5.0, 1.0, 0.3, 0.0])
    assert torch.allclose(
        sample_ddim(model, x, ve_sigmas, parameterization=VE),
        sample_euler(model, x, ve_sigmas),
        atol=1e-5,
    )


def test_mismatched_denoiser_sigma_space_is_refused():
    model = PointDenoiser({}, parameterization=VE)
    with pytest.raises(
        ValueError, match="denoiser works in VE sigmas but the plan was made for FLOW"
    ):
        sample_progressive(model, flux_plan(), nearest, channels=4)


def test_a_scaler_of_the_wrong_size_is_refused():
    plan = flux_plan()
    with pytest.raises(RuntimeError, match="stage 1 needs"):
        enter_stage(
            torch.zeros(1, 4, 8, 8), plan.stages[1], lambda x: x, torch.zeros(1, 4, 16, 16), FLOW
        )


def test_an_unknown_sampler_option_fails_before_the_first_denoiser_call():
    model = PointDenoiser({8: torch.zeros(1, 4, 8, 8)})
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    with pytest.raises(TypeError, match="eta"):
        sample_ddim(model, torch.randn(1, 4, 8, 8), sigmas, eta=1.0)
    with pytest.raises(TypeError, match="parameterization"):
        sample_euler(model, torch.randn(1, 4, 8, 8), sigmas, parameterization=VP)
    assert model.calls == []
