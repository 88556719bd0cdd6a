"""LSS for Stable Diffusion XL (and Playground v2.5): ``LSSStableDiffusionXLPipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from diffusers import StableDiffusionXLPipeline
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (
    retrieve_timesteps,
)

from lssgen_core.schedules import StageSize
from lssgen_diffusers.component import COMPONENT_NAME, offload_sequence
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.options import SDXL_DEFAULTS


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

    lss_defaults = SDXL_DEFAULTS
    lss_batched_embeds = ("pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    lss_schedule_arguments = ("timesteps", "sigmas")
    lss_final_stage_arguments = ("denoising_end",)
    model_cpu_offload_seq = offload_sequence(StableDiffusionXLPipeline.model_cpu_offload_seq)
    _optional_components: ClassVar[list[str]] = [
        *StableDiffusionXLPipeline._optional_components,
        COMPONENT_NAME,
    ]

    def _lss_default_size(self) -> tuple[int, int]:
        size = self.default_sample_size * self.vae_scale_factor
        return size, size

    @property
    def _lss_latent_channels(self) -> int:
        return self.unet.config.in_channels

    def _lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        retrieve_timesteps(scheduler, num_steps, "cpu")

    def _lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        lora_scale = (call["cross_attention_kwargs"] or {}).get("scale")
        embeds, negative, pooled, negative_pooled = self.encode_prompt(
            prompt=call["prompt"],
            prompt_2=call["prompt_2"],
            device=self._execution_device,
            num_images_per_prompt=call["num_images_per_prompt"],
            do_classifier_free_guidance=self._lss_do_classifier_free_guidance(
                call["guidance_scale"]
            ),
            negative_prompt=call["negative_prompt"],
            negative_prompt_2=call["negative_prompt_2"],
            prompt_embeds=call["prompt_embeds"],
            negative_prompt_embeds=call["negative_prompt_embeds"],
            pooled_prompt_embeds=call["pooled_prompt_embeds"],
            negative_pooled_prompt_embeds=call["negative_pooled_prompt_embeds"],
            lora_scale=lora_scale,
            clip_skip=call["clip_skip"],
        )
        return {
            **dict.fromkeys(("prompt", "prompt_2", "negative_prompt", "negative_prompt_2")),
            "prompt_embeds": embeds,
            "negative_prompt_embeds": negative,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
