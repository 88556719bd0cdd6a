"""Single-resolution samplers in k-diffusion's form: ``(model, x, sigmas, extra_args, callback,
disable) -> x``, stepping ``x`` through the levels ``sigmas`` (ending in 0) with a denoiser that
returns ``x0``. Any k-diffusion sampler has this form too and can be used per stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from lssgen_core.denoiser import Denoiser
from lssgen_core.parameterization import VP, Parameterization

Callback = Callable[[dict[str, Any]], None]

# k-diffusion's sampler form, as the stage loop calls it: (model, x, sigmas, extra_args, callback,
# disable) -> x. Samplers take their own options (eta, parameterization, ...) as keywords after it.
StepFunction = Callable[
    [Denoiser, torch.Tensor, torch.Tensor, Mapping[str, Any] | None, Callback | None, bool | None],
    torch.Tensor,
]

# (x, denoised, sigma, sigma_next) -> the next x: what one first-order sampler step does.
Update = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def first_order_sampler(
    make_update: Callable[..., Update], name: str
) -> Callable[..., torch.Tensor]:
    """A sampler of k-diffusion's form that calls the denoiser once per level of ``sigmas`` (but
    the last), gives k-diffusion's callback after each call, and moves ``x`` to the next level
    with ``make_update(**options)``; the sampler's keyword options go to ``make_update``, so an
    unknown one fails before the first denoiser call. Its docstring is ``make_update``'s."""

    @torch.no_grad()
    def sample(
        model: Denoiser,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        extra_args: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        disable: bool | None = None,
        **options: Any,
    ) -> torch.Tensor:
        update = make_update(**options)
        extra_args = extra_args or {}
        batch = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * batch, **extra_args)
            if callback is not None:
                info = {"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i]}
                callback({**info, "denoised": denoised})
            x = update(x, denoised, sigmas[i], sigmas[i + 1])
        return x

    sample.__name__ = sample.__qualname__ = name
    sample.__doc__ = make_update.__doc__
    return sample


def euler_update() -> Update:
    """Euler on the probability-flow ODE, for flow and VE sigmas.

    In both, ``x - x0`` is proportional to sigma (``s (e - x0)`` for flow, ``sigma e`` for VE), so
    ``dx/dsigma = (x - x0) / sigma``: the flow velocity, and k-diffusion's Euler derivative.
    """

    def step(
        x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        derivative = (x - denoised) / sigma
        return x + derivative * (sigma_next - sigma)

    return step


def ddim_update(parameterization: Parameterization = VP) -> Update:
    """Deterministic DDIM in any ``parameterization`` (default VP): re-noise ``x0`` with the noise
    ``x`` implies.

    For flow and VE sigmas this is exactly :func:`sample_euler`; for VP sigmas it is DDIM (eta 0).
    """

    def step(
        x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        a, b = parameterization.coefficients(float(sigma))
        eps = (x - a * denoised) / b
        return parameterization.add_noise(denoised, eps, float(sigma_next))

    return step


sample_euler = first_order_sampler(euler_update, "sample_euler")
sample_ddim = first_order_sampler(ddim_update, "sample_ddim")
