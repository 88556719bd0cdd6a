"""The progressive multi-resolution sampler: the stage loop with a single-resolution sampler.

The first stage starts from pure noise; every later one enters from the previous stage's clean
latent, upsampled and re-noised (:func:`~lssgen_core.sampling.stages.run_stages`, the one stage
loop), and is denoised with any single-resolution sampler (``step``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from lssgen_core.denoiser import Denoiser
from lssgen_core.noise import Generators, randn
from lssgen_core.plan import Stage, StagePlan
from lssgen_core.sampling.samplers import Callback, StepFunction, sample_euler
from lssgen_core.sampling.stages import StageOutcome, StageRunner, run_stages
from lssgen_core.upsample.scalers import LatentScaler

ExtraArgs = Mapping[str, Any] | Callable[[Stage], Mapping[str, Any]] | None


def _stage_args(extra_args: ExtraArgs, stage: Stage) -> Mapping[str, Any]:
    if extra_args is None:
        return {}
    if callable(extra_args):
        return extra_args(stage)
    return extra_args


def step_runner(
    model: Denoiser,
    plan: StagePlan,
    step: StepFunction = sample_euler,
    *,
    extra_args: ExtraArgs = None,
    callback: Callback | None = None,
    disable: bool | None = None,
) -> StageRunner:
    """The stage runner of a single-resolution sampler: ``step`` over each stage's levels."""

    def run(stage: Stage, latent: torch.Tensor | None) -> StageOutcome:
        assert latent is not None  # sample_progressive gives the first stage its noise
        sigmas = torch.tensor(stage.run_sigmas, device=latent.device, dtype=torch.float32)
        done = sum(s.num_denoising_steps for s in plan.stages[: stage.index])
        stage_callback = _with_stage(callback, stage, done)
        args = _stage_args(extra_args, stage)
        return StageOutcome(step(model, latent, sigmas, args, stage_callback, disable))

    return run


@torch.no_grad()
def sample_progressive(
    model: Denoiser,
    plan: StagePlan,
    scaler: LatentScaler,
    *,
    channels: int,
    batch_size: int = 1,
    step: StepFunction = sample_euler,
    generator: Generators = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    noise: torch.Tensor | None = None,
    extra_args: ExtraArgs = None,
    callback: Callback | None = None,
    disable: bool | None = None,
) -> torch.Tensor:
    """Run ``plan`` with ``model`` (a denoiser in the plan's sigma space); returns the clean latent.

    ``scaler`` maps a (B, C, h, w) latent to (B, C, 2h, 2w): a ``LatentUpsampler`` or any scaler
    from :func:`lssgen_core.upsample.make_latent_scaler`. ``generator`` (one, or one per batch
    element) draws every noise tensor; ``noise`` optionally fixes the first stage's noise.
    ``extra_args`` is passed to the denoiser, or is a function of the stage that returns them.
    ``callback`` gets k-diffusion's dict plus ``stage`` and ``step`` (the count over all stages).
    """
    own = getattr(model, "parameterization", None)
    if own is not None and own is not plan.parameterization:
        raise ValueError(
            f"the denoiser works in {own!r} sigmas but the plan was made for "
            f"{plan.parameterization!r}; plan with parameterization={own!r}"
        )
    first_stage = plan.stages[0]
    shape = (batch_size, channels, first_stage.latent_height, first_stage.latent_width)
    first = noise if noise is not None else randn(shape, generator, device=device, dtype=dtype)
    if tuple(first.shape) != shape:
        raise ValueError(f"noise has shape {tuple(first.shape)}; the plan needs {shape}")
    start = plan.parameterization.pure_noise(
        first.to(device=device, dtype=dtype), first_stage.entry_level
    )
    runner = step_runner(
        model, plan, step, extra_args=extra_args, callback=callback, disable=disable
    )
    latent = run_stages(plan, scaler, runner, first=start, generator=generator).latent
    assert latent is not None
    return latent


def _with_stage(callback: Callback | None, stage: Stage, done: int) -> Callback | None:
    if callback is None:
        return None

    def stage_callback(info: dict[str, Any]) -> None:
        callback({**info, "stage": stage.index, "step": done + int(info["i"])})

    return stage_callback
