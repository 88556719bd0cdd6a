"""LSS for FLUX.2 [klein]: ``LSSFlux2KleinPipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from diffusers import Flux2KleinPipeline

from lssgen_core.plan import Stage
from lssgen_diffusers.family import encode_from_call
from lssgen_diffusers.flux2_layout import FLUX2_DOC, Flux2Layout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of
from lssgen_diffusers.vae_space import to_model_latents


class LSSFlux2KleinPipeline(LSSPipelineMixin, Flux2Layout, Flux2KleinPipeline):
    __doc__ = (
        """``Flux2KleinPipeline`` with latent space scaling (LSSGen).
"""
        + FLUX2_DOC
        + """
    The stock ``output_type="latent"`` result is the raw VAE latent (de-normalised); between
    stages the stage's latent is taken as the stock call had it just before de-normalising it (no
    float round trip). The Qwen3 prompt is encoded once, and with classifier-free guidance
    (``guidance_scale > 1`` on a base, not distilled, model) the stock empty negative prompt once
    too.
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("flux2-klein").defaults
    # The stock call has no negative prompt argument: it encodes "" itself (see below).
    lss_per_image_arguments = ("prompt_embeds", "negative_prompt_embeds")

    def lss_output_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        return (batch, self.lss_latent_channels, stage.latent_height, stage.latent_width)

    # The running stage's denoised latent as the stock call had it before de-normalising it (see
    # _unpack_latents_with_ids): the stage it belongs to and the normalised patch grid.
    _lss_denoised: tuple[Stage, torch.Tensor] | None = None

    def _unpack_latents_with_ids(
        self,
        x: torch.Tensor,
        x_ids: torch.Tensor,
        height: int | None = None,
        width: int | None = None,
    ) -> torch.Tensor:
        # The stock call turns its final tokens into the patch grid here, just before it
        # de-normalises them for output_type="latent"; the grid is kept for the hand-over, so
        # that no stage's latent makes the float round trip raw -> normalised.
        grid = super()._unpack_latents_with_ids(x, x_ids, height, width)
        stage = self.lss_stage
        self._lss_denoised = None if stage is None else (stage, grid)
        return grid

    def _lss_denoised_grid(self, stage: Stage) -> torch.Tensor | None:
        """The normalised patch grid ``stage``'s stock call ended with, while it is running."""
        held = self._lss_denoised
        if held is None or held[0] is not stage or self.lss_stage is not stage:
            return None
        return held[1]

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        # The stock result is de-normalised and unpatchified; the stage's own normalised latent
        # where it is at hand, else the result normalised again.
        grid = self._lss_denoised_grid(stage)
        if grid is not None:
            return self._unpatchify_latents(grid)
        return to_model_latents(self.vae, latents)

    def lss_latents_from_output(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        grid = self._lss_denoised_grid(stage)
        return grid if grid is not None else super().lss_latents_from_output(latents, stage)

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        # As the stock call: the prompt, then under guidance the empty negative prompt (one per
        # prompt) unless negative_prompt_embeds are given. encode_prompt takes no LoRA scale.
        device = self._execution_device
        embeds, _ = encode_from_call(self.encode_prompt, call, device=device)
        updates: dict[str, Any] = {"prompt": None, "prompt_embeds": embeds}
        if self.lss_classifier_free_guidance(call):
            prompt = call["prompt"]
            negative = [""] * len(prompt) if isinstance(prompt, list) else ""
            negative_embeds, _ = encode_from_call(
                self.encode_prompt,
                call,
                {"prompt_embeds": "negative_prompt_embeds"},
                prompt=negative,
                device=device,
            )
            updates["negative_prompt_embeds"] = negative_embeds
        return updates
