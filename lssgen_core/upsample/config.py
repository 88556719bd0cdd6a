"""Configuration of the latent upsampler, with the field names of the released `config.json`.

Keeping the original names lets users' checkpoint folders load unchanged and lets our own
`save_pretrained` output be read by anything that reads the original format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from lssgen_core.validation import check_positive_int

# The class name stored in the released config.json files; written back so our folders match.
CONFIG_CLASS_NAME = "LatentUpSampler"

ACTIVATIONS = ("silu", "swish", "gelu", "relu", "mish")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")

# (is_up_sample, stride) pairs the network can build. An upsampling block must double the size
# exactly (ConvTranspose2d k4 s2 p1); other combinations have no defined meaning in the released
# format, so refusing them beats silently building something no checkpoint was trained for.
SUPPORTED_BLOCKS = ((True, 2), (False, 1))

# The released upsamplers' block widths by latent channels (the original repository's configs).
RELEASED_WIDTHS = {16: (128, 64), 4: (64, 32)}
# Widths we chose for latent spaces the original released no upsampler for, in the same two-block
# layout (one 2x block, one at stride 1):
# - 32 channels (SANA's DC-AE, FLUX.2's VAE): the 16-channel release's widths, so the narrow
#   block is still twice the latent (the default `lssgen train-upsampler` always gave them);
# - 128 channels (a patchified FLUX.2 latent): twice those, so that no block is narrower than the
#   latent it carries (the 16-channel widths would squeeze 128 channels through 64); the
#   original's own ratios (4x and 8x the latent) would be 512 / 1024 wide, about 64 times the
#   16-channel model's parameters, no longer a small upsampler.
CHOSEN_WIDTHS = {32: (128, 64), 128: (256, 128)}
LAYOUT_WIDTHS = {**RELEASED_WIDTHS, **CHOSEN_WIDTHS}
_REQUIRED_KEYS = ("in_channels", "out_channels", "block_out_channels", "is_up_samples", "strides")


def _is_int(value: object) -> bool:
    # bool is an int subclass; a stray `true` in a channel list is a bug, not a 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(value)


def _bool_tuple(value: Sequence[bool]) -> tuple[bool, ...]:
    return tuple(value)


@attrs.frozen
class UpsamplerConfig:
    """Architecture of a `LatentUpsampler` (field names as in the original config.json)."""

    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...] = attrs.field(converter=_int_tuple)
    is_up_samples: tuple[bool, ...] = attrs.field(converter=_bool_tuple)
    strides: tuple[int, ...] = attrs.field(converter=_int_tuple)
    norm_num_groups: int = 32
    act_fn: str = "silu"
    interpolate: str = "bilinear"

    def __attrs_post_init__(self) -> None:
        check_positive_int(self.in_channels, "in_channels")
        check_positive_int(self.out_channels, "out_channels")
        check_positive_int(self.norm_num_groups, "norm_num_groups")
        n_blocks = len(self.block_out_channels)
        if n_blocks == 0:
            raise ValueError("block_out_channels must list at least one block, got ()")
        if len(self.is_up_samples) != n_blocks or len(self.strides) != n_blocks:
            raise ValueError(
                "block_out_channels, is_up_samples and strides must have the same length, got "
                f"{len(self.block_out_channels)}, {len(self.is_up_samples)} and {len(self.strides)}"
            )
        for i, channels in enumerate(self.block_out_channels):
            check_positive_int(channels, "block_out_channels", shown=f"block_out_channels[{i}]")
            if channels % self.norm_num_groups:
                raise ValueError(
                    f"block_out_channels[{i}]={channels} is not divisible by "
                    f"norm_num_groups={self.norm_num_groups} (GroupNorm needs whole groups)"
                )
        for i, (up, stride) in enumerate(zip(self.is_up_samples, self.strides)):
            if not isinstance(up, bool):
                raise ValueError(f"is_up_samples[{i}] must be a bool, got {up!r}")
            if not _is_int(stride):
                raise ValueError(f"strides[{i}] must be an int, got {stride!r}")
            if (up, stride) not in SUPPORTED_BLOCKS:
                raise ValueError(
                    f"block {i} has is_up_samples={up} and strides={stride}; supported "
                    "combinations are (true, 2) for a 2x upsampling block and (false, 1) for a "
                    "same-size block"
                )
        if self.act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn must be one of {ACTIVATIONS}, got {self.act_fn!r}")
        if self.interpolate not in INTERPOLATIONS:
            raise ValueError(
                f"interpolate must be one of {INTERPOLATIONS}, got {self.interpolate!r}"
            )

    @property
    def scale_factor(self) -> int:
        """How much the network enlarges height and width (product of upsampling strides)."""
        factor = 1
        for up, stride in zip(self.is_up_samples, self.strides):
            if up:
                factor *= stride
        return factor

    @classmethod
    def released_16ch(cls) -> UpsamplerConfig:
        """Config of the released FLUX / SD3 / CogView4 upsamplers (16 latent channels)."""
        return cls.released(16)

    @classmethod
    def released_4ch(cls) -> UpsamplerConfig:
        """Config of the released SD / SDXL upsamplers (4 latent channels)."""
        return cls.released(4)

    @classmethod
    def released(cls, latent_channels: int) -> UpsamplerConfig:
        """The released layout for a latent of `latent_channels` channels: one 2x upsampling
        block, then one at stride 1, of the widths `LAYOUT_WIDTHS` gives: the original's released
        checkpoints' for 16 and 4 channels, ours (`CHOSEN_WIDTHS`) for 32 and 128."""
        widths = LAYOUT_WIDTHS.get(latent_channels) if _is_int(latent_channels) else None
        if widths is None:
            raise ValueError(
                f"latent_channels must be one of {sorted(LAYOUT_WIDTHS)} (16 and 4: the released "
                f"upsamplers; 32 and 128: our layouts for them), got {latent_channels!r}"
            )
        return cls(
            in_channels=latent_channels,
            out_channels=latent_channels,
            block_out_channels=widths,
            is_up_samples=(True, False),
            strides=(2, 1),
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as the original config.json stores it (lists, `_class_name`)."""
        return {
            "_class_name": CONFIG_CLASS_NAME,
            "act_fn": self.act_fn,
            "block_out_channels": list(self.block_out_channels),
            "in_channels": self.in_channels,
            "interpolate": self.interpolate,
            "is_up_samples": list(self.is_up_samples),
            "norm_num_groups": self.norm_num_groups,
            "out_channels": self.out_channels,
            "strides": list(self.strides),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UpsamplerConfig:
        """Build from a config.json dict; `_`-prefixed bookkeeping keys are ignored."""
        known = {field.name for field in attrs.fields(cls)}
        fields = {key: value for key, value in data.items() if not str(key).startswith("_")}
        unknown = sorted(str(key) for key in fields if key not in known)
        if unknown:
            raise ValueError(
                f"unknown upsampler config keys {unknown}; allowed keys are {sorted(known)}"
            )
        missing = [key for key in _REQUIRED_KEYS if key not in fields]
        if missing:
            raise ValueError(f"upsampler config is missing required keys {missing}")
        for key in ("block_out_channels", "is_up_samples", "strides"):
            # A string is a Sequence too; tuple("ab") would hide the mistake.
            if not isinstance(fields[key], Sequence) or isinstance(fields[key], str):
                raise ValueError(f"{key} must be a list, got {fields[key]!r}")
        return cls(**fields)
