"""LSS for SANA: ``LSSSanaPipeline``."""

from __future__ import annotations

from diffusers import SanaPipeline
from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
    ASPECT_RATIO_512_BIN,
    ASPECT_RATIO_1024_BIN,
)
from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN
from diffusers.pipelines.sana.pipeline_sana import ASPECT_RATIO_4096_BIN

from lssgen_diffusers.family import binned_by_sample_size
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of

# The aspect-ratio bins SanaPipeline.__call__ picks by the transformer's sample_size.
_BINS = {128: ASPECT_RATIO_4096_BIN, 64: ASPECT_RATIO_2048_BIN, 32: ASPECT_RATIO_1024_BIN}
_BINS[16] = ASPECT_RATIO_512_BIN


class LSSSanaPipeline(LSSPipelineMixin, SanaPipeline):
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
    lss_schedule_arguments = ("timesteps", "sigmas")
    lss_encode_outputs = (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    )
    lss_lora_argument = "attention_kwargs"
    # The stock prepare_latents casts given latents (to float32, whatever the denoiser's dtype).
    lss_casts_latents = True
    lss_resolution_binning = "use_resolution_binning"

    def lss_binned_size(self, height: int, width: int) -> tuple[int, int]:
        return binned_by_sample_size(self, _BINS, height, width)
