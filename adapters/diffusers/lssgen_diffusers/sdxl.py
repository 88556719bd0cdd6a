"""LSS for Stable Diffusion XL (and Playground v2.5): ``LSSStableDiffusionXLPipeline``."""

from __future__ import annotations

from diffusers import StableDiffusionXLPipeline

from lssgen_diffusers.family import POOLED_EMBEDS
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSStableDiffusionXLPipeline(LSSPipelineMixin, StableDiffusionXLPipeline):
    __doc__ = (
        """``StableDiffusionXLPipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=1024``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"``: at SDXL's native 1024 this is one stage;
    LSS acts from 2048 (1024 -> 2048). Each stage's ``add_time_ids`` come from its own size
    (unless ``original_size`` / ``target_size`` are given); ``denoising_end`` applies to the last
    stage only. Works with Euler-type (VE latents) and DDIM / DPM-Solver-type (VP latents)
    schedulers; the entry latent is ``scheduler.add_noise(upsampled, noise, t_entry)``.
    Extra component: ``latent_upsampler`` (a 4-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("sdxl").defaults
    lss_prompt_arguments = ("prompt", "prompt_2", "negative_prompt", "negative_prompt_2")
    lss_encode_outputs = ("prompt_embeds", "negative_prompt_embeds", *POOLED_EMBEDS)
    lss_lora_argument = "cross_attention_kwargs"
    lss_batched_embeds = POOLED_EMBEDS
    lss_schedule_arguments = ("timesteps", "sigmas")
    lss_final_stage_arguments = ("denoising_end",)
