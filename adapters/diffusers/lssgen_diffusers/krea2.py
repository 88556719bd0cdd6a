"""LSS for Krea 2: ``LSSKrea2Pipeline``.

Krea 2 shares Qwen-Image's VAE, so its spatial view and pixel round trip are Qwen-Image's
(:mod:`lssgen_diffusers.qwen_image`); it has its own transformer (patches of the pipeline's
``patch_size``), its own text encoder (Qwen3-VL, hidden states of several layers stacked) and
its own rules for guidance (on for ``guidance_scale > 0``, an empty negative prompt by default),
sizes (rounded up) and the shift (``mu`` from the token count up to 6400 tokens, or 1.15 for the
distilled checkpoint).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from diffusers import Krea2Pipeline
from diffusers.pipelines.krea2 import pipeline_krea2

from lssgen_core.plan import Stage
from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import (
    dynamic_mu,
    linear_sigmas,
    set_stock_timesteps,
)
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.qwen_image import (
    drop_frame_axis,
    encode_prompt_and_negative,
    qwen_image_pixel_codec,
)
from lssgen_diffusers.registry import family_of
from lssgen_diffusers.video_vae import VideoFrameCodec

# The stock __call__'s shift for the distilled (TDM) checkpoint, and its max_image_seq_len
# default for a scheduler config without one.
_DISTILLED_MU = 1.15
_MAX_SEQ_LEN = 6400


class LSSKrea2Pipeline(LSSPipelineMixin, Krea2Pipeline):
    __doc__ = (
        """``Krea2Pipeline`` with latent space scaling (LSSGen).

    Latents: the stock call passes them packed into ``patch_size`` x ``patch_size`` patches,
    ``(B, tokens, 16 * patch_size**2)``; the upsampler runs on the spatial view
    ``(B, 16, h, w)`` of Qwen-Image's VAE, its channels normalised per channel by the VAE's
    ``latents_mean`` / ``latents_std`` as the transformer sees them (as for
    ``LSSQwenImagePipeline``, whose pixel round trip this is too). Schedule: each stage gets the
    stock linear sigmas shifted by its own ``mu`` from its token count (or the distilled
    checkpoint's fixed ``mu``). Guidance (``guidance_scale > 0``) runs both branches in every
    stage, with the negative prompt (``""`` by default) encoded once beside the prompt, masks
    included. Sizes that are no multiple of ``vae_scale_factor * patch_size`` are rounded up,
    with the stock warning, before planning.
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("krea2").defaults
    lss_casts_latents = True  # the stock prepare_latents casts given latents
    lss_encode_outputs = ("prompt_embeds", "prompt_embeds_mask")
    lss_per_image_arguments = (*lss_encode_outputs, *(f"negative_{n}" for n in lss_encode_outputs))

    # --- latent geometry -----------------------------------------------------------------

    @property
    def lss_patch_size(self) -> int:
        return int(self.patch_size)

    @property
    def lss_latent_channels(self) -> int:
        return int(self.transformer.config.in_channels) // self.lss_patch_size**2

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        return (batch, stage.num_tokens, self.lss_latent_channels * self.lss_patch_size**2)

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        return drop_frame_axis(self._unpack_latents(latents, stage.height, stage.width))

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        batch, channels, height, width = latents.shape
        return self._pack_latents(latents, batch, channels, height, width)

    def lss_pixel_codec(self) -> VideoFrameCodec:
        return qwen_image_pixel_codec(self.vae)

    # --- sizes and schedule --------------------------------------------------------------

    def lss_default_size(self) -> tuple[int, int]:
        # The stock __call__'s own defaults (it has no default_sample_size).
        parameters = inspect.signature(self.__call__).parameters
        return parameters["height"].default, parameters["width"].default

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        # As the stock __call__: up to multiples of vae_scale_factor * patch_size.
        multiple = self.vae_scale_factor * self.lss_patch_size
        return -(-height // multiple) * multiple, -(-width // multiple) * multiple

    def lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        # The stock warning, once; the stages are then called at the rounded size.
        multiple = self.vae_scale_factor * self.lss_patch_size
        rounded_height, rounded_width = self.lss_stock_size(height, width)
        pipeline_krea2.logger.warning(
            f"`height` and `width` must be multiples of {multiple}; rounding up from "
            f"{height}x{width} to {rounded_height}x{rounded_width}."
        )

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As the stock __call__: linear sigmas, mu from the stage's token count (or fixed).
        sigmas = linear_sigmas(num_steps)
        if self.config.is_distilled:
            mu = _DISTILLED_MU
        else:
            mu = dynamic_mu(scheduler.config, size.num_tokens, 1.15, _MAX_SEQ_LEN)
        set_stock_timesteps(scheduler, num_steps, sigmas=sigmas, mu=mu)

    # --- prompts -------------------------------------------------------------------------

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        # As the stock __call__, but the negative prompt is "" by default, one per prompt.
        negative = call["negative_prompt"]
        if negative is None and call["negative_prompt_embeds"] is None:
            negative = ""
        if isinstance(negative, str):
            negative = [negative] * self._lss_prompt_batch(call)
        return encode_prompt_and_negative(self, {**call, "negative_prompt": negative})
