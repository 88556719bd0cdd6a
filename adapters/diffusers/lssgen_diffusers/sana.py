"""LSS for SANA: ``LSSSanaPipeline``."""

from __future__ import annotations

from diffusers import SanaPipeline

from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.pixart_layout import SANA_BINS, PixArtLayout
from lssgen_diffusers.registry import family_of


class LSSSanaPipeline(LSSPipelineMixin, PixArtLayout, SanaPipeline):
    __doc__ = (
        """``SanaPipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 20 steps, guidance 4.5 (the
    stock call's). SANA's DC-AE compresses 32x into 32 channels, so 1024 px is a 32x32 latent
    (1024 tokens with the transformer's patch size 1) and the smallest stage, 512 px (the size of
    SANA's smallest released models), is 16x16.
    Latents are not packed: the upsampler runs on the DC-AE's 32-channel latents as the stock
    call passes them (scaled by the VAE's ``scaling_factor``). The scheduler is SANA's flow
    DPM-Solver (``use_flow_sigmas`` with the static ``flow_shift`` of its config, set by the step
    count alone): each later stage enters its flow schedule at ``start_sigma``, as img2img
    enters a scheduler. With ``use_resolution_binning`` (the stock default) the plan's target is
    the bin the stock call would generate; the earlier stages run unbinned at their planned
    sizes and the last one resizes the image back to the size asked for, as the stock call does.
    Prompts (with the stock ``complex_human_instruction`` prepended to the Gemma-2 prompt) are
    encoded once, attention masks included.
    Extra component: ``latent_upsampler`` (a 32-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("sana").defaults
    lss_aspect_bins = SANA_BINS
    lss_lora_argument = "attention_kwargs"
    # The stock prepare_latents casts given latents (to float32, whatever the denoiser's dtype).
    lss_casts_latents = True
