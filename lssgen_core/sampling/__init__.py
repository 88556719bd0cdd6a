"""Samplers: single-resolution steppers, the LSS stage loop and the progressive sampler on it."""

from lssgen_core.sampling.progressive import ExtraArgs, sample_progressive, step_runner
from lssgen_core.sampling.samplers import (
    Callback,
    StepFunction,
    first_order_sampler,
    sample_ddim,
    sample_euler,
)
from lssgen_core.sampling.stages import (
    StageOutcome,
    StageRunner,
    enter_stage,
    hand_over,
    run_stages,
    upsample_latent,
)

__all__ = [
    "Callback",
    "ExtraArgs",
    "StageOutcome",
    "StageRunner",
    "StepFunction",
    "enter_stage",
    "first_order_sampler",
    "hand_over",
    "run_stages",
    "sample_ddim",
    "sample_euler",
    "sample_progressive",
    "step_runner",
    "upsample_latent",
]
