"""Between model-space latents (what the denoiser sees) and the VAE's raw latents and pixels.

Every pipeline here normalises raw VAE latents the same way, driven by the VAE config:
``(raw - latents_mean) * scaling_factor / latents_std`` when the VAE lists per-channel statistics
(Playground v2.5's SDXL VAE), else ``(raw - shift_factor) * scaling_factor`` (shift 0 when absent).
The pixel round trip (``scaling_mode="pixel"``) and upsampler training need both directions
(:class:`lssgen_diffusers.vae.VaeCodec`).
"""

from __future__ import annotations

from typing import Any

import torch


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
