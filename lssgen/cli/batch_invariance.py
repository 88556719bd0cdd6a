"""Make a pipeline's CPU arithmetic independent of the batch an image is generated in.

Giving every image its own generator fixes its noise, but not its pixels: CPU kernels pick their
code path, and so their summation order, by shape. With torch's MKL and oneDNN kernels, a matrix
product rounds differently with 1-3 rows than with more (and with a small inner size, for other
row counts too), and convolutions and group norms over one image differently than over several:
by ~1e-7 relative, which over a sampling run moves some PNG pixels by one level. The thresholds
differ per shape, so padding to a "safe" size would be guesswork.

:func:`make_batch_invariant` removes the cause: every linear layer, 2-D convolution, group norm
and layer norm runs once per batch element, on a fresh contiguous copy (MKL's results can also
depend on alignment), so each image meets exactly the kernels it would meet alone. The cost is
batching's speed-up in those layers, which on CPU is small.

Limits, measured on the tiny test pipelines: FLUX, SD3, SDXL and SD come out bit-identical for
every batch size. Element-wise transcendental kernels (exp, SiLU) also take a scalar path for the
tail of a tensor that fills no whole SIMD block; that reaches a whole image only where one image's
part is smaller than a block, as in the tiny CogView4's 16-wide timestep embedding (differences
~3e-6, below one PNG level almost always).

Not installed on CUDA: there a batch's speed-up is the point, and cuBLAS / cuDNN choose kernels
by shape, so different batch sizes can differ in the last bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Forward = Callable[..., Any]
PER_ELEMENT = (nn.Linear, nn.Conv2d, nn.GroupNorm, nn.LayerNorm)


def _fresh(x: torch.Tensor) -> torch.Tensor:
    # A new allocation is aligned the same way whichever batch element (view offset) it came from.
    return torch.empty_like(x, memory_format=torch.contiguous_format).copy_(x)


def _has_leading_batch(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether the layer treats the elements of ``x``'s first dimension independently."""
    if isinstance(module, nn.Conv2d):
        return x.dim() == 4  # (C, H, W) is one unbatched image
    if isinstance(module, nn.LayerNorm):
        return x.dim() > len(module.normalized_shape)
    return x.dim() >= 2  # linear: batch or rows; group norm: (N, C, ...)


def _per_element(module: nn.Module, forward: Forward) -> Forward:
    """``forward`` applied to each slice ``x[i : i + 1]`` of its first argument, concatenated."""

    def run(x: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(x, torch.Tensor) or not _has_leading_batch(module, x):
            return forward(x, *args, **kwargs)
        parts = [forward(_fresh(x[i : i + 1]), *args, **kwargs) for i in range(x.shape[0])]
        return torch.cat(parts)

    return run


class BatchInvariance:
    """The installed per-element forwards; :meth:`remove` restores the stock layers."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules

    def remove(self) -> None:
        for module in self.modules:
            # The wrapper is an instance attribute shadowing the class's forward.
            vars(module).pop("forward", None)
        self.modules = []


def make_batch_invariant(pipe: Any) -> BatchInvariance:
    """Run the shape-sensitive layers of every model in ``pipe`` per batch element."""
    wrapped: list[nn.Module] = []
    for component in pipe.components.values():
        if not isinstance(component, nn.Module):
            continue
        for module in component.modules():
            if isinstance(module, PER_ELEMENT) and "forward" not in vars(module):
                module.forward = _per_element(module, module.forward)  # type: ignore[method-assign]
                wrapped.append(module)
    return BatchInvariance(wrapped)
