"""Single-resolution samplers in k-diffusion's form: ``(model, x, sigmas, extra_args, callback,
disable) -> x``, stepping ``x`` through the levels ``sigmas`` (ending in 0) with a denoiser that
returns ``x0``. Any k-diffusion sampler has this form too and can be used per stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from lssgen_core.denoiser import Denoiser
from lssgen_core.parameterization import VP, Parameterization

Callback = Callable[[dict[str, Any]], None]


class StepFunction(Protocol):
    def __call__(
        self,
        model: Denoiser,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        extra_args: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        disable: bool | None = None,
    ) -> torch.Tensor: ...


@torch.no_grad()
def sample_euler(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    disable: bool | None = None,
) -> torch.Tensor:
    """Euler on the probability-flow ODE, for flow and VE sigmas.

    In both, ``x - x0`` is proportional to sigma (``s (e - x0)`` for flow, ``sigma e`` for VE), so
    ``dx/dsigma = (x - x0) / sigma``: the flow velocity, and k-diffusion's Euler derivative.
    """
    extra_args = extra_args or {}
    batch = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * batch, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        derivative = (x - denoised) / sigmas[i]
        x = x + derivative * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def sample_ddim(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
    disable: bool | None = None,
    parameterization: Parameterization = VP,
) -> torch.Tensor:
    """Deterministic DDIM in any parameterisation: re-noise ``x0`` with the noise ``x`` implies.

    For flow and VE sigmas this is exactly :func:`sample_euler`; for VP sigmas it is DDIM (eta 0).
    """
    extra_args = extra_args or {}
    batch = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigmas[i] * batch, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        a, b = parameterization.coefficients(sigma)
        eps = (x - a * denoised) / b
        x = parameterization.add_noise(denoised, eps, sigma_next)
    return x
