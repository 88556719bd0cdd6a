"""The progressive multi-resolution sampler: the one place the LSS loop lives.

For each stage of a :class:`~lssgen_core.plan.StagePlan`: the first starts from pure noise; every
later one upsamples the previous stage's clean latent, re-noises it to the stage's entry level and
denoises from there with any single-resolution sampler (``step``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from lssgen_core.denoiser import Denoiser
from lssgen_core.noise import Generators, randn
from lssgen_core.parameterization import Parameterization
from lssgen_core.plan import Stage, StagePlan
from lssgen_core.sampling.samplers import Callback, StepFunction, sample_euler
from lssgen_core.upsample.scalers import LatentScaler

ExtraArgs = Mapping[str, Any] | Callable[[Stage], Mapping[str, Any]] | None


def upsample_latent(latent: torch.Tensor, stage: Stage, scaler: LatentScaler) -> torch.Tensor:
    """The previous stage's clean latent scaled to ``stage``'s latent size."""
    upsampled = scaler(latent)
    expected = (*latent.shape[:2], stage.latent_height, stage.latent_width)
    if tuple(upsampled.shape) != expected:
        raise RuntimeError(
            f"the latent scaler turned {tuple(latent.shape)} into {tuple(upsampled.shape)}; "
            f"stage {stage.index} needs {expected}"
        )
    return upsampled


def enter_stage(
    latent: torch.Tensor,
    stage: Stage,
    scaler: LatentScaler,
    noise: torch.Tensor,
    parameterization: Parameterization,
) -> torch.Tensor:
    """Upsample a clean latent and re-noise it to the level where ``stage`` starts.

    The level is the stage's own scheduled sigma at its entry index, so the sampler continues
    exactly on its schedule (``(1 - s) * up + s * noise`` for flow).
    """
    upsampled = upsample_latent(latent, stage, scaler)
    return parameterization.add_noise(upsampled, noise.to(upsampled), stage.entry_level)


def _stage_args(extra_args: ExtraArgs, stage: Stage) -> Mapping[str, Any]:
    if extra_args is None:
        return {}
    if callable(extra_args):
        return extra_args(stage)
    return extra_args


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
    parameterization = plan.parameterization
    done = 0
    x = torch.empty(0)
    for stage in plan.stages:
        shape = (batch_size, channels, stage.latent_height, stage.latent_width)
        if stage.index == 0:
            first = (
                noise if noise is not None else randn(shape, generator, device=device, dtype=dtype)
            )
            if tuple(first.shape) != shape:
                raise ValueError(f"noise has shape {tuple(first.shape)}; the plan needs {shape}")
            x = parameterization.pure_noise(first.to(device=device, dtype=dtype), stage.entry_level)
        else:
            fresh = randn(shape, generator, device=device, dtype=dtype)
            x = enter_stage(x, stage, scaler, fresh, parameterization)
        sigmas = torch.tensor(stage.run_sigmas, device=x.device, dtype=torch.float32)
        stage_callback = _with_stage(callback, stage, done)
        x = step(model, x, sigmas, _stage_args(extra_args, stage), stage_callback, disable)
        done += stage.num_denoising_steps
    return x


def _with_stage(callback: Callback | None, stage: Stage, done: int) -> Callback | None:
    if callback is None:
        return None

    def stage_callback(info: dict[str, Any]) -> None:
        callback({**info, "stage": stage.index, "step": done + int(info["i"])})

    return stage_callback
