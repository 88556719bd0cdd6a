"""Small exact models for the k-diffusion adapter's tests.

Data is Gaussian, ``x0 ~ N(mean_c, STD^2)`` independently per pixel with a mean per channel, so
the best denoiser has a closed form at every noise level and every latent size: the posterior
mean ``mean + STD^2 / (STD^2 + sigma^2) * (x - mean)`` of a VE latent ``x = x0 + sigma e``.
Each network below predicts what its family predicts (eps, v, flow velocity) from that.
"""

from __future__ import annotations

import math

import torch

MEAN = torch.tensor([0.5, -0.3, 0.2, 0.0])
STD = 0.5
CHANNELS = 4


def sd_alphas_cumprod(steps: int = 1000) -> torch.Tensor:
    """Stable Diffusion's "scaled_linear" training schedule."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def _bcast(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return value.reshape(-1, *([1] * (x.ndim - 1))).to(x)


def posterior_mean(x_ve: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x0 | x0 + sigma e = x_ve] for the Gaussian data (sigma per batch element)."""
    mean = MEAN.to(x_ve).view(1, -1, 1, 1)
    gain = STD**2 / (STD**2 + _bcast(sigma, x_ve) ** 2)
    return mean + gain * (x_ve - mean)


class GaussianEpsUNet:
    """A discrete VP eps network ``unet(x_in, t)``: t is a (fractional) training timestep."""

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        self.log_sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).log()
        self.calls = 0

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        low, high = t.floor().long(), t.ceil().long()
        weight = t - low
        return ((1 - weight) * self.log_sigmas[low] + weight * self.log_sigmas[high]).exp()

    def __call__(self, x_in: torch.Tensor, t: torch.Tensor, **cond: object) -> torch.Tensor:
        self.calls += 1
        sigma = self.sigma(t.float())
        x = x_in * _bcast((sigma**2 + 1) ** 0.5, x_in)
        return (x - posterior_mean(x, sigma)) / _bcast(sigma, x)


class GaussianVUNet:
    """A v network in k-diffusion's VDenoiser time ``t = atan(sigma) * 2 / pi``."""

    def __call__(self, x_in: torch.Tensor, t: torch.Tensor, **cond: object) -> torch.Tensor:
        sigma = (t * math.pi / 2).tan()
        alpha, sigma_vp = 1 / (sigma**2 + 1) ** 0.5, sigma / (sigma**2 + 1) ** 0.5
        x = x_in / _bcast(alpha, x_in)
        x0 = posterior_mean(x, sigma)
        eps = (x - x0) / _bcast(sigma, x)
        return _bcast(alpha, x) * eps - _bcast(sigma_vp, x) * x0


class GaussianVelocity:
    """A flow velocity network ``velocity(x_t, t) = e - x0`` with ``x_t = (1 - t) x0 + t e``."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], float]] = []

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, **cond: object) -> torch.Tensor:
        self.calls.append((tuple(x_t.shape), float(t[0])))
        sigma = t / (1 - t)
        x0 = posterior_mean(x_t / _bcast(1 - t, x_t), sigma)
        return (x_t - x0) / _bcast(t, x_t)


class CompVisLike:
    """What k-diffusion's CompVisDenoiser wraps: ``alphas_cumprod`` and ``apply_model``."""

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        self.alphas_cumprod = alphas_cumprod
        self.unet = GaussianEpsUNet(alphas_cumprod)

    def apply_model(self, x_in: torch.Tensor, t: torch.Tensor, cond: object = None) -> torch.Tensor:
        return self.unet(x_in, t)
