"""LSS for FLUX.2 [dev]: ``LSSFlux2Pipeline``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import Flux2Pipeline

from lssgen_diffusers.family import encode_from_call
from lssgen_diffusers.flux2_layout import Flux2Layout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSFlux2Pipeline(LSSPipelineMixin, Flux2Layout, Flux2Pipeline):
    __doc__ = (
        """``Flux2Pipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 50 steps, guidance 4.0 (the
    stock call's steps and guidance; FLUX.1's ``min_size``). The upsampler runs on the normalised
    32-channel spatial latent, ``(B, 32, h, w)``: FLUX.2's 2x2 patches of the VAE latent,
    normalised with the VAE's batch-norm statistics, unpatchified again (why:
    :mod:`lssgen_diffusers.flux2_layout`). The stock ``output_type="latent"`` result is the
    denoiser's normalised tokens ``(B, (h/2) * (w/2), 128)`` and the ``latents`` argument the
    normalised patch grid ``(B, 128, h/2, w/2)``, as stock. Every stage gets its own shift
    ``mu`` from its token count and step count, as the stock call at its size. Guidance is
    distilled (an input of the transformer, one call per step). The Mistral Small 3 prompt is
    encoded once, after the stock caption upsampling (``caption_upsample_temperature``), which
    also runs once. Reference images (``image``) are refused with several stages (they work with
    one).
    Extra component: ``latent_upsampler`` (a 32-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("flux2").defaults
    lss_prompt_arguments = ("prompt",)
    # encode_prompt also returns the text ids, which the stock call derives again.
    lss_encode_outputs = ("prompt_embeds", None)
    lss_lora_argument = "attention_kwargs"

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
