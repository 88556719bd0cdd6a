"""Samplers: single-resolution steppers and the progressive multi-stage LSS sampler."""

from lssgen_core.sampling.progressive import (
    ExtraArgs,
    enter_stage,
    sample_progressive,
    upsample_latent,
)
from lssgen_core.sampling.samplers import Callback, StepFunction, sample_ddim, sample_euler

__all__ = [
    "Callback",
    "ExtraArgs",
    "StepFunction",
    "enter_stage",
    "sample_ddim",
    "sample_euler",
    "sample_progressive",
    "upsample_latent",
]
