"""Per-stage VE schedules and plans for k-diffusion models."""

import math

import pytest
import torch
from kd_models import GaussianEpsUNet, GaussianVelocity, sd_alphas_cumprod
from kdiffusion_loader import load_k_diffusion

from lssgen_core.parameterization import FLOW, VE, convert_sigma
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import (
    FlowSchedule,
    StageSize,
    cogview4_schedule,
    flow_sigmas,
    flux_schedule,
    sd3_schedule,
)
from lssgen_kdiffusion import (
    DiscreteVPDenoiser,
    FlowDenoiser,
    exponential_schedule,
    flow_sigmas_to_ve,
    flow_ve_schedule,
    karras_schedule,
    plan_for_model,
    stage_schedule,
    ve_shift_factor,
)

SIZES = [StageSize(256, 256, 32, 32, 256), StageSize(1024, 1024, 128, 128, 4096)]
SHIFTS = [FlowSchedule(), sd3_schedule(3.0), flux_schedule(), cogview4_schedule()]
AC = sd_alphas_cumprod()


@pytest.mark.parametrize("size", SIZES, ids=["256-tokens", "4096-tokens"])
@pytest.mark.parametrize("shift", SHIFTS, ids=["none", "sd3", "flux", "cogview4"])
def test_every_flow_shift_is_a_scaling_of_ve_sigmas(shift, size):
    factor = ve_shift_factor(shift, size)
    shifted = flow_sigmas_to_ve(shift(10, size))
    base = flow_sigmas_to_ve(flow_sigmas(10))
    # All but pure noise (clamped to the same finite t_max in both).
    assert shifted[1:] == pytest.approx([s * factor for s in base[1:]], rel=1e-9)


@pytest.mark.parametrize("start_sigma", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("shift", SHIFTS[1:], ids=["sd3", "flux", "cogview4"])
def test_a_flow_models_ve_plan_enters_where_its_flow_plan_does(shift, start_sigma):
    args = dict(num_steps=12, min_size=64, patch_size=2, start_sigma=start_sigma)
    ve_plan = plan_for_model(FlowDenoiser(GaussianVelocity(), shift=shift), 256, 256, **args)
    flow_plan = plan_stages(256, 256, schedule=shift, **args)
    assert ve_plan.parameterization is VE and len(ve_plan.stages) == 3
    for ve_stage, flow_stage in zip(ve_plan.stages, flow_plan.stages):
        assert ve_stage.start_index == flow_stage.start_index
        levels = [convert_sigma(s, VE, FLOW) for s in ve_stage.sigmas[1:]]
        assert levels == pytest.approx(list(flow_stage.sigmas[1:]), abs=1e-12)


def test_karras_and_exponential_spacings_are_k_diffusions_scaled_by_the_stage_shift():
    sampling = load_k_diffusion().sampling
    size = SIZES[0]
    karras = karras_schedule(0.03, 14.6, rho=7.0)(9, size)
    expected = sampling.get_sigmas_karras(9, 0.03, 14.6, rho=7.0).double()
    assert torch.allclose(torch.tensor(karras, dtype=torch.float64), expected, rtol=1e-5)
    exponential = exponential_schedule(0.03, 14.6)(9, size)
    assert torch.allclose(
        torch.tensor(exponential, dtype=torch.float64),
        sampling.get_sigmas_exponential(9, 0.03, 14.6).double(),
        rtol=1e-5,
    )
    factor = math.exp(flux_schedule().mu_for(size))
    shifted = karras_schedule(0.03, 14.6, shift=flux_schedule())(9, size)
    assert shifted == pytest.approx([s * factor for s in karras], rel=1e-12)


def test_a_discrete_models_own_spacing_is_its_get_sigmas():
    model = DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)
    schedule = stage_schedule(model)
    assert schedule(7, SIZES[0]) == pytest.approx(model.get_sigmas(7).tolist(), rel=1e-7)
    plan = plan_for_model(model, 128, 128, num_steps=7, min_size=64, shorten_steps=True)
    assert [stage.num_steps for stage in plan.stages] == [3, 7]
    assert plan.stages[0].sigmas[0] == pytest.approx(float(model.sigma_max), rel=1e-6)


def test_karras_on_a_model_defaults_to_its_range_and_a_flow_models_shift():
    flow = FlowDenoiser(GaussianVelocity(), shift=sd3_schedule(3.0))
    plan = plan_for_model(flow, 64, 64, num_steps=5, min_size=64, spacing="karras")
    expected = karras_schedule(float(flow.sigma_min), float(flow.sigma_max), shift=sd3_schedule())
    assert plan.target.sigmas == pytest.approx(expected(5, plan.target.size), rel=1e-9)
    assert plan.target.sigmas[0] == pytest.approx(3 * 9999, rel=1e-5)
    vp = DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)
    plan = plan_for_model(vp, 64, 64, num_steps=5, min_size=64, spacing="exponential")
    assert plan.target.sigmas[0] == pytest.approx(float(vp.sigma_max), rel=1e-6)
    assert plan.target.sigmas[-2] == pytest.approx(float(vp.sigma_min), rel=1e-6)


def test_flow_ve_schedule_is_the_flow_schedule_converted():
    schedule = flow_ve_schedule(flux_schedule(), t_max=1 - 1e-3)
    size = SIZES[1]
    assert schedule(6, size) == pytest.approx(
        [min(t, 1 - 1e-3) / (1 - min(t, 1 - 1e-3)) for t in flux_schedule()(6, size)]
    )


def test_bad_spacing_requests_are_explained():
    vp = DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)
    with pytest.raises(ValueError, match="spacing"):
        stage_schedule(vp, "linear")
    with pytest.raises(ValueError, match="get_sigmas"):
        stage_schedule(lambda x, sigma: x)
    with pytest.raises(ValueError, match="sigma_min"):
        stage_schedule(lambda x, sigma: x, "karras")
    assert stage_schedule(lambda x, sigma: x, "karras", sigma_min=0.1, sigma_max=10.0)
