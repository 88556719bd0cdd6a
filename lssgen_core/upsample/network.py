"""The latent upsampler: a small ResNet that doubles a latent's height and width.

Module and parameter names mirror the released checkpoints (`upsampler.conv_in.weight`, ...), so
their state dicts load with strict key matching and no renaming table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lssgen_core.delegation import Delegated
from lssgen_core.upsample.calibration import (
    ScalerCalibration,
    calibration_mode,
    check_calibrations,
)
from lssgen_core.upsample.config import UpsamplerConfig

if TYPE_CHECKING:
    from lssgen_core.upsample.io import DTypeLike

# The released checkpoints were trained with these eps values; other values shift the outputs.
BLOCK_NORM_EPS = 1e-6
OUT_NORM_EPS = 1e-5

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "swish": F.silu,
    "gelu": F.gelu,
    "relu": F.relu,
    "mish": F.mish,
}


def _align_corners(mode: str) -> bool | None:
    # torch rejects align_corners for "nearest"; for the others False is the original's default.
    return None if mode == "nearest" else False


class _ResBlock(nn.Module):
    """norm1 -> conv1 -> act -> norm2 -> conv2 -> act, plus a (projected, resized) skip.

    The activation comes after each conv, not before it (unlike Diffusers' ResnetBlock2D): that is
    the order the released weights were trained with.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        up: bool,
        stride: int,
        config: UpsamplerConfig,
    ) -> None:
        super().__init__()
        groups = config.norm_num_groups
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=BLOCK_NORM_EPS)
        self.conv1: nn.Module
        if up:
            # Kernel 4, stride 2, padding 1 gives exactly 2H x 2W for every H, W >= 1.
            self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=BLOCK_NORM_EPS)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # Only created when channels differ: the checkpoints have no identity-projection tensors.
        self.skip_proj = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )
        self.stride = stride
        self.interpolate = config.interpolate
        self.act = _ACTIVATIONS[config.act_fn]

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.conv1(self.norm1(x)))
        h = self.act(self.conv2(self.norm2(h)))
        skip = x if self.skip_proj is None else self.skip_proj(x)
        if self.stride != 1:
            skip = F.interpolate(
                skip,
                scale_factor=self.stride,
                mode=self.interpolate,
                align_corners=_align_corners(self.interpolate),
            )
        return h + skip


class _UpsamplerNet(nn.Module):
    """The network proper; lives under the `upsampler.` prefix of the checkpoints."""

    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__()
        channels = config.block_out_channels
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        blocks = []
        block_in = channels[0]
        for block_out, up, stride in zip(channels, config.is_up_samples, config.strides):
            blocks.append(_ResBlock(block_in, block_out, up=up, stride=stride, config=config))
            block_in = block_out
        self.up_blocks = nn.ModuleList(blocks)
        self.norm_out = nn.GroupNorm(config.norm_num_groups, block_in, eps=OUT_NORM_EPS)
        self.conv_out = nn.Conv2d(block_in, config.out_channels, 3, padding=1)
        self.act = _ACTIVATIONS[config.act_fn]

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(self.act(self.norm_out(h)))


class LatentUpsampler(nn.Module):
    """Learned 2x latent upsampler, weight-compatible with the released LSSGen checkpoints.

    Works on model-space latents (after the VAE's shift/scale); FLUX latents must be unpacked to
    (B, 16, h, w) first. Freshly built networks have PyTorch's default random initialisation.
    """

    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__()
        if not isinstance(config, UpsamplerConfig):
            raise TypeError(f"config must be an UpsamplerConfig, got {type(config).__name__}")
        self._config = config
        self.upsampler = _UpsamplerNet(config)
        self._calibration: dict[str, ScalerCalibration] = {}

    @property
    def config(self) -> UpsamplerConfig:
        return self._config

    @property
    def calibration(self) -> dict[str, ScalerCalibration]:
        """Measured error per scaling mode on this upsampler's VAE, for ``start_sigma="auto"``
        (stored in config.json; empty for folders without one, e.g. the released checkpoints)."""
        return dict(self._calibration)

    @calibration.setter
    def calibration(self, calibrations: Mapping[str, ScalerCalibration]) -> None:
        self._calibration = check_calibrations(calibrations)

    def calibration_for(self, scaling_mode: str) -> ScalerCalibration | None:
        """The calibration of ``scaling_mode`` (``"latent"`` is bicubic's), or None."""
        return self._calibration.get(calibration_mode(scaling_mode))

    in_channels = Delegated[int]("_config.in_channels")
    latent_channels = Delegated[int](
        "_config.in_channels", "Channels of the latents this upsampler takes (= `in_channels`)."
    )
    out_channels = Delegated[int]("_config.out_channels")
    scale_factor = Delegated[int]("_config.scale_factor")

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_latent_channels(self, channels: int, *, argument: str = "latent_upsampler") -> None:
        """Raise ValueError unless this upsampler fits latents with `channels` channels.

        `argument` is the name the caller's user knows the upsampler by, so the message points
        at the thing to change.
        """
        for field, value in (
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
        ):
            if value != channels:
                raise ValueError(
                    f"{argument} has {field}={value} but the VAE's latent has {channels} "
                    "channels; use an upsampler trained for this VAE"
                )

    def forward(self, latent: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C_out, scale*H, scale*W), returned in `latent`'s dtype."""
        if not isinstance(latent, Tensor) or latent.ndim != 4:
            shape = tuple(latent.shape) if isinstance(latent, Tensor) else type(latent).__name__
            raise ValueError(f"latent must be a 4-D tensor (B, C, H, W), got {shape}")
        if not latent.is_floating_point():
            raise ValueError(f"latent must be a floating-point tensor, got {latent.dtype}")
        if latent.shape[1] != self.in_channels:
            raise ValueError(
                f"latent has {latent.shape[1]} channels but the upsampler has "
                f"in_channels={self.in_channels}; use an upsampler trained for this VAE"
            )
        # The weights' dtype decides the arithmetic (a bf16 checkpoint runs in bf16), while the
        # caller keeps its own dtype so the sampling loop never changes precision behind its back.
        # channels_last: CPU convolutions otherwise spend a quarter of the time reordering memory
        # (measured in benchmarks/test_upsampler_speed.py: 1.3-1.4x faster, same weights).
        x = latent.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.upsampler(x).to(latent.dtype).contiguous()

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        subfolder: str | None = None,
        torch_dtype: DTypeLike | None = None,
        device: str | torch.device | None = None,
    ) -> LatentUpsampler:
        """Load a `config.json` + `diffusion_pytorch_model.safetensors` folder (see `io`)."""
        from lssgen_core.upsample.io import load_upsampler

        return load_upsampler(
            path, subfolder=subfolder, torch_dtype=torch_dtype, device=device, cls=cls
        )

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write the folder layout `from_pretrained` and the original code read (see `io`)."""
        from lssgen_core.upsample.io import save_upsampler

        save_upsampler(self, path)


# The original project's spelling, kept so code written against its README keeps working.
LatentUpSampler = LatentUpsampler
