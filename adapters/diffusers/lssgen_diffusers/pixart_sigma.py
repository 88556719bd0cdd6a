"""LSS for PixArt-Sigma: ``LSSPixArtSigmaPipeline``."""

from __future__ import annotations

from diffusers import PixArtSigmaPipeline

from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.pixart_layout import PIXART_SIGMA_BINS, PixArtLayout
from lssgen_diffusers.registry import family_of


class LSSPixArtSigmaPipeline(LSSPipelineMixin, PixArtLayout, PixArtSigmaPipeline):
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
    lss_aspect_bins = PIXART_SIGMA_BINS
