"""A video VAE as the ``encode`` / ``decode`` pair of the video pixel round trip, in model space.

Video pipelines normalise the raw VAE latent per channel, each its own way: Wan by the VAE
config's ``latents_mean`` / ``latents_std`` (``(raw - mean) / std``), LTX-Video by the VAE's
``latents_mean`` / ``latents_std`` buffers and ``scaling_factor``
(``(raw - mean) * scaling / std``).
The family module builds the codec with its own statistics; the codec does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import torch
from torch import Tensor


def _channels(values: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(values).view(1, -1, 1, 1, 1).to(like.device, like.dtype)


def _first(output: Any) -> Any:
    return output[0] if isinstance(output, tuple) else output


@attrs.frozen(eq=False)
class VideoVaeCodec:
    """``encode``: video (B, 3, T, H, W) in [-1, 1] -> model-space latent (B, C, F, h, w);
    ``decode``: model-space latent -> video. Both in float32, without a graph."""

    vae: Any  # a Diffusers video VAE (AutoencoderKLWan, AutoencoderKLLTXVideo)
    latents_mean: Sequence[float] | Tensor
    latents_std: Sequence[float] | Tensor
    scaling_factor: float = 1.0
    # LTX VAEs with timestep conditioning decode at a timestep (the pipeline's decode_timestep).
    decode_timestep: float | None = None

    @property
    def _device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def to_model(self, raw: Tensor) -> Tensor:
        mean, std = _channels(self.latents_mean, raw), _channels(self.latents_std, raw)
        return (raw - mean) * self.scaling_factor / std

    def to_raw(self, latents: Tensor) -> Tensor:
        mean, std = _channels(self.latents_mean, latents), _channels(self.latents_std, latents)
        return latents * std / self.scaling_factor + mean

    def encode(self, video: Tensor) -> Tensor:
        with torch.no_grad():
            x = video.clamp(-1.0, 1.0).to(self._device, self._dtype)
            # The mode (mean), not a sample: a round trip must not add the VAE's noise.
            raw = _first(self.vae.encode(x)).latent_dist.mode()
            return self.to_model(raw.float())

    def decode(self, latents: Tensor) -> Tensor:
        with torch.no_grad():
            raw = self.to_raw(latents.float()).to(self._device, self._dtype)
            if self.decode_timestep is None:
                return _first(self.vae.decode(raw)).sample.float()
            timestep = torch.full((len(raw),), self.decode_timestep, device=raw.device)
            return _first(self.vae.decode(raw, timestep.to(raw.dtype))).sample.float()
