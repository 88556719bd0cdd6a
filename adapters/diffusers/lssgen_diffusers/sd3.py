"""LSS for Stable Diffusion 3 / 3.5: ``LSSStableDiffusion3Pipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from diffusers import StableDiffusion3Pipeline
from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import (
    calculate_shift,
    retrieve_timesteps,
)

from lssgen_core.schedules import StageSize
from lssgen_diffusers.component import COMPONENT_NAME, offload_sequence
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.options import SD3_DEFAULTS

# Replaced by embeddings after the one text encoding.
_PROMPT_ARGUMENTS = (
    "prompt",
    "prompt_2",
    "prompt_3",
    "negative_prompt",
    "negative_prompt_2",
    "negative_prompt_3",
)


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

    lss_defaults = SD3_DEFAULTS
    lss_casts_latents = True  # StableDiffusion3Pipeline.prepare_latents casts given latents
    lss_batched_embeds = ("pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    model_cpu_offload_seq = offload_sequence(StableDiffusion3Pipeline.model_cpu_offload_seq)
    _optional_components: ClassVar[list[str]] = [
        *StableDiffusion3Pipeline._optional_components,
        COMPONENT_NAME,
    ]

    @property
    def lss_patch_size(self) -> int:  # type: ignore[override]
        return self.transformer.config.patch_size

    def _lss_default_size(self) -> tuple[int, int]:
        size = self.default_sample_size * self.vae_scale_factor
        return size, size

    @property
    def _lss_latent_channels(self) -> int:
        return self.transformer.config.in_channels

    def _lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As StableDiffusion3Pipeline.__call__: the scheduler's own sigmas; mu only for dynamic
        # shifting (from the stage's token count) or when the caller passes one.
        config = scheduler.config
        mu = call.get("mu")
        if config.get("use_dynamic_shifting", None) and mu is None:
            mu = calculate_shift(
                size.num_tokens,
                config.get("base_image_seq_len", 256),
                config.get("max_image_seq_len", 4096),
                config.get("base_shift", 0.5),
                config.get("max_shift", 1.16),
            )
        extra = {} if mu is None else {"mu": mu}
        retrieve_timesteps(scheduler, num_steps, "cpu", sigmas=None, **extra)

    def _lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        lora_scale = (call["joint_attention_kwargs"] or {}).get("scale")
        embeds, negative, pooled, negative_pooled = self.encode_prompt(
            prompt=call["prompt"],
            prompt_2=call["prompt_2"],
            prompt_3=call["prompt_3"],
            negative_prompt=call["negative_prompt"],
            negative_prompt_2=call["negative_prompt_2"],
            negative_prompt_3=call["negative_prompt_3"],
            do_classifier_free_guidance=self._lss_do_classifier_free_guidance(
                call["guidance_scale"]
            ),
            prompt_embeds=call["prompt_embeds"],
            negative_prompt_embeds=call["negative_prompt_embeds"],
            pooled_prompt_embeds=call["pooled_prompt_embeds"],
            negative_pooled_prompt_embeds=call["negative_pooled_prompt_embeds"],
            device=self._execution_device,
            clip_skip=call["clip_skip"],
            num_images_per_prompt=call["num_images_per_prompt"],
            max_sequence_length=call["max_sequence_length"],
            lora_scale=lora_scale,
        )
        return {
            **dict.fromkeys(_PROMPT_ARGUMENTS),
            "prompt_embeds": embeds,
            "negative_prompt_embeds": negative,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
