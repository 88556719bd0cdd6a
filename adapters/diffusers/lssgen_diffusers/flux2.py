"""LSS for FLUX.2 [dev]: ``LSSFlux2Pipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import Flux2Pipeline

from lssgen_diffusers.family import encode_from_call
from lssgen_diffusers.flux2_layout import FLUX2_DOC, Flux2Layout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSFlux2Pipeline(LSSPipelineMixin, Flux2Layout, Flux2Pipeline):
    __doc__ = (
        """``Flux2Pipeline`` with latent space scaling (LSSGen).
"""
        + FLUX2_DOC
        + """
    The stock ``output_type="latent"`` result is the denoiser's normalised tokens
    ``(B, (h/2) * (w/2), 128)``. Guidance is distilled (an input of the transformer, one call per
    step). The Mistral Small 3 prompt is encoded once, after the stock caption upsampling
    (``caption_upsample_temperature``), which also runs once.
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("flux2").defaults

    def lss_classifier_free_guidance(self, call: Mapping[str, Any]) -> bool:
        # Guidance-distilled: guidance_scale is embedded, never a second (negative) branch.
        return False

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        # As the stock call: caption upsampling first (when asked; it samples text, so it must
        # run once, not once per stage), then the encoder. encode_prompt takes no LoRA scale.
        device = self._execution_device
        prompt = call["prompt"]
        temperature = call.get("caption_upsample_temperature")
        if temperature:
            prompt = self.upsample_prompt(
                prompt, images=call.get("image"), temperature=temperature, device=device
            )
        embeds, _ = encode_from_call(self.encode_prompt, {**call, "prompt": prompt}, device=device)
        return {"prompt": None, "prompt_embeds": embeds, "caption_upsample_temperature": None}
