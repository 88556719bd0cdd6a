"""A configured Diffusers scheduler's schedule as the LSS planner sees it: noise levels per step.

The planner (``lssgen_core.plan``) works on ``num_steps + 1`` descending levels ending in 0, in one
parameterisation. Reading them off a scheduler that ran ``set_timesteps`` (instead of recomputing
them) is what makes the plan's entry level exactly the level the stock loop will use.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import PNDMScheduler

from lssgen_core.parameterization import (
    FLOW,
    VE,
    VP,
    Parameterization,
    VPParameterization,
    convert_sigma,
)


def is_flow_scheduler(scheduler: Any) -> bool:
    """Flow-matching schedulers, and multistep solvers switched to flow sigmas."""
    return type(scheduler).__name__.startswith("FlowMatch") or bool(
        scheduler.config.get("use_flow_sigmas", False)
    )


def parameterization_of(scheduler: Any) -> Parameterization:
    """The space the pipeline's latents live in with this (configured) scheduler.

    FLOW for flow matching; VE when the scheduler scales the starting noise up
    (``init_noise_sigma > 1``: Euler-type schedulers keep ``x0 + sigma * noise``); VP otherwise
    (DDIM, DDPM, PNDM, DPM-Solver, UniPC: ``sqrt(abar) x0 + sqrt(1 - abar) noise``).
    """
    if is_flow_scheduler(scheduler):
        return FLOW
    if float(scheduler.init_noise_sigma) > 1:
        return VE
    return VP


def check_supported(scheduler: Any) -> None:
    """Raise ValueError for schedulers a later stage cannot enter part-way (named ``scheduler``)."""
    name = type(scheduler).__name__
    if getattr(scheduler, "order", 1) != 1:
        raise ValueError(
            f"scheduler {name} has order {scheduler.order}; multi-stage LSS enters a stage "
            "part-way through its schedule, which is only defined for first-order schedulers "
            "(order 1: Euler, Euler ancestral, DDIM, DDPM, PNDM, DPM-Solver multistep, UniPC, "
            "flow matching Euler). Use one of those, or a single stage (start_sigma=1)"
        )
    if isinstance(scheduler, PNDMScheduler) and not scheduler.config.skip_prk_steps:
        raise ValueError(
            "scheduler PNDMScheduler with skip_prk_steps=False cannot be entered part-way; use "
            "skip_prk_steps=True (Stable Diffusion's shipped setting) or another scheduler"
        )


def step_timesteps(scheduler: Any) -> torch.Tensor:
    """The timestep each step starts from (one per step).

    PNDM without PRK steps repeats its second timestep (a predictor-corrector warm-up that costs
    one extra model call); that repetition is one step, not two.
    """
    timesteps = scheduler.timesteps
    if isinstance(scheduler, PNDMScheduler) and len(timesteps) > 1:
        return torch.cat([timesteps[:2], timesteps[3:]])
    return timesteps


def scheduler_levels(scheduler: Any, parameterization: Parameterization) -> list[float]:
    """``num_steps + 1`` levels in ``parameterization`` ending in 0, from a configured scheduler.

    Flow and VE schedulers keep their levels in ``scheduler.sigmas``. VP schedulers either keep VE
    sigmas next to VP latents (DPM-Solver, UniPC: converted through the SNR) or only timesteps
    (DDIM, DDPM, PNDM: ``sqrt(1 - alphas_cumprod[t])``).
    """
    timesteps = step_timesteps(scheduler)
    count = len(timesteps)
    sigmas: Any = getattr(scheduler, "sigmas", None)
    if parameterization is not VP:
        levels = [float(s) for s in sigmas[:count]]
    elif isinstance(sigmas, torch.Tensor) and len(sigmas) == count + 1:
        levels = [float(convert_sigma(float(s), VE, VP)) for s in sigmas[:count]]
    else:
        alphas_cumprod = scheduler.alphas_cumprod.to("cpu", torch.float64)
        indices = timesteps.to("cpu").long()
        levels = VPParameterization.sigma_from_alpha_cumprod(alphas_cumprod[indices]).tolist()
    return [*levels, 0.0]


def entry_timesteps(scheduler: Any, start_index: int) -> torch.Tensor:
    """The timesteps the stock loop must iterate to enter the schedule at step ``start_index``.

    Diffusers' img2img rule ``timesteps[start * order:]`` for every first-order scheduler, except
    PNDM: its warm-up repeats the second timestep of whatever it runs, so entering at step ``s``
    runs ``[t_s, t_s+1, t_s+1, t_s+2, ...]`` (the slice alone would apply the warm-up corrector to
    the wrong pair of levels).
    """
    timesteps = scheduler.timesteps
    if start_index == 0:
        return timesteps
    if isinstance(scheduler, PNDMScheduler):
        steps = step_timesteps(scheduler)[start_index:]
        return torch.cat([steps[:2], steps[1:]]) if len(steps) > 1 else steps
    return timesteps[start_index * scheduler.order :]
