"""LSS for Stable Diffusion 1.x / 2.x: ``LSSStableDiffusionPipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from diffusers import StableDiffusionPipeline
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

from lssgen_core.schedules import StageSize
from lssgen_diffusers.component import COMPONENT_NAME, offload_sequence
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.options import SD_DEFAULTS


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

    lss_defaults = SD_DEFAULTS
    lss_schedule_arguments = ("timesteps", "sigmas")
    model_cpu_offload_seq = offload_sequence(StableDiffusionPipeline.model_cpu_offload_seq)
    _optional_components: ClassVar[list[str]] = [
        *StableDiffusionPipeline._optional_components,
        COMPONENT_NAME,
    ]

    def _lss_default_size(self) -> tuple[int, int]:
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else size
        return height * self.vae_scale_factor, width * self.vae_scale_factor

    @property
    def _lss_latent_channels(self) -> int:
        return self.unet.config.in_channels

    def _lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        retrieve_timesteps(scheduler, num_steps, "cpu")

    def _lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        lora_scale = (call["cross_attention_kwargs"] or {}).get("scale")
        embeds, negative = self.encode_prompt(
            call["prompt"],
            self._execution_device,
            call["num_images_per_prompt"],
            self._lss_do_classifier_free_guidance(call["guidance_scale"]),
            call["negative_prompt"],
            prompt_embeds=call["prompt_embeds"],
            negative_prompt_embeds=call["negative_prompt_embeds"],
            lora_scale=lora_scale,
            clip_skip=call["clip_skip"],
        )
        return {
            "prompt": None,
            "negative_prompt": None,
            "prompt_embeds": embeds,
            "negative_prompt_embeds": negative,
        }
