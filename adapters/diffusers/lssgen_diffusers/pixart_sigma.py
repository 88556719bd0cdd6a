"""LSS for PixArt-Sigma: ``LSSPixArtSigmaPipeline``."""

from __future__ import annotations

from diffusers import PixArtSigmaPipeline
from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
    ASPECT_RATIO_256_BIN,
    ASPECT_RATIO_512_BIN,
    ASPECT_RATIO_1024_BIN,
)
from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN

from lssgen_diffusers.family import binned_by_sample_size
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of

# The aspect-ratio bins PixArtSigmaPipeline.__call__ picks by the transformer's sample_size.
_BINS = {256: ASPECT_RATIO_2048_BIN, 128: ASPECT_RATIO_1024_BIN, 64: ASPECT_RATIO_512_BIN}
_BINS[32] = ASPECT_RATIO_256_BIN


class LSSPixArtSigmaPipeline(LSSPipelineMixin, PixArtSigmaPipeline):
    __doc__ = (
        """``PixArtSigmaPipeline`` with latent space scaling (LSSGen).

    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``,
    ``scaling_mode="resnet"``, ``entry_rule="sigma"``. A VP (epsilon) model with DPM-Solver:
    each later stage enters its schedule at the step whose signal-to-noise ratio matches
    ``start_sigma`` (``scheduler.add_noise`` at that timestep). With ``use_resolution_binning``
    (the stock default) the plan's target is the bin the stock call would generate; the earlier
    stages run unbinned at their planned sizes and the last one resizes the image back to the
    size asked for, as the stock call does. Prompts are encoded once, attention masks included.
    Extra component: ``latent_upsampler`` (a 4-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("pixart-sigma").defaults
    lss_schedule_arguments = ("timesteps", "sigmas")
    lss_encode_outputs = (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    )
    lss_resolution_binning = "use_resolution_binning"

    def lss_binned_size(self, height: int, width: int) -> tuple[int, int]:
        return binned_by_sample_size(self, _BINS, height, width)
