"""Latent scalers: every way of turning a (B, C, H, W) latent into (B, C, 2H, 2W).

The sampling loop only sees the `LatentScaler` callable, so switching between the learned
upsampler, plain interpolation and a VAE pixel round trip is a matter of a mode name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from lssgen_core.errors import LSSArgumentError
from lssgen_core.upsample.network import LatentUpsampler

SCALE_FACTOR = 2
INTERPOLATION_MODES = ("bicubic", "bilinear", "nearest")
# "latent" is the original project's name for bicubic interpolation of the latent.
SCALING_MODES = ("resnet", "latent", "bicubic", "bilinear", "nearest", "pixel")

# Decoder/encoder supplied by an adapter; the core never knows which VAE is behind them.
Decode = Callable[[Tensor], Tensor]
Encode = Callable[[Tensor], Tensor]


@runtime_checkable
class LatentScaler(Protocol):
    """Maps a (B, C, H, W) latent to (B, C, 2H, 2W) in the same dtype."""

    def __call__(self, latent: Tensor) -> Tensor: ...


def _check_4d(tensor: Tensor, name: str) -> None:
    if tensor.ndim != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor (B, C, H, W), got shape {tuple(tensor.shape)}"
        )


def interpolate_2x(x: Tensor, mode: str) -> Tensor:
    """2x resize of a 4-D tensor, returned in its own dtype."""
    # Half-precision bicubic is missing on CPU in some torch versions, and float32 is exact
    # enough for the cast back, so halves are upcast for the resize only.
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    out = F.interpolate(
        work,
        scale_factor=SCALE_FACTOR,
        mode=mode,
        align_corners=None if mode == "nearest" else False,
    )
    return out.to(x.dtype)


def _check_interpolation(mode: str) -> None:
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")


@attrs.frozen
class InterpolationScaler:
    """Resize the latent itself with `nearest`, `bilinear` or `bicubic` interpolation."""

    mode: str = attrs.field(default="bicubic")

    def __attrs_post_init__(self) -> None:
        _check_interpolation(self.mode)

    def __call__(self, latent: Tensor) -> Tensor:
        _check_4d(latent, "latent")
        return interpolate_2x(latent, self.mode)


@attrs.frozen
class PixelRoundTripScaler:
    """Decode to pixels, resize the image 2x, encode back (the original's `pixel` mode).

    `decode` maps a model-space latent to an image tensor and `encode` an image back to a
    model-space latent; clamping the image to the VAE's range is the adapter's job in `encode`.
    """

    decode: Decode
    encode: Encode
    mode: str = attrs.field(default="bicubic")

    def __attrs_post_init__(self) -> None:
        _check_interpolation(self.mode)

    def __call__(self, latent: Tensor) -> Tensor:
        _check_4d(latent, "latent")
        image = self.decode(latent)
        _check_4d(image, "decode(latent)")
        out = self.encode(interpolate_2x(image, self.mode))
        _check_4d(out, "encode(image)")
        batch, channels, height, width = latent.shape
        expected = (batch, channels, SCALE_FACTOR * height, SCALE_FACTOR * width)
        if tuple(out.shape) != expected:
            raise ValueError(
                f"pixel round trip gave a latent of shape {tuple(out.shape)}, expected "
                f"{expected}; check that decode and encode belong to the same VAE"
            )
        return out.to(latent.dtype)


def check_upsampler_given(mode: str, upsampler: LatentUpsampler | None) -> None:
    """Scaling mode "resnet" runs the upsampler: refuse it without one."""
    if mode == "resnet" and upsampler is None:
        raise LSSArgumentError(
            "latent_upsampler",
            "scaling_mode='resnet' (the default) uses a latent_upsampler, which is None; pass a "
            "LatentUpsampler (e.g. LatentUpsampler.from_pretrained(folder); the pipelines take "
            "it as latent_upsampler= in from_pretrained or the constructor), or choose another "
            f"scaling mode from {SCALING_MODES}",
        )


def make_latent_scaler(
    mode: str,
    *,
    upsampler: LatentUpsampler | None = None,
    decode: Decode | None = None,
    encode: Encode | None = None,
) -> LatentScaler:
    """The scaler for `mode`, one of `SCALING_MODES`.

    "resnet" needs `upsampler` (what pipelines call `latent_upsampler`); "pixel" needs `decode`
    and `encode`; the interpolation modes need nothing. Arguments a mode does not use are ignored.
    """
    check_upsampler_given(mode, upsampler)
    if mode == "resnet":
        assert upsampler is not None
        if upsampler.scale_factor != SCALE_FACTOR:
            raise ValueError(
                f"latent_upsampler has scale_factor={upsampler.scale_factor}; the scaling modes "
                f"need {SCALE_FACTOR}"
            )
        if upsampler.out_channels != upsampler.in_channels:
            raise ValueError(
                f"latent_upsampler maps {upsampler.in_channels} to {upsampler.out_channels} "
                "channels; a latent scaler must keep the channel count"
            )
        return upsampler
    if mode == "latent":
        return InterpolationScaler("bicubic")
    if mode in INTERPOLATION_MODES:
        return InterpolationScaler(mode)
    if mode == "pixel":
        absent = [name for name, fn in (("decode", decode), ("encode", encode)) if fn is None]
        if absent or decode is None or encode is None:
            raise ValueError(
                f"scaling mode 'pixel' needs both decode and encode callables; missing: {absent}"
            )
        return PixelRoundTripScaler(decode, encode)
    raise ValueError(f"scaling mode must be one of {SCALING_MODES}, got {mode!r}")
