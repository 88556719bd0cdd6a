"""FLUX.2's latent layout and schedule, shared by ``Flux2KleinPipeline`` and ``Flux2Pipeline``.

FLUX.2's VAE gives 32-channel latents at 8x. Its pipelines patchify them 2x2 into 128 channels,
normalise each of the 128 with the VAE's batch-norm running statistics, and pass the denoiser
one token per patch. The three views of one latent at a stage of ``h x w`` latent pixels:

- the stock ``latents`` argument: normalised patches as a grid, ``(B, 128, h/2, w/2)``;
- the denoiser's tokens (and ``Flux2Pipeline``'s ``output_type="latent"``):
  ``(B, (h/2) * (w/2), 128)``;
- ``Flux2KleinPipeline``'s ``output_type="latent"``: the raw VAE latent, de-normalised and
  unpatchified, ``(B, 32, h, w)``.

**The spatial view, where latents are scaled 2x and the upsampler runs, is the normalised latent
unpatchified: ``(B, 32, h, w)``**, i.e. what :func:`lssgen_diffusers.vae_space.to_model_latents`
makes of a raw FLUX.2 latent. Why there and not in the 128-channel patch grid: one latent pixel is
one 8x8 image patch, as in every other family, so a 2x upsampler (and bicubic ``"latent"``
scaling) enlarges a spatial latent instead of having to learn the 2x2 patch arrangement; the
values are normalised (about unit variance), which the re-noising between stages assumes (the
stock noise is a standard normal in exactly this normalisation); and it is the space
``lssgen train-upsampler`` trains in from a FLUX.2 VAE (32 channels, the VAE's own
``latent_channels``), so an upsampler is used where it was trained.

The schedule: linear sigmas (unless the scheduler sets ``use_flow_sigmas``) shifted by
``mu = compute_empirical_mu(image_seq_len, num_steps)``, which depends on the token count *and*
the step count (unlike FLUX.1's ``calculate_shift``); every stage gets the ``mu`` of its own
token count and its own schedule length, as the stock call at that size and step count sets it.
Sizes are rounded down to a multiple of 16 as FLUX.1's (:class:`FluxLayout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from diffusers.pipelines.flux2.pipeline_flux2 import compute_empirical_mu

from lssgen_core.plan import Stage
from lssgen_core.schedules import StageSize
from lssgen_diffusers.flux_layout import FluxLayout

#: What the docstrings of both FLUX.2 pipelines say (each adds its own latent result and prompts).
FLUX2_DOC = """
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 50 steps, guidance 4.0 (the
    stock call's steps and guidance; FLUX.1's ``min_size``). The upsampler runs on the normalised
    32-channel spatial latent, ``(B, 32, h, w)``: FLUX.2's 2x2 patches of the VAE latent,
    normalised with the VAE's batch-norm statistics, unpatchified again (why:
    :mod:`lssgen_diffusers.flux2_layout`); the ``latents`` argument is the normalised 128-channel
    patch grid ``(B, 128, h/2, w/2)``, as stock. Every stage gets its own shift ``mu`` from its
    token count and step count, as the stock call at its size. Reference images (``image``) are
    refused with several stages (they work with one).
    Extra component: ``latent_upsampler`` (a 32-channel ``LatentUpsampler``, optional).
"""

#: Why FLUX.2's reference images are refused with several stages.
REFERENCE_IMAGE_REASON = (
    "the reference images condition every denoising step through their own tokens, placed by "
    "position against the image being generated; a smaller stage would see them misaligned, and "
    "leaving them to the last stage would let the smaller stages compose an image unrelated to "
    "them"
)


class Flux2Layout(FluxLayout):
    """FLUX.2's views of a latent (see the module docstring), its rounding, its schedule and what
    its prompt encoding returns.

    Inherits from :class:`FluxLayout` the rounding to multiples of 16 (with the stock warning),
    the cast of given ``latents``, the 2x2 patch and the spatial channel count
    (``in_channels // 4``: 32)."""

    # Reference-image editing: refused with several stages (REFERENCE_IMAGE_REASON).
    lss_single_stage_arguments: ClassVar[Mapping[str, str]] = {"image": REFERENCE_IMAGE_REASON}
    # Both pipelines take no negative prompt argument and no LoRA scale in encode_prompt.
    lss_prompt_arguments: ClassVar[tuple[str, ...]] = ("prompt",)
    # encode_prompt also returns the text ids, which the stock call derives again.
    lss_encode_outputs: ClassVar[tuple[str | None, ...]] = ("prompt_embeds", None)
    lss_lora_argument: ClassVar[str] = "attention_kwargs"

    def _lss_patch_channels(self) -> int:
        return self.lss_latent_channels * 4

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        # The stock prepare_latents takes the patch grid and flattens it into tokens itself.
        grid = (stage.latent_height // 2, stage.latent_width // 2)
        return (batch, self._lss_patch_channels(), *grid)

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        # Normalised spatial -> normalised patch grid: the stock 2x2 patchify, nothing else.
        return self._lss_pipe._patchify_latents(latents)

    def lss_output_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        # Flux2Pipeline's output_type="latent": the denoiser's tokens, normalised.
        return (batch, stage.num_tokens, self._lss_patch_channels())

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        # Tokens, row-major over the patch grid (the stock _pack_latents), back to the grid, then
        # the stock 2x2 unpatchify: still normalised.
        batch, _, channels = latents.shape
        grid = latents.transpose(1, 2).reshape(
            batch, channels, stage.latent_height // 2, stage.latent_width // 2
        )
        return self._lss_pipe._unpatchify_latents(grid)

    def lss_latents_from_output(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        return self.lss_pack(self.lss_unpack(latents, stage), stage)

    def lss_scheduler_sigmas(self, config: Mapping[str, Any]) -> bool:
        return bool(config.get("use_flow_sigmas"))

    def lss_mu(self, config: Mapping[str, Any], size: StageSize, num_steps: int) -> float:
        # FLUX.2's rule: from the stage's token count and its own step count.
        return float(compute_empirical_mu(image_seq_len=size.num_tokens, num_steps=num_steps))
