"""Samplers: single-resolution steppers and the progressive multi-stage LSS sampler."""

from lssgen_core.sampling.progressive import (
    enter_stage,
    sample_progressive,
    upsample_latent,
)
from lssgen_core.sampling.samplers import StepFunction, sample_ddim, sample_euler

__all__ = [
    "StepFunction",
    "enter_stage",
    "sample_ddim",
    "sample_euler",
    "sample_progressive",
    "upsample_latent",
]
