"""LSS for FLUX.1 (dev, schnell, Krea): ``LSSFluxPipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from diffusers import FluxPipeline

from lssgen_core.plan import Stage
from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import (
    POOLED_EMBEDS,
    PROMPT_EMBEDS,
    dynamic_mu,
    encode_from_call,
    lora_scale,
    set_stock_timesteps,
)
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.options import FLUX_DEFAULTS

# The negative prompt's arguments, encoded with the positive ones' parameter names.
NEGATIVE_NAMES = {
    "prompt": "negative_prompt",
    "prompt_2": "negative_prompt_2",
    "prompt_embeds": "negative_prompt_embeds",
    "pooled_prompt_embeds": "negative_pooled_prompt_embeds",
}


class LSSFluxPipeline(LSSPipelineMixin, FluxPipeline):
    __doc__ = (
        """``FluxPipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=True``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"``: at 1024x1024 with 50 steps it runs 25
    steps at 512 and enters the 1024 schedule at sigma 0.7595 for the last 25.
    Latents are unpacked to (B, 16, h, w) for scaling and packed again; every stage gets its own
    image ids and its own shift ``mu`` from the stock ``__call__``.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = FLUX_DEFAULTS
    lss_casts_latents = True  # FluxPipeline.prepare_latents casts given latents
    lss_patch_size = 2  # 2x2 latent packing
    lss_per_image_arguments = (*PROMPT_EMBEDS, *POOLED_EMBEDS)

    @property
    def lss_latent_channels(self) -> int:
        return self.transformer.config.in_channels // 4

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        return (batch, stage.num_tokens, self.lss_latent_channels * 4)

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        return self._unpack_latents(latents, stage.height, stage.width, self.vae_scale_factor)

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        batch, channels, height, width = latents.shape
        return self._pack_latents(latents, batch, channels, height, width)

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        # As FluxPipeline.prepare_latents: 2 * (size // (vae_scale_factor * 2)) latent pixels.
        multiple = self.vae_scale_factor * 2
        return height // multiple * multiple, width // multiple * multiple

    def lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        # The stock input check gives the rounding warning (and checks the rest as stock does).
        encode_from_call(self.check_inputs, call, height=height, width=width)

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As FluxPipeline.__call__: linear sigmas, mu from the stage's packed sequence length.
        config = scheduler.config
        sigmas = (
            None if config.get("use_flow_sigmas") else np.linspace(1.0, 1 / num_steps, num_steps)
        )
        mu = dynamic_mu(config, size.num_tokens, max_shift=1.15)
        set_stock_timesteps(scheduler, num_steps, sigmas=sigmas, mu=mu)

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        common = {"device": self._execution_device, "lora_scale": lora_scale(call)}
        embeds, pooled, _ = encode_from_call(self.encode_prompt, call, **common)
        updates = {
            "prompt": None,
            "prompt_2": None,
            "prompt_embeds": embeds,
            "pooled_prompt_embeds": pooled,
        }
        has_negative = call["negative_prompt"] is not None or (
            call["negative_prompt_embeds"] is not None
            and call["negative_pooled_prompt_embeds"] is not None
        )
        if call["true_cfg_scale"] > 1 and has_negative:
            negative, negative_pooled, _ = encode_from_call(
                self.encode_prompt, call, NEGATIVE_NAMES, **common
            )
            updates.update(
                negative_prompt=None,
                negative_prompt_2=None,
                negative_prompt_embeds=negative,
                negative_pooled_prompt_embeds=negative_pooled,
            )
        return updates
