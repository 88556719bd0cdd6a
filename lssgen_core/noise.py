"""Gaussian noise drawn from ``torch.Generator`` objects, reproducibly per batch element.

A list of generators gives each batch element its own stream (as Diffusers' ``randn_tensor``), so
an image depends on its generator alone, not on the batch it was made in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def randn(
    shape: Sequence[int],
    generator: Generators = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise of ``shape``; drawn on each generator's device, then moved."""
    shape = tuple(shape)
    if generator is None or isinstance(generator, torch.Generator):
        source = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=source, dtype=dtype).to(device)
    generators = list(generator)
    if len(generators) != shape[0]:
        raise ValueError(
            f"generator is a list of {len(generators)} generators but the batch has {shape[0]} "
            "latents; pass one generator per latent"
        )
    return torch.cat(
        [
            torch.randn((1, *shape[1:]), generator=g, device=g.device, dtype=dtype).to(device)
            for g in generators
        ]
    )
