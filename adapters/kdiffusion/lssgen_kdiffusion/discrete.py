"""Discrete-time VP models (DDPM-trained eps or v UNets) as k-diffusion denoisers (VE sigmas).

The same construction as k-diffusion's ``DiscreteEpsDDPMDenoiser`` and ``DiscreteVDDPMDenoiser``,
without importing k-diffusion: training step ``i`` has ``sigma_i = sqrt((1 - abar_i) / abar_i)``;
the VE latent ``x = x0 + sigma e`` is ``x_vp / sqrt(abar)``, so the model sees
``x / sqrt(sigma^2 + 1)``, and a sigma between training levels maps to a fractional timestep by
interpolating log sigma.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lssgen_kdiffusion._sigma_table import SigmaTableDenoiser
from lssgen_kdiffusion._tensor import append_dims, append_zero

PREDICTION_TYPES = ("epsilon", "v_prediction")

Predictor = Callable[..., torch.Tensor]


def discrete_sigmas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The training levels ``sqrt((1 - abar) / abar)`` in VE, ascending with the timestep."""
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


def sigma_to_timestep(
    sigma: torch.Tensor, log_sigmas: torch.Tensor, quantize: bool = False
) -> torch.Tensor:
    """The (fractional) training timestep of ``sigma``: linear in log sigma between levels.

    Outside the trained range it clamps to the first or last timestep. ``quantize`` rounds to the
    nearest level in log sigma instead.
    """
    log_sigma = sigma.log()
    if quantize:
        return (log_sigma[..., None] - log_sigmas).abs().argmin(dim=-1).view(sigma.shape)
    # The last level at or below log_sigma (k-diffusion's cumsum/argmax, in O(log n)).
    low = torch.searchsorted(log_sigmas, log_sigma.contiguous(), right=True) - 1
    low = low.clamp(0, log_sigmas.shape[0] - 2)
    low_value, high_value = log_sigmas[low], log_sigmas[low + 1]
    weight = ((low_value - log_sigma) / (low_value - high_value)).clamp(0, 1)
    return ((1 - weight) * low + weight * (low + 1)).view(sigma.shape)


def timestep_to_sigma(t: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`sigma_to_timestep` (log-linear between training levels)."""
    t = t.float()
    low, high, weight = t.floor().long(), t.ceil().long(), t.frac()
    return ((1 - weight) * log_sigmas[low] + weight * log_sigmas[high]).exp()


class DiscreteVPDenoiser(SigmaTableDenoiser):
    """``model(x_in, t, **cond) -> eps or v`` of a discrete VP model as a VE denoiser.

    ``alphas_cumprod`` are the model's training ``abar`` (Diffusers' ``scheduler.alphas_cumprod``);
    ``prediction_type`` is "epsilon" or "v_prediction"; ``quantize`` feeds the model integer
    timesteps (the nearest training level) instead of fractional ones.
    """

    log_sigmas: torch.Tensor

    def __init__(
        self,
        model: Predictor,
        alphas_cumprod: torch.Tensor,
        *,
        prediction_type: str = "epsilon",
        quantize: bool = False,
    ) -> None:
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type={prediction_type!r} must be one of {PREDICTION_TYPES}"
            )
        sigmas = discrete_sigmas(torch.as_tensor(alphas_cumprod, dtype=torch.float32))
        self.register_buffer("sigmas", sigmas, persistent=False)
        self.register_buffer("log_sigmas", sigmas.log(), persistent=False)
        self.inner_model = model
        self.prediction_type = prediction_type
        self.quantize = quantize

    @classmethod
    def from_diffusers(
        cls,
        unet: nn.Module,
        scheduler: Any,
        *,
        prediction_type: str | None = None,
        quantize: bool = False,
    ) -> DiscreteVPDenoiser:
        """Wrap a UNet2DConditionModel-like ``unet`` with its Diffusers ``scheduler``'s training
        ``alphas_cumprod`` and ``prediction_type`` (see :func:`unet_prediction`)."""
        return cls(
            unet_prediction(unet),
            scheduler.alphas_cumprod,
            prediction_type=prediction_type or scheduler.config.prediction_type,
            quantize=quantize,
        )

    def get_sigmas(self, n: int | None = None) -> torch.Tensor:
        """``n`` levels evenly spaced in timestep from the last to the first, then 0
        (k-diffusion's ``get_sigmas``); all training levels when ``n`` is None."""
        if n is None:
            return append_zero(self.sigmas.flip(0))
        t_max = len(self.sigmas) - 1
        t = torch.linspace(t_max, 0, n, device=self.sigmas.device)
        return append_zero(self.t_to_sigma(t))

    def sigma_to_t(self, sigma: torch.Tensor, quantize: bool | None = None) -> torch.Tensor:
        quantize = self.quantize if quantize is None else quantize
        return sigma_to_timestep(sigma, self.log_sigmas, quantize)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_to_sigma(t, self.log_sigmas)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
        sigma = append_dims(sigma, x.ndim)
        c_in = 1 / (sigma**2 + 1) ** 0.5
        out = self.inner_model(x * c_in, self.sigma_to_t(sigma.flatten()), **cond)
        if self.prediction_type == "epsilon":
            return x + out * -sigma
        # v = alpha e - sigma_vp x0 with alpha = c_in and sigma_vp = sigma * c_in.
        c_skip = 1 / (sigma**2 + 1)
        c_out = -sigma / (sigma**2 + 1) ** 0.5
        return out * c_out + x * c_skip


def unet_prediction(unet: nn.Module) -> Predictor:
    """``model(x_in, t, **cond)`` for a Diffusers UNet2DConditionModel-like ``unet``.

    ``cond`` holds ``encoder_hidden_states`` (and ``added_cond_kwargs`` for SDXL). The latent is
    cast to the UNet's dtype and the prediction back to the latent's.
    """

    def predict(x_in: torch.Tensor, t: torch.Tensor, **cond: Any) -> torch.Tensor:
        dtype = getattr(unet, "dtype", x_in.dtype)
        return unet(x_in.to(dtype), t, return_dict=False, **cond)[0].to(x_in.dtype)

    return predict
