"""Explicit plans (``stage_steps``, ``stage_entries``, ``final_steps``) with k-diffusion."""

from itertools import groupby

import pytest
import torch
from kd_models import CHANNELS, GaussianEpsUNet, GaussianVelocity, sd_alphas_cumprod
from kdiffusion_loader import sampler

from lssgen_core.parameterization import FLOW, VE, convert_sigma
from lssgen_core.plan import PURE_NOISE_LEVEL, plan_stages
from lssgen_core.schedules import flux_schedule
from lssgen_kdiffusion import DiscreteVPDenoiser, FlowDenoiser, plan_for_model, sample_lss

AC = sd_alphas_cumprod()
EXPLICIT = [
    {"stage_steps": (4, 2)},
    {"stage_steps": (4, 3, 1), "stage_entries": (0.5, 0.15)},
    {"final_steps": 2, "min_size": 32},
]
IDS = ["two-stage", "three-stage", "final-steps"]


def _euler_lss(model, plan) -> torch.Tensor:
    """``plan`` run with k-diffusion's Euler and bicubic upsampling, from seed 0."""
    generator = torch.Generator().manual_seed(0)
    return sample_lss(
        sampler("euler"),
        model,
        plan,
        "bicubic",
        channels=CHANNELS,
        generator=generator,
        disable=True,
    )


def flow_model():
    return FlowDenoiser(GaussianVelocity(), shift=flux_schedule())


@pytest.mark.parametrize("explicit", EXPLICIT, ids=IDS)
def test_a_flow_models_explicit_ve_plan_enters_where_its_flow_plan_does(explicit):
    args = dict(num_steps=8, patch_size=2, **explicit)
    ve_plan = plan_for_model(flow_model(), 128, 128, **args)
    flow_plan = plan_stages(128, 128, schedule=flux_schedule(), **args)
    assert ve_plan.parameterization is VE
    assert [s.num_denoising_steps for s in ve_plan.stages] == [
        s.num_denoising_steps for s in flow_plan.stages
    ]
    for ve_stage, flow_stage in zip(ve_plan.stages, flow_plan.stages):
        assert (ve_stage.num_steps, ve_stage.start_index) == (
            flow_stage.num_steps,
            flow_stage.start_index,
        )


@pytest.mark.parametrize("explicit", EXPLICIT, ids=IDS)
def test_explicit_plan_runs_its_steps_at_each_stage_size(explicit):
    model = flow_model()
    plan = plan_for_model(model, 128, 128, num_steps=8, patch_size=2, **explicit)
    if "stage_steps" in explicit:
        assert [s.num_denoising_steps for s in plan.stages] == list(explicit["stage_steps"])
    else:
        assert plan.target.num_denoising_steps == explicit["final_steps"]
    for stage in plan.stages[1:]:
        assert convert_sigma(stage.entry_level, VE, FLOW) < PURE_NOISE_LEVEL
    out = _euler_lss(model, plan)
    assert out.shape == (1, CHANNELS, 16, 16) and torch.isfinite(out).all()
    runs = [(shape, len(list(g))) for shape, g in groupby(s for s, _ in model.inner_model.calls)]
    assert [count for _, count in runs] == [s.num_denoising_steps for s in plan.stages]
    assert [shape[-1] for shape, _ in runs] == [s.latent_width for s in plan.stages]


def test_a_discrete_models_explicit_plan_runs_its_steps():
    model = DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)
    plan = plan_for_model(model, 128, 128, num_steps=8, stage_steps=(5, 3, 2))
    assert [s.height for s in plan.stages] == [32, 64, 128]
    calls = model.inner_model.calls
    _euler_lss(model, plan)
    assert model.inner_model.calls - calls == 10


@pytest.mark.parametrize(
    ("explicit", "pattern"),
    [
        ({"stage_steps": (4, 2), "final_steps": 2}, "pass stage_steps or final_steps"),
        ({"stage_entries": (1.0,)}, r"stage_entries\[0\]=1.0 must be a float in \(0, 1\)"),
        ({"stage_steps": (4, 2, 1), "min_size": 64}, "min_size=64 plans 2 stage"),
    ],
)
def test_bad_explicit_plans_are_refused_before_any_model_call(explicit, pattern):
    model = flow_model()
    with pytest.raises(ValueError, match=pattern):
        plan_for_model(model, 128, 128, num_steps=8, patch_size=2, **explicit)
    assert model.inner_model.calls == []
