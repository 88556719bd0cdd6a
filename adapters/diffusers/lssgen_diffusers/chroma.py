"""LSS for Chroma: ``LSSChromaPipeline``."""

from __future__ import annotations

from diffusers import ChromaPipeline

from lssgen_diffusers.flux_layout import FluxLayout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of


class LSSChromaPipeline(LSSPipelineMixin, FluxLayout, ChromaPipeline):
    __doc__ = (
        """``ChromaPipeline`` with latent space scaling (LSSGen).

    Chroma is built on FLUX.1's transformer layout: latents are unpacked to (B, 16, h, w) for
    scaling and packed again, each stage gets its own shift ``mu`` and its own attention mask
    over its token count from the stock ``__call__``; the T5 prompt and its attention mask are
    encoded once. Real classifier-free guidance (``guidance_scale > 1``, as stock).
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("chroma").defaults
    # encode_prompt also returns the text ids, which the stock call derives again.
    lss_encode_outputs = (
        "prompt_embeds",
        None,
        "prompt_attention_mask",
        "negative_prompt_embeds",
        None,
        "negative_prompt_attention_mask",
    )
