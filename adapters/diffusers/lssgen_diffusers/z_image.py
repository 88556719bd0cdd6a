"""LSS for Z-Image: ``LSSZImagePipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import ZImagePipeline
from diffusers.pipelines.z_image.pipeline_z_image import get_default_z_image_sigmas

from lssgen_core.errors import LSSArgumentError
from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import set_shifted_timesteps
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSZImagePipeline(LSSPipelineMixin, ZImagePipeline):
    __doc__ = (
        """``ZImagePipeline`` with latent space scaling (LSSGen), for Z-Image and Z-Image-Turbo.

    Latents are not packed: the stock call takes and returns FLUX.1's 16-channel VAE latents
    ``(B, 16, H/8, W/8)`` (normalised by the VAE's scaling and shift factors), and the upsampler
    runs on them; the transformer patchifies 2x2, so sizes are multiples of 16. Each stage gets
    the schedule the stock call sets for its size and step count: Z-Image's linear sigmas
    shifted by the scheduler's static ``shift`` (Z-Image-Turbo: 3.0, the same at every size) or,
    with ``use_dynamic_shifting``, by ``mu`` from the stage's token count.
    Prompts go through the Qwen3 chat template once; the embeddings are lists of per-prompt
    tensors of different lengths, repeated per image as the stock call repeats them.
    Guidance is on for ``guidance_scale > 0`` (Z-Image-Turbo runs with 0). ``cfg_truncation``
    and ``cfg_normalization`` hold at every stage as in one stock call: the stock cutoff compares
    ``1 - t / 1000`` (one minus the step's noise level) with ``cfg_truncation``, so every stage
    stops guiding at the same noise level as a one-stage call; each guided step is renormalised.
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 50 steps, guidance 5.0
    (the stock call's; Z-Image-Turbo takes about 8 steps and ``guidance_scale=0``).
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("z-image").defaults
    # The stock call needs multiples of 2 * vae_scale_factor: the transformer's 2x2 patches.
    lss_patch_size = 2
    # The stock prepare_latents keeps given latents as they are (float32 by default) and the loop
    # casts them to the transformer's dtype at every step, so any floating dtype is accepted.
    lss_casts_latents = True
    # Lists of per-prompt tensors: repeated per image in lss_encode_prompts (as the stock call).
    lss_per_image_arguments = ()

    def lss_default_size(self) -> tuple[int, int]:
        return 1024, 1024  # the stock call's `height or 1024`

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As the stock __call__: Z-Image's linear sigmas and mu from the stage's token count
        # (read only by a scheduler with use_dynamic_shifting; a static shift ignores it).
        sigmas = get_default_z_image_sigmas(num_steps)
        set_shifted_timesteps(scheduler, num_steps, sigmas, size.num_tokens)

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        guided = self.lss_classifier_free_guidance(call)
        if call.get("prompt") is None and call.get("prompt_embeds") is not None:
            # The stock call encodes nothing then, and needs the negative embeddings to guide.
            if guided and call.get("negative_prompt_embeds") is None:
                raise LSSArgumentError(
                    "negative_prompt_embeds",
                    "negative_prompt_embeds is required with prompt_embeds and no prompt while "
                    "guidance is on (guidance_scale > 0), as in the stock pipeline",
                )
            encoded = {
                "prompt": None,
                "negative_prompt": None,
                "prompt_embeds": call["prompt_embeds"],
                "negative_prompt_embeds": call.get("negative_prompt_embeds"),
            }
        else:
            encoded = super().lss_encode_prompts(call)
        copies = call.get("num_images_per_prompt") or 1
        encoded["prompt_embeds"] = per_image(encoded["prompt_embeds"], copies)
        if guided and encoded["negative_prompt_embeds"]:
            encoded["negative_prompt_embeds"] = per_image(encoded["negative_prompt_embeds"], copies)
        return encoded


def per_image(embeds: list[Any], copies: int) -> list[Any]:
    """Z-Image's per-prompt embedding list with each prompt's entry ``copies`` times in a row:
    the stock call's repetition for ``num_images_per_prompt``."""
    return [entry for entry in embeds for _ in range(copies)]
