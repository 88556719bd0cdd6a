"""LSS for CogView4: ``LSSCogView4Pipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from diffusers import CogView4Pipeline
from diffusers.pipelines.cogview4.pipeline_cogview4 import calculate_shift, retrieve_timesteps

from lssgen_core.schedules import StageSize
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSCogView4Pipeline(LSSPipelineMixin, CogView4Pipeline):
    __doc__ = (
        """``CogView4Pipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"``. Every stage gets the stock schedule for
    its size (linear timesteps, ``mu = sqrt(tokens / 256) * 0.75 + 0.25``) and its own
    ``original_size`` / ``target_size`` conditioning unless those are given.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("cogview4").defaults
    lss_casts_latents = True  # CogView4Pipeline.__call__ casts latents for the transformer
    lss_schedule_arguments = ("timesteps", "sigmas")

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As CogView4Pipeline.__call__: integer linear timesteps, sigmas = t / T, mu from tokens.
        config = scheduler.config
        timesteps = np.linspace(config.num_train_timesteps, 1.0, num_steps)
        timesteps = timesteps.astype(np.int64).astype(np.float32)
        sigmas = timesteps / config.num_train_timesteps
        mu = calculate_shift(
            size.num_tokens,
            config.get("base_image_seq_len", 256),
            config.get("base_shift", 0.25),
            config.get("max_shift", 0.75),
        )
        # CogView4's own retrieve_timesteps: it takes timesteps and sigmas together.
        retrieve_timesteps(scheduler, num_steps, "cpu", timesteps, sigmas, mu=mu)
