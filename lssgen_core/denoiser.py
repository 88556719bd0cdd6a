"""The ``Denoiser`` protocol: what the LSS sampler calls.

The k-diffusion convention: ``denoiser(x, sigma, **cond) -> x0``, the model's estimate of the clean
latent, with ``x`` the noisy latent at noise level ``sigma`` (a tensor of shape ``(batch,)``).
Which sigmas those are (flow, VP or VE; see :mod:`lssgen_core.parameterization`) is stated by the
caller of the sampler, or by a ``parameterization`` attribute on the denoiser. Wrapping a network
that predicts eps, v or a flow velocity into this form is the adapters' job.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor: ...
