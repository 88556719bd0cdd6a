"""LSS for Stable Diffusion 3 / 3.5: ``LSSStableDiffusion3Pipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import StableDiffusion3Pipeline

from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import POOLED_EMBEDS, dynamic_mu, set_stock_timesteps
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of

_PROMPTS = ("prompt", "prompt_2", "prompt_3")


class LSSStableDiffusion3Pipeline(LSSPipelineMixin, StableDiffusion3Pipeline):
    __doc__ = (
        """``StableDiffusion3Pipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"``. Stage sizes are multiples of
    ``vae_scale_factor * patch_size``; the scheduler's shift (static, or dynamic ``mu`` from the
    stage's token count) is the stock ``__call__``'s for every stage.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("sd3").defaults
    lss_casts_latents = True  # StableDiffusion3Pipeline.prepare_latents casts given latents
    lss_prompt_arguments = (*_PROMPTS, *(f"negative_{name}" for name in _PROMPTS))
    lss_encode_outputs = ("prompt_embeds", "negative_prompt_embeds", *POOLED_EMBEDS)
    lss_batched_embeds = POOLED_EMBEDS

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As StableDiffusion3Pipeline.__call__: the scheduler's own sigmas; mu only for dynamic
        # shifting (from the stage's token count) or when the caller passes one.
        mu = call.get("mu")
        if scheduler.config.get("use_dynamic_shifting", None) and mu is None:
            mu = dynamic_mu(scheduler.config, size.num_tokens, max_shift=1.16)
        set_stock_timesteps(scheduler, num_steps, **({} if mu is None else {"mu": mu}))
