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


# (x, denoised, sigma, sigma_next) -> the next x: what one first-order sampler step does.
Update = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def first_order_loop(
    model: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    update: Update,
    extra_args: Mapping[str, Any] | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """One denoiser call per level of ``sigmas`` (but the last), k-diffusion's callback after
    each, and ``update`` to the next level: the loop every first-order sampler here runs."""
    extra_args = extra_args or {}
    batch = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * batch, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        x = update(x, denoised, sigmas[i], sigmas[i + 1])
    return x


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

    def euler_step(
        x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        derivative = (x - denoised) / sigma
        return x + derivative * (sigma_next - sigma)

    return first_order_loop(model, x, sigmas, euler_step, extra_args, callback)


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

    def ddim_step(
        x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        a, b = parameterization.coefficients(float(sigma))
        eps = (x - a * denoised) / b
        return parameterization.add_noise(denoised, eps, float(sigma_next))

    return first_order_loop(model, x, sigmas, ddim_step, extra_args, callback)
