"""Between model-space latents (what the denoiser sees) and the VAE's raw latents and pixels.

Every pipeline here normalises raw VAE latents the same way, driven by the VAE config:
``(raw - latents_mean) * scaling_factor / latents_std`` when the VAE lists per-channel statistics
(Playground v2.5's SDXL VAE), else ``(raw - shift_factor) * scaling_factor`` (shift 0 when absent).
The pixel round trip (``scaling_mode="pixel"``) needs both directions.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import (
    retrieve_latents,
)

from lssgen_core.upsample.scalers import Decode, Encode


def _channel_stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    mean = getattr(vae.config, "latents_mean", None)
    std = getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    shape = (1, len(mean), 1, 1)
    return (
        torch.tensor(mean).view(shape).to(like.device, like.dtype),
        torch.tensor(std).view(shape).to(like.device, like.dtype),
    )


def to_vae_latents(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Model-space latents -> what ``vae.decode`` takes."""
    scaling = vae.config.scaling_factor
    stats = _channel_stats(vae, latents)
    if stats is not None:
        mean, std = stats
        return latents * std / scaling + mean
    return latents / scaling + (getattr(vae.config, "shift_factor", None) or 0.0)


def to_model_latents(vae: Any, raw: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents -> model space (inverse of :func:`to_vae_latents`)."""
    scaling = vae.config.scaling_factor
    stats = _channel_stats(vae, raw)
    if stats is not None:
        mean, std = stats
        return (raw - mean) * scaling / std
    return (raw - (getattr(vae.config, "shift_factor", None) or 0.0)) * scaling


def pixel_codecs(vae: Any) -> tuple[Decode, Encode]:
    """``decode`` (model latents -> image in [-1, 1]) and ``encode`` (image -> model latents).

    Encoding takes the posterior's mode, not a sample: the round trip then draws no randomness,
    so a seed's images do not depend on the scaling mode's use of the generator.
    """

    def decode(latents: torch.Tensor) -> torch.Tensor:
        raw = to_vae_latents(vae, latents).to(vae.dtype)
        return vae.decode(raw, return_dict=False)[0]

    def encode(image: torch.Tensor) -> torch.Tensor:
        posterior = vae.encode(image.clamp(-1, 1).to(vae.dtype))
        raw = retrieve_latents(posterior, sample_mode="argmax")
        return to_model_latents(vae, raw)

    return decode, encode
