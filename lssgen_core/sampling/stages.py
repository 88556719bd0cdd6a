"""The LSS stage loop, the one place it lives: run each stage of a plan, handing over between them.

A *stage runner* denoises one stage however its caller does it: our Euler or a k-diffusion
sampler (:func:`~lssgen_core.sampling.sample_progressive`), or a stock Diffusers ``__call__``
(``lssgen_diffusers``). The loop owns the hand-over: the previous stage's clean latent is scaled
2x, re-noised to the stage's entry level with fresh noise from the caller's generator, and given
to the runner; a runner that stops (an interrupt) ends the loop.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import torch

from lssgen_core.noise import Generators, randn
from lssgen_core.parameterization import Parameterization
from lssgen_core.plan import Stage, StagePlan
from lssgen_core.upsample.scalers import LatentScaler


@attrs.frozen
class StageOutcome:
    """What one stage gave: the latent the next stage enters from, and what a call returns."""

    # The stage's clean latent as (B, C, h, w), or (B, C, F, h, w) for a video; None only where
    # no later stage needs it.
    latent: torch.Tensor | None
    # What the call returns when this is the last stage run (None: ``latent``).
    output: Any = None
    # True ends the loop after this stage (a callback's interrupt).
    stop: bool = False

    @property
    def result(self) -> Any:
        return self.latent if self.output is None else self.output


class StageRunner(Protocol):
    def __call__(self, stage: Stage, latent: torch.Tensor | None) -> StageOutcome:
        """Denoise ``stage`` from ``latent``: the loop's ``first`` for stage 0 (as the runner
        takes it, possibly None), and the re-noised (B, C, h, w) (video: (B, C, F, h, w)) latent
        for every later stage."""
        ...


def upsample_latent(latent: torch.Tensor, stage: Stage, scaler: LatentScaler) -> torch.Tensor:
    """The previous stage's clean latent scaled to ``stage``'s latent size (height and width; a
    video's frames stay)."""
    upsampled = scaler(latent)
    expected = _stage_shape(latent, stage)
    if tuple(upsampled.shape) != expected:
        raise RuntimeError(
            f"the latent scaler turned {tuple(latent.shape)} into {tuple(upsampled.shape)}; "
            f"stage {stage.index} needs {expected}"
        )
    return upsampled


def _stage_shape(latent: torch.Tensor, stage: Stage) -> tuple[int, ...]:
    """``latent``'s shape with ``stage``'s latent height and width (every leading axis kept:
    batch, channels, and a video's frames)."""
    return (*latent.shape[:-2], stage.latent_height, stage.latent_width)


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


def hand_over(
    latent: torch.Tensor,
    stage: Stage,
    scaler: LatentScaler,
    generator: Generators,
    parameterization: Parameterization,
) -> torch.Tensor:
    """:func:`enter_stage` with fresh noise of ``stage``'s size, like ``latent`` in device and
    dtype: one tensor per image, from that image's own generator when a list is given, so an
    image does not depend on its batch."""
    shape = _stage_shape(latent, stage)
    noise = randn(shape, generator, device=latent.device, dtype=latent.dtype)
    # Named so the LSS machinery shows up in any profiler trace (free when none runs).
    with torch.profiler.record_function(f"lss.enter_stage[{stage.index}]"):
        return enter_stage(latent, stage, scaler, noise, parameterization)


def run_stages(
    plan: StagePlan,
    scaler: LatentScaler,
    runner: StageRunner,
    *,
    first: torch.Tensor | None = None,
    generator: Generators = None,
) -> StageOutcome:
    """Run every stage of ``plan`` with ``runner``; the outcome of the last stage run.

    ``first`` goes to the first stage as it is; each later stage gets the previous stage's latent
    through :func:`hand_over`. A runner's ``stop`` ends the loop there (its outcome is returned).
    """
    latent = first
    outcome = StageOutcome(None)
    for stage in plan.stages:
        if stage.index > 0:
            if outcome.latent is None:
                raise RuntimeError(
                    f"stage {stage.index - 1} gave no latent for stage {stage.index} to enter from"
                )
            latent = hand_over(outcome.latent, stage, scaler, generator, plan.parameterization)
        outcome = runner(stage, latent)
        if outcome.stop:
            break
    return outcome
