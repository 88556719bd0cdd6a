"""A video VAE as the ``encode`` / ``decode`` pair of the video pixel round trip, in model space.

Video pipelines normalise the raw VAE latent per channel, each its own way: Wan by the VAE
config's ``latents_mean`` / ``latents_std`` (``(raw - mean) / std``), LTX-Video by the VAE's
``latents_mean`` / ``latents_std`` buffers and ``scaling_factor``
(``(raw - mean) * scaling / std``).
The family module builds the codec with its own statistics; the codec does the rest.
Qwen-Image's VAE (``AutoencoderKLQwenImage``, Wan's layout, which Krea 2 shares) is one too: its
image pipelines code an image as a one-frame video, normalised as Wan's.

:class:`VideoFrameCodec` shows a video VAE as an image codec, so the upsampler tools (``lssgen
train-upsampler``, ``eval-upsampler``) train and measure a per-frame upsampler through it from
image crops or video frames: each image is a one-frame video. Both VAEs here are causal in time
(Wan, LTX-Video), so a one-frame video's latent frame is the video's first latent frame, coded
alone; later latent frames code several frames each (4 on Wan, 8 on LTX), and an upsampler
trained on first frames is applied to them unchanged (a temporal layer is left for when one
measures better).
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


class OnVae:
    """Where a codec runs: the device and dtype of its ``vae``'s weights (every codec here)."""

    vae: Any

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype


@attrs.frozen(eq=False)
class VideoVaeCodec(OnVae):
    """``encode``: video (B, 3, T, H, W) in [-1, 1] -> model-space latent (B, C, F, h, w);
    ``decode``: model-space latent -> video. Both in float32, without a graph."""

    vae: Any  # a Diffusers video VAE (AutoencoderKLWan, AutoencoderKLLTXVideo)
    latents_mean: Sequence[float] | Tensor
    latents_std: Sequence[float] | Tensor
    scaling_factor: float = 1.0
    # LTX VAEs with timestep conditioning decode at a timestep (the pipeline's decode_timestep).
    decode_timestep: float | None = None

    def to_model(self, raw: Tensor) -> Tensor:
        mean, std = _channels(self.latents_mean, raw), _channels(self.latents_std, raw)
        return (raw - mean) * self.scaling_factor / std

    def to_raw(self, latents: Tensor) -> Tensor:
        mean, std = _channels(self.latents_mean, latents), _channels(self.latents_std, latents)
        return latents * std / self.scaling_factor + mean

    def encode(self, video: Tensor) -> Tensor:
        with torch.no_grad():
            x = video.clamp(-1.0, 1.0).to(self.device, self.dtype)
            # The mode (mean), not a sample: a round trip must not add the VAE's noise.
            raw = _first(self.vae.encode(x)).latent_dist.mode()
            return self.to_model(raw.float())

    def decode(self, latents: Tensor) -> Tensor:
        """Keeps the graph (pixel losses train through it); pipelines call it without one."""
        raw = self.to_raw(latents.float()).to(self.device, self.dtype)
        if self.decode_timestep is None:
            return _first(self.vae.decode(raw)).sample.float()
        timestep = torch.full((len(raw),), self.decode_timestep, device=raw.device)
        return _first(self.vae.decode(raw, timestep.to(raw.dtype))).sample.float()


def video_codec_of(vae: Any) -> VideoVaeCodec | None:
    """The model-space codec of a Diffusers video VAE by its class; None for other VAEs."""
    name = type(vae).__name__
    if name == "AutoencoderKLWan":
        from lssgen_diffusers.wan import wan_video_codec

        return wan_video_codec(vae)
    if name == "AutoencoderKLLTXVideo":
        from lssgen_diffusers.ltx import ltx_video_codec

        return ltx_video_codec(vae)
    if name == "AutoencoderKLQwenImage":
        from lssgen_diffusers.qwen_image import qwen_image_video_codec

        return qwen_image_video_codec(vae)
    return None


@attrs.frozen(eq=False)
class VideoFrameCodec(OnVae):
    """A video VAE as an image codec (the interface of ``lssgen_diffusers.vae.VaeCodec``):
    ``encode`` (B, 3, H, W) images in [-1, 1] -> (B, C, h, w) model-space latents, each image a
    one-frame video; ``decode`` the inverse, keeping the graph."""

    video: VideoVaeCodec
    latent_channels: int
    spatial_factor: int

    @classmethod
    def from_vae(cls, vae: Any) -> VideoFrameCodec:
        video = video_codec_of(vae)
        if video is None:
            raise TypeError(f"{type(vae).__name__} is not a video VAE this codec knows")
        probe = video.encode(torch.zeros(1, 3, 1, 64, 64, device=video.device))
        return cls(video, int(probe.shape[1]), 64 // int(probe.shape[-1]))

    @property
    def vae(self) -> Any:
        return self.video.vae

    def encode(self, images: Tensor) -> Tensor:
        return self.video.encode(images[:, :, None])[:, :, 0]

    def decode(self, latents: Tensor) -> Tensor:
        return self.video.decode(latents[:, :, None])[:, :, 0]
