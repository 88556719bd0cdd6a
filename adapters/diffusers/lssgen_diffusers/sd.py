"""LSS for Stable Diffusion 1.x / 2.x: ``LSSStableDiffusionPipeline``."""

from __future__ import annotations

from diffusers import StableDiffusionPipeline

from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSStableDiffusionPipeline(LSSPipelineMixin, StableDiffusionPipeline):
    __doc__ = (
        """``StableDiffusionPipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"`` (the original used the img2img rule:
    ``entry_rule="strength"``). Works with Euler-type (VE latents) and DDIM / PNDM /
    DPM-Solver-type (VP latents) schedulers; the entry latent is
    ``scheduler.add_noise(upsampled, noise, t_entry)``, scaled once.
    Extra component: ``latent_upsampler`` (a 4-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("sd").defaults
    lss_lora_argument = "cross_attention_kwargs"
    lss_schedule_arguments = ("timesteps", "sigmas")
