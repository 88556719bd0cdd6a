"""LSS for FLUX.1 (dev, schnell, Krea): ``LSSFluxPipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import FluxPipeline

from lssgen_diffusers.family import POOLED_EMBEDS, PROMPT_EMBEDS, encode_from_call, lora_scale
from lssgen_diffusers.flux_layout import FluxLayout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of

# The negative prompt's arguments, encoded with the positive ones' parameter names.
NEGATIVE_NAMES = {
    "prompt": "negative_prompt",
    "prompt_2": "negative_prompt_2",
    "prompt_embeds": "negative_prompt_embeds",
    "pooled_prompt_embeds": "negative_pooled_prompt_embeds",
}


class LSSFluxPipeline(LSSPipelineMixin, FluxLayout, FluxPipeline):
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

    lss_defaults = family_of("flux").defaults
    lss_encode_outputs = (*PROMPT_EMBEDS, *POOLED_EMBEDS)

    def lss_scheduler_sigmas(self, config: Mapping[str, Any]) -> bool:
        return bool(config.get("use_flow_sigmas"))

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        # Two encoder calls: the negative prompt is encoded only with true CFG.
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
