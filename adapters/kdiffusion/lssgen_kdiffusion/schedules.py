"""Per-stage VE schedules for the core's planner, and a planner for a k-diffusion model.

Each schedule here is a core :class:`~lssgen_core.schedules.Schedule` in VE sigmas, so
``plan_stages(..., parameterization=VE, schedule=...)`` gives every stage its own levels and
enters later stages where the signal-to-noise ratio matches ``start_sigma``.

Flow shifts become plain scalings in VE: SD3's static shift maps flow time ``t`` to
``s t / (1 + (s - 1) t)``, i.e. ``sigma = t / (1 - t)`` to ``s * sigma``; FLUX's exponential shift
multiplies sigma by ``e^mu`` and CogView4's linear one by ``mu``. So "the stage's shift" applies
to any spacing (the model's, Karras, exponential) by scaling the stage's levels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch

from lssgen_core.auto_entry import auto_start_sigma, describe_auto_entry, is_auto
from lssgen_core.parameterization import VE
from lssgen_core.plan import StagePlan, plan_stages
from lssgen_core.schedules import (
    FlowSchedule,
    Schedule,
    StageSize,
    exponential_sigmas,
    karras_sigmas,
)
from lssgen_core.upsample import LatentUpsampler
from lssgen_kdiffusion.flow import FLOW_T_MAX, FlowDenoiser, flow_sigmas_to_ve

SPACINGS = ("model", "karras", "exponential")


def ve_shift_factor(shift: FlowSchedule | None, size: StageSize) -> float:
    """The factor a flow shift multiplies VE sigmas by at this stage size (1 without a shift)."""
    if shift is None or shift.shift_type == "none":
        return 1.0
    if shift.shift_type == "static":
        return shift.shift
    mu = shift.mu_for(size)
    return math.exp(mu) if shift.shift_type == "exponential" else mu


def _scaled(levels: Sequence[float], factor: float) -> list[float]:
    return [float(level) * factor for level in levels]


def flow_ve_schedule(shift: FlowSchedule | None = None, t_max: float = FLOW_T_MAX) -> Schedule:
    """A flow model's own schedule in VE: the stage's shifted flow times, t = 1 clamped to t_max."""
    flow = shift or FlowSchedule()

    def schedule(num_steps: int, size: StageSize, /) -> list[float]:
        return flow_sigmas_to_ve(flow(num_steps, size), t_max)

    return schedule


def discrete_schedule(model: Any, shift: FlowSchedule | None = None) -> Schedule:
    """``model.get_sigmas(n)`` (a k-diffusion discrete model's own spacing) for every stage."""

    def schedule(num_steps: int, size: StageSize, /) -> list[float]:
        return _scaled(model.get_sigmas(num_steps).tolist(), ve_shift_factor(shift, size))

    return schedule


def karras_schedule(
    sigma_min: float, sigma_max: float, rho: float = 7.0, shift: FlowSchedule | None = None
) -> Schedule:
    """Karras et al.'s spacing from ``sigma_max`` to ``sigma_min`` for every stage, then shifted."""

    def schedule(num_steps: int, size: StageSize, /) -> list[float]:
        levels = karras_sigmas(num_steps, sigma_min, sigma_max, rho)
        return _scaled(levels, ve_shift_factor(shift, size))

    return schedule


def exponential_schedule(
    sigma_min: float, sigma_max: float, shift: FlowSchedule | None = None
) -> Schedule:
    """Levels evenly spaced in log sigma for every stage, then shifted."""

    def schedule(num_steps: int, size: StageSize, /) -> list[float]:
        levels = exponential_sigmas(num_steps, sigma_min, sigma_max)
        return _scaled(levels, ve_shift_factor(shift, size))

    return schedule


def _float(value: float | torch.Tensor) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def stage_schedule(
    model: Any,
    spacing: str = "model",
    *,
    shift: FlowSchedule | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
) -> Schedule:
    """The per-stage VE schedule of ``spacing`` for ``model``.

    "model": a :class:`FlowDenoiser`'s shifted flow schedule (``shift`` defaults to the model's),
    or ``model.get_sigmas(n)`` for discrete models (ours and k-diffusion's). "karras" and
    "exponential" span ``sigma_min`` to ``sigma_max`` (default: the model's) and are scaled by
    ``shift`` (default: a flow model's own). A flow model's ``sigma_max`` (t_max = 1 - 1e-4)
    puts most Karras steps next to pure noise; pass a smaller one for those spacings.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"spacing={spacing!r} must be one of {SPACINGS}")
    is_flow = isinstance(model, FlowDenoiser)
    if is_flow and shift is None:
        shift = model.shift
    if spacing == "model":
        if is_flow:
            return flow_ve_schedule(shift, model.t_max)
        if not hasattr(model, "get_sigmas"):
            raise ValueError(
                f"{type(model).__name__} has no get_sigmas: use spacing='karras' or "
                "'exponential' with sigma_min and sigma_max"
            )
        return discrete_schedule(model, shift)
    low = sigma_min if sigma_min is not None else getattr(model, "sigma_min", None)
    high = sigma_max if sigma_max is not None else getattr(model, "sigma_max", None)
    if low is None or high is None:
        raise ValueError(
            f"{type(model).__name__} has no sigma_min / sigma_max; pass them for "
            f"spacing={spacing!r}"
        )
    if spacing == "karras":
        return karras_schedule(_float(low), _float(high), rho, shift)
    return exponential_schedule(_float(low), _float(high), shift)


def plan_for_model(
    model: Any,
    height: int,
    width: int,
    *,
    num_steps: int,
    spacing: str = "model",
    shift: FlowSchedule | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float = 7.0,
    upsampler: LatentUpsampler | None = None,
    scaling_mode: str = "resnet",
    **plan_kwargs: Any,
) -> StagePlan:
    """An LSS plan in VE sigmas for ``model`` with :func:`stage_schedule`'s ``spacing``.

    ``plan_kwargs`` go to :func:`~lssgen_core.plan.plan_stages` (``min_size``, ``start_sigma``,
    ``shorten_steps``, ``vae_scale_factor``, ``patch_size``, ``entry_rule``, and the explicit
    plan's ``stage_steps``, ``stage_entries``, ``final_steps``, ...): a flow model's VE plan
    enters every stage where its flow plan does, explicit plans included.

    ``start_sigma="auto"`` takes the level of ``upsampler``'s calibration for ``scaling_mode``
    (:mod:`lssgen_core.auto_entry`), resolved to a number before planning; ``upsampler`` and
    ``scaling_mode`` are read for nothing else (the sampler takes its scaler itself).
    """
    note = None
    if is_auto(plan_kwargs.get("start_sigma")):
        calibration = None if upsampler is None else upsampler.calibration_for(scaling_mode)
        plan_kwargs["start_sigma"] = auto_start_sigma(calibration, scaling_mode=scaling_mode)
        assert calibration is not None  # auto_start_sigma refuses None
        note = describe_auto_entry(calibration, scaling_mode=scaling_mode)
    schedule = stage_schedule(
        model, spacing, shift=shift, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho
    )
    plan = plan_stages(
        height, width, num_steps=num_steps, schedule=schedule, parameterization=VE, **plan_kwargs
    )
    return attrs.evolve(plan, start_sigma_note=note)
