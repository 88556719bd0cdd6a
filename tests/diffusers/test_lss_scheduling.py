"""Entering a stage part-way: re-noise levels, scheduler views, schedulers with quirks."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    HeunDiscreteScheduler,
)
from lss_testkit import PROMPT, lss_from_stock, recorded_inputs

import lssgen_core.sampling.stages
from lssgen_core.parameterization import FLOW, VE, VP
from lssgen_core.upsample import make_latent_scaler
from lssgen_diffusers import SchedulerView, entered_scheduler
from lssgen_diffusers.testing import tiny_sd_pipeline

STEPS = 8
ARGS: dict[str, Any] = {
    "prompt": PROMPT,
    "height": 128,
    "width": 128,
    "num_inference_steps": STEPS,
    "min_size": 64,
    "output_type": "latent",
    "scaling_mode": "latent",
}


def sd_lss(scheduler: str = "ddim", **components: Any) -> Any:
    return lss_from_stock("sd", tiny_sd_pipeline(scheduler=scheduler), **components)


@pytest.mark.parametrize(
    ("scheduler", "parameterization"), [("euler", VE), ("ddim", VP)], ids=["euler", "ddim"]
)
@pytest.mark.parametrize("entry_rule", ["sigma", "strength"])
def test_renoise_is_the_schedulers_add_noise(
    scheduler: str, parameterization: Any, entry_rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = sd_lss(scheduler)
    noises: list[torch.Tensor] = []
    starts: list[torch.Tensor] = []
    finals: list[torch.Tensor] = []

    def spy_randn(*args: Any, **kwargs: Any) -> torch.Tensor:
        noise = real_randn(*args, **kwargs)
        noises.append(noise)
        return noise

    real_randn = lssgen_core.sampling.stages.randn
    monkeypatch.setattr(lssgen_core.sampling.stages, "randn", spy_randn)
    real_prepare = pipe.prepare_latents
    monkeypatch.setattr(
        pipe, "prepare_latents", lambda *a, **k: starts.append(real_prepare(*a, **k)) or starts[-1]
    )

    def keep(p: Any, step: int, timestep: Any, tensors: dict) -> dict:
        finals.append(tensors["latents"])
        return tensors

    pipe(
        **ARGS,
        generator=torch.Generator().manual_seed(0),
        entry_rule=entry_rule,
        callback_on_step_end=keep,
    )
    plan = pipe.lss_plan
    first, second = plan.stages
    assert plan.parameterization is parameterization
    assert second.start_index == (STEPS - int(STEPS * 0.75) if entry_rule == "strength" else 1)

    reference = copy.deepcopy(pipe.scheduler)
    reference.set_timesteps(STEPS)
    upsampled = make_latent_scaler("latent")(finals[first.num_denoising_steps - 1])
    (noise,) = noises
    expected = reference.add_noise(
        upsampled, noise, reference.timesteps[second.start_index : second.start_index + 1]
    )
    # The latent the stock loop starts the second stage from: noise added once, not rescaled.
    # Same formula; the core goes through the VP sigma, so allow a few float32 ulps.
    torch.testing.assert_close(starts[1], expected, rtol=1e-6, atol=1e-6)


def test_pndm_enters_with_its_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = sd_lss("pndm")
    with recorded_inputs(pipe.unet) as calls:
        latents = pipe(**ARGS, generator=torch.Generator().manual_seed(0)).images
    second = pipe.lss_plan.stages[1]
    reference = copy.deepcopy(pipe.scheduler)
    reference.set_timesteps(STEPS)
    levels = [int(t) for t in reference.timesteps[:2]] + [int(t) for t in reference.timesteps[3:]]
    entered = levels[second.start_index :]
    # PNDM's predictor-corrector warm-up repeats the second timestep of whatever it runs.
    expected = [entered[0], entered[1], *entered[1:]]
    seen = [int(call["timestep"]) for call in calls if call["shape"][-1] == 16]
    assert second.start_index > 0
    assert seen == expected
    assert torch.isfinite(latents).all()


def test_multistep_solver_keeps_its_full_schedule() -> None:
    # DPM-Solver++ takes a first-order last step by comparing its step index with
    # len(self.timesteps); truncating the real scheduler's timesteps makes that step divide by 0.
    stock = tiny_sd_pipeline(scheduler="ddim")
    scheduler = DPMSolverMultistepScheduler.from_config(stock.scheduler.config)
    pipe = lss_from_stock("sd", stock, scheduler=scheduler)
    with recorded_inputs(pipe.unet) as calls:
        latents = pipe(**ARGS, generator=torch.Generator().manual_seed(0)).images
    assert pipe.lss_plan.parameterization is VP
    assert pipe.lss_plan.stages[1].start_index > 0
    assert len(calls) == pipe.lss_plan.num_denoising_steps
    assert torch.isfinite(latents).all()


def test_second_order_scheduler_is_refused_before_any_work() -> None:
    stock = tiny_sd_pipeline(scheduler="ddim")
    pipe = lss_from_stock(
        "sd", stock, scheduler=HeunDiscreteScheduler.from_config(stock.scheduler.config)
    )
    refused = pytest.raises(ValueError, match="scheduler HeunDiscreteScheduler has order 2")
    with (
        recorded_inputs(pipe.unet) as calls,
        recorded_inputs(pipe.text_encoder) as encodes,
        refused,
    ):
        pipe(**ARGS)
    assert calls == [] and encodes == []
    # With one stage nothing is entered part-way: the stock run, any scheduler.
    latents = pipe(**{**ARGS, "min_size": 128, "num_inference_steps": 2}).images
    assert torch.isfinite(latents).all()


def test_flux_worked_example_plan(lss_pair: Any) -> None:
    # FLUX.1-dev's scheduler, 1024 px, 50 steps, start_sigma 0.75, shortening on, min 512.
    plan = lss_pair("flux").lss.lss_plan_for(height=1024, width=1024, num_inference_steps=50)
    low, high = plan.stages
    assert (low.height, low.num_steps, low.num_denoising_steps) == (512, 25, 25)
    assert (high.height, high.num_steps, high.num_denoising_steps) == (1024, 50, 25)
    assert high.entry_level == pytest.approx(0.7595, abs=1e-4)
    assert plan.token_steps_ratio() == pytest.approx(0.625)
    assert plan.parameterization is FLOW


def test_plan_for_takes_a_calls_scaling_mode_and_checks_it(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    call = {"height": 1024, "width": 1024, "num_inference_steps": 50}
    assert pipe.lss_plan_for(**call, scaling_mode="latent") == pipe.lss_plan_for(**call)
    with pytest.raises(ValueError, match="scaling_mode"):
        pipe.lss_plan_for(**call, scaling_mode="lanczos")


def test_view_enters_and_restores() -> None:
    class Owner:
        pass

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    owner = Owner()
    owner.scheduler = scheduler
    with pytest.raises(RuntimeError, match="boom"), entered_scheduler(owner, 2) as view:
        assert owner.scheduler is view
        assert isinstance(view, SchedulerView)
        assert "sigmas" in inspect.signature(view.set_timesteps).parameters
        view.set_timesteps(6)
        assert torch.equal(view.timesteps, scheduler.timesteps[2:])
        assert torch.equal(view.sigmas, scheduler.sigmas[2:])
        assert scheduler.begin_index == 2
        view.set_begin_index(0)  # what FLUX and SDXL call before their loops
        assert scheduler.begin_index == 2
        assert view.init_noise_sigma == 1.0
        assert len(scheduler.timesteps) == 6  # the real scheduler keeps its whole schedule
        raise RuntimeError("boom")
    assert owner.scheduler is scheduler
