"""Between model-space latents (what the denoiser sees) and the VAE's raw latents and pixels.

Every pipeline here normalises raw VAE latents the same way, driven by the VAE config:
``(raw - latents_mean) * scaling_factor / latents_std`` when the VAE lists per-channel statistics
(Playground v2.5's SDXL VAE), else ``(raw - shift_factor) * scaling_factor`` (shift 0 when absent).

FLUX.2's VAE (``AutoencoderKLFlux2``) has no scaling factor: its pipelines patchify the raw
32-channel latent 2x2 into 128 channels and normalise those with the VAE's batch-norm running
statistics, ``(patches - running_mean) / sqrt(running_var + batch_norm_eps)``. Model space for it
is that normalised latent unpatchified again, ``(B, 32, h, w)``: the spatial view in which the
FLUX.2 LSS pipelines scale latents (see :mod:`lssgen_diffusers.flux2_layout`).
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


def _batch_norm_stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """FLUX.2's patch statistics ``(mean, std)`` as its pipelines compute them; ``None`` for a VAE
    without them."""
    norm = getattr(vae, "bn", None)
    eps = getattr(vae.config, "batch_norm_eps", None)
    if norm is None or eps is None:
        return None
    mean = norm.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
    std = torch.sqrt(norm.running_var.view(1, -1, 1, 1) + eps).to(like.device, like.dtype)
    return mean, std


def _patch(vae: Any) -> int:
    size = getattr(vae.config, "patch_size", (2, 2))
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def to_vae_latents(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Model-space latents -> what ``vae.decode`` takes."""
    bn = _batch_norm_stats(vae, latents)
    if bn is not None:
        # pixel_unshuffle orders the 2x2 patches as the FLUX.2 pipelines' _patchify_latents does
        # (channel c * 4 + row * 2 + column); a test keeps them equal.
        patch = _patch(vae)
        patches = torch.nn.functional.pixel_unshuffle(latents, patch)
        return torch.nn.functional.pixel_shuffle(patches * bn[1] + bn[0], patch)
    scaling = vae.config.scaling_factor
    stats = _channel_stats(vae, latents)
    if stats is not None:
        mean, std = stats
        return latents * std / scaling + mean
    return latents / scaling + (getattr(vae.config, "shift_factor", None) or 0.0)


def to_model_latents(vae: Any, raw: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents -> model space (inverse of :func:`to_vae_latents`)."""
    bn = _batch_norm_stats(vae, raw)
    if bn is not None:
        patch = _patch(vae)
        patches = torch.nn.functional.pixel_unshuffle(raw, patch)
        return torch.nn.functional.pixel_shuffle((patches - bn[0]) / bn[1], patch)
    scaling = vae.config.scaling_factor
    stats = _channel_stats(vae, raw)
    if stats is not None:
        mean, std = stats
        return (raw - mean) * scaling / std
    return (raw - (getattr(vae.config, "shift_factor", None) or 0.0)) * scaling
