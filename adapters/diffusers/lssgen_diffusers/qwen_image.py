"""LSS for Qwen-Image: ``LSSQwenImagePipeline``; and Qwen-Image's VAE in model space, which Krea 2
shares (:mod:`lssgen_diffusers.krea2`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from diffusers import QwenImagePipeline

from lssgen_core.plan import Stage
from lssgen_diffusers.family import encode_from_call
from lssgen_diffusers.flux_layout import FluxLayout
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of
from lssgen_diffusers.video_vae import VideoFrameCodec, VideoVaeCodec

# The negative prompt's arguments, encoded with the positive ones' parameter names.
NEGATIVE_NAMES = {
    "prompt": "negative_prompt",
    "prompt_embeds": "negative_prompt_embeds",
    "prompt_embeds_mask": "negative_prompt_embeds_mask",
}


def qwen_image_video_codec(vae: Any) -> VideoVaeCodec:
    """Qwen-Image's VAE (``AutoencoderKLQwenImage``) in model space, as the stock ``__call__``
    decodes: ``raw = latents * latents_std + latents_mean`` per channel, on 5-D
    ``(B, C, F, h, w)`` latents (an image is one frame)."""
    return VideoVaeCodec(vae, vae.config.latents_mean, vae.config.latents_std)


def qwen_image_pixel_codec(vae: Any) -> VideoFrameCodec:
    """The pixel round trip of the Qwen-Image VAE families: images as one-frame videos, latents
    in the spatial view ``(B, 16, h, w)`` normalised as the transformer sees them."""
    factor = 2 ** len(vae.temperal_downsample)  # the stock pipelines' vae_scale_factor
    return VideoFrameCodec(qwen_image_video_codec(vae), int(vae.config.z_dim), factor)


def drop_frame_axis(latents: torch.Tensor) -> torch.Tensor:
    """The stock ``_unpack_latents`` result ``(B, C, 1, h, w)`` as the spatial view."""
    return latents[:, :, 0]


def encode_prompt_and_negative(pipe: Any, call: Mapping[str, Any]) -> dict[str, Any]:
    """The Qwen-Image VAE families' prompt encoding, once per call: the prompt, and the negative
    prompt only when the call is guided (two encoder calls, as the stock ``__call__``)."""
    device = pipe._execution_device
    embeds, mask = encode_from_call(pipe.encode_prompt, call, device=device)
    updates = {"prompt": None, "prompt_embeds": embeds, "prompt_embeds_mask": mask}
    if pipe.lss_classifier_free_guidance(call):
        negative, negative_mask = encode_from_call(
            pipe.encode_prompt, call, NEGATIVE_NAMES, device=device
        )
        updates.update(
            negative_prompt=None,
            negative_prompt_embeds=negative,
            negative_prompt_embeds_mask=negative_mask,
        )
    return updates


class LSSQwenImagePipeline(LSSPipelineMixin, FluxLayout, QwenImagePipeline):
    __doc__ = (
        """``QwenImagePipeline`` with latent space scaling (LSSGen).

    Latents: the stock call passes them packed 2x2 into tokens, ``(B, (h/2) * (w/2), 64)``; the
    upsampler runs on the spatial view ``(B, 16, h, w)``, the VAE's 16 channels normalised per
    channel by its ``latents_mean`` / ``latents_std`` (``(raw - mean) / std``), as the
    transformer sees them (the VAE's own latents are 5-D, one frame, which the view drops).
    ``scaling_mode="pixel"`` decodes and encodes through that VAE with the same normalisation.
    Schedule: each stage gets the stock linear sigmas shifted by its own ``mu`` from its token
    count (the scheduler's exponential time shift). Guidance is true CFG, as stock: with
    ``true_cfg_scale > 1`` and a negative prompt (or its embeddings) every stage runs both
    branches; ``guidance_scale`` is only for guidance-distilled transformers. The prompt (and
    the negative one, when guided) is encoded once with its ``prompt_embeds_mask``.
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, ``start_sigma=0.75``.
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("qwen-image").defaults
    lss_encode_outputs = ("prompt_embeds", "prompt_embeds_mask")
    lss_per_image_arguments = (*lss_encode_outputs, *(f"negative_{n}" for n in lss_encode_outputs))

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        return drop_frame_axis(super().lss_unpack(latents, stage))

    @functools.wraps(QwenImagePipeline.check_inputs)  # its signature: the mixin binds to it
    def check_inputs(self, *args: Any, **kwargs: Any) -> Any:
        """The stock check; in a stage without its warning that ``prompt_embeds`` came without
        ``prompt_embeds_mask``: the one encoding's mask is ``None`` where the stock
        ``encode_prompt`` dropped it (every token valid), and the call's own check ran first."""
        if self._lss_run is not None:
            for embeds, mask in (
                ("prompt_embeds", "prompt_embeds_mask"),
                ("negative_prompt_embeds", "negative_prompt_embeds_mask"),
            ):
                value = kwargs.get(embeds)
                if value is not None and kwargs.get(mask) is None:
                    kwargs[mask] = value.new_ones(value.shape[:2], dtype=torch.long)
        return QwenImagePipeline.check_inputs(self, *args, **kwargs)

    def lss_pixel_codec(self) -> VideoFrameCodec:
        return qwen_image_pixel_codec(self.vae)

    def lss_classifier_free_guidance(self, call: Mapping[str, Any]) -> bool:
        # As the stock __call__'s do_true_cfg.
        negative = call["negative_prompt"] is not None or call["negative_prompt_embeds"] is not None
        return bool(call["true_cfg_scale"] > 1 and negative)

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        return encode_prompt_and_negative(self, call)
