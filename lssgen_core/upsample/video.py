"""Latent scalers for video: ``[B, C, F, H, W]`` latents scaled 2x in height and width.

LSS stages keep a video's frames (:mod:`lssgen_core.frames`), so scaling a video latent is
scaling each of its frames: :class:`PerFrameScaler` runs any image scaler (the learned 2-D
``LatentUpsampler``, latent interpolation) over the ``B * F`` frames at once, and passes 4-D
latents straight through, so one scaler serves images and videos. The pixel round trip cannot
work frame by frame (video VAEs code frames together, causally in time), so
:class:`VideoPixelRoundTripScaler` decodes the whole clip, resizes each decoded frame, and
encodes the clip again. A temporal layer in the upsampler is left for when one measures better.
"""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor

from lssgen_core.upsample.scalers import (
    SCALE_FACTOR,
    Decode,
    Encode,
    LatentScaler,
    PixelRoundTripScaler,
    interpolate_2x,
    make_latent_scaler,
)


def frames_as_batch(latent: Tensor) -> Tensor:
    """``[B, C, F, H, W]`` -> ``[B * F, C, H, W]`` (frame-major within each video)."""
    batch, channels, frames, height, width = latent.shape
    return latent.transpose(1, 2).reshape(batch * frames, channels, height, width)


def batch_as_frames(images: Tensor, batch: int) -> Tensor:
    """Inverse of :func:`frames_as_batch`: ``[B * F, C, H, W]`` -> ``[B, C, F, H, W]``."""
    count, channels, height, width = images.shape
    return images.reshape(batch, count // batch, channels, height, width).transpose(1, 2)


def _check_video(tensor: Tensor, name: str) -> None:
    if tensor.ndim != 5:
        raise ValueError(
            f"{name} must be a 5-D tensor (B, C, F, H, W), got shape {tuple(tensor.shape)}"
        )


@attrs.frozen
class PerFrameScaler:
    """``scaler`` applied to every frame of a video latent; image latents pass straight to it."""

    scaler: LatentScaler

    def __call__(self, latent: Tensor) -> Tensor:
        if latent.ndim == 4:
            return self.scaler(latent)
        _check_video(latent, "latent")
        scaled = self.scaler(frames_as_batch(latent))
        return batch_as_frames(scaled, latent.shape[0]).contiguous()


@attrs.frozen
class VideoPixelRoundTripScaler:
    """Decode the clip, resize every frame 2x, encode the clip (the ``pixel`` mode for video).

    ``decode`` maps a model-space ``[B, C, F, h, w]`` latent to a ``[B, 3, T, H, W]`` video and
    ``encode`` the video back; both are the adapter's (its VAE and latent normalisation).
    """

    decode: Decode
    encode: Encode
    mode: str = "bicubic"

    def __call__(self, latent: Tensor) -> Tensor:
        _check_video(latent, "latent")
        video = self.decode(latent)
        _check_video(video, "decode(latent)")
        resized = batch_as_frames(interpolate_2x(frames_as_batch(video), self.mode), len(video))
        out = self.encode(resized.contiguous())
        _check_video(out, "encode(video)")
        batch, channels, frames, height, width = latent.shape
        expected = (batch, channels, frames, SCALE_FACTOR * height, SCALE_FACTOR * width)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"the video pixel round trip gave a latent of shape {tuple(out.shape)}, expected "
                f"{expected}; check that decode and encode belong to the same VAE"
            )
        return out.to(latent.dtype)


def as_video_scaler(scaler: LatentScaler) -> LatentScaler:
    """The video form of an image scaler: ``scaler`` per frame, except a pixel round trip, which
    round-trips the whole clip through its ``decode`` / ``encode`` (video VAEs code frames
    together)."""
    if isinstance(scaler, PixelRoundTripScaler):
        return VideoPixelRoundTripScaler(scaler.decode, scaler.encode, scaler.mode)
    return PerFrameScaler(scaler)


def make_video_latent_scaler(mode: str, **inputs: Any) -> LatentScaler:
    """The scaler for ``mode`` (one of ``SCALING_MODES``) over video latents: the scaler of
    :func:`make_latent_scaler` (same keyword arguments, same refusals: ``"resnet"`` without an
    upsampler, ``"pixel"`` without both callables) in its video form, :func:`as_video_scaler`."""
    return as_video_scaler(make_latent_scaler(mode, **inputs))
