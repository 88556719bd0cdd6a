"""Small tensor helpers shared by the denoiser wrappers."""

from __future__ import annotations

import torch


def append_dims(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """``value`` (a per-batch tensor) with trailing singleton dims up to ``ndim`` dims."""
    missing = ndim - value.ndim
    if missing < 0:
        raise ValueError(f"value has {value.ndim} dims, more than the target {ndim}")
    return value[(...,) + (None,) * missing]


def append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    """``sigmas`` followed by the final level 0, as every k-diffusion schedule ends."""
    return torch.cat([sigmas, sigmas.new_zeros([1])])
