"""Noise parameterisations: how a noisy latent is built from clean data, noise and a noise level.

Every parameterisation writes a noisy latent as ``x = a(sigma) * x0 + b(sigma) * noise``, each
with its own meaning of ``sigma``:

- ``FLOW`` (rectified flow, FLUX / SD3 / CogView4): ``x = (1 - s) x0 + s e``, ``s`` in [0, 1].
- ``VP`` (DDPM / DDIM, SD / SDXL): ``x = sqrt(abar) x0 + sqrt(1 - abar) e``; its sigma is
  ``sqrt(1 - abar)`` in [0, 1] so that, like the others, it grows with the noise.
- ``VE`` (k-diffusion, Diffusers' Euler-type schedulers): ``x = x0 + sigma e``, sigma in [0, inf).

Two latents are at "the same point" of the diffusion when their signal-to-noise ratios
``(a / b)**2`` agree; they then differ only by the scale ``a``. That is why every conversion here
goes through the VE sigma ``b / a`` (SNR = 1 / sigma_ve**2). The prediction type of a model (eps, v,
x0, velocity) is a separate concern, kept in the denoiser wrappers of the adapters.
"""

from __future__ import annotations

import abc
import math
import numbers
from typing import TypeVar

import torch

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError

Sigma = TypeVar("Sigma", float, torch.Tensor)


def _reciprocal(value: Sigma) -> Sigma:
    """1 / value, with 1 / 0 = inf for Python floats too (tensors already do that)."""
    if isinstance(value, torch.Tensor):
        return value.reciprocal()
    return math.inf if value == 0 else 1.0 / value


def _sqrt(value: Sigma) -> Sigma:
    if isinstance(value, torch.Tensor):
        return value.sqrt()
    return math.sqrt(value)


class Parameterization(abc.ABC):
    """One way of mixing data and noise. Use the module constants ``FLOW``, ``VP`` and ``VE``."""

    name: str
    max_sigma: float  # the level of pure noise (inf for VE, which never gets there)

    @abc.abstractmethod
    def coefficients(self, sigma: Sigma) -> tuple[Sigma, Sigma]:
        """(a, b) with ``x = a * x0 + b * noise`` at this noise level."""

    @abc.abstractmethod
    def to_ve(self, sigma: Sigma) -> Sigma:
        """The VE sigma (``b / a``) of the same signal-to-noise ratio; inf at pure noise."""

    @abc.abstractmethod
    def from_ve(self, sigma_ve: Sigma) -> Sigma:
        """Inverse of :meth:`to_ve`; written so that ``sigma_ve = inf`` maps to pure noise."""

    def snr(self, sigma: Sigma) -> Sigma:
        """Signal-to-noise ratio ``(a / b)**2``."""
        ve = self.to_ve(sigma)
        return _reciprocal(ve * ve)

    def from_snr(self, snr: Sigma) -> Sigma:
        return self.from_ve(_sqrt(_reciprocal(snr)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
        """The noisy latent ``a * x0 + b * noise``."""
        check_sigma(sigma, self)
        a, b = self.coefficients(sigma)
        if b == 0:
            return x0.clone()
        if a == 0:
            return noise * b
        return x0 * a + noise * b

    def pure_noise(self, noise: torch.Tensor, sigma: float) -> torch.Tensor:
        """The starting latent of a sampling run at level ``sigma`` (the noise term alone)."""
        check_sigma(sigma, self)
        return noise * self.coefficients(sigma)[1]

    def __repr__(self) -> str:
        return self.name.upper()


class FlowParameterization(Parameterization):
    name = "flow"
    max_sigma = 1.0

    def coefficients(self, sigma: Sigma) -> tuple[Sigma, Sigma]:
        return 1 - sigma, sigma

    def to_ve(self, sigma: Sigma) -> Sigma:
        return sigma * _reciprocal(1 - sigma)

    def from_ve(self, sigma_ve: Sigma) -> Sigma:
        # v / (1 + v), written so that v = 0 and v = inf both work and small v does not cancel
        # (``1 - 1 / (1 + v)`` loses digits near the clean end, where calibrated entries live).
        return _reciprocal(1 + _reciprocal(sigma_ve))


class VPParameterization(Parameterization):
    name = "vp"
    max_sigma = 1.0

    def coefficients(self, sigma: Sigma) -> tuple[Sigma, Sigma]:
        return _sqrt(1 - sigma * sigma), sigma

    def to_ve(self, sigma: Sigma) -> Sigma:
        return sigma * _reciprocal(_sqrt(1 - sigma * sigma))

    def from_ve(self, sigma_ve: Sigma) -> Sigma:
        # v / sqrt(1 + v^2), in the form that neither cancels at small v nor divides inf by inf.
        return _reciprocal(_sqrt(1 + _reciprocal(sigma_ve * sigma_ve)))

    @staticmethod
    def sigma_from_alpha_cumprod(alpha_cumprod: Sigma) -> Sigma:
        """VP sigma ``sqrt(1 - abar)`` from a scheduler's ``alphas_cumprod`` entry."""
        return _sqrt(1 - alpha_cumprod)


class VEParameterization(Parameterization):
    name = "ve"
    max_sigma = math.inf

    def coefficients(self, sigma: Sigma) -> tuple[Sigma, Sigma]:
        return sigma * 0 + 1, sigma

    def to_ve(self, sigma: Sigma) -> Sigma:
        return sigma

    def from_ve(self, sigma_ve: Sigma) -> Sigma:
        return sigma_ve


FLOW: Parameterization = FlowParameterization()
VP: Parameterization = VPParameterization()
VE: Parameterization = VEParameterization()
PARAMETERIZATIONS = {p.name: p for p in (FLOW, VP, VE)}


def check_sigma(
    sigma: float, parameterization: Parameterization, *, argument: str = "sigma"
) -> None:
    if not (0.0 <= sigma <= parameterization.max_sigma) or math.isnan(sigma):
        raise LSSArgumentError(
            argument,
            f"{argument}={sigma} is outside the {parameterization.name} range "
            f"[0, {parameterization.max_sigma}]",
        )


def convert_sigma(sigma: Sigma, source: Parameterization, target: Parameterization) -> Sigma:
    """The ``target`` noise level with the same signal-to-noise ratio as ``sigma`` in ``source``."""
    return target.from_ve(source.to_ve(sigma))


def convert_latent(
    x: torch.Tensor, sigma: float, source: Parameterization, target: Parameterization
) -> torch.Tensor:
    """Rescale a noisy latent from one parameterisation to another at the same SNR.

    Both are ``a * (x0 + sigma_ve * e)`` with the same ``sigma_ve``; only ``a`` differs.
    """
    a_source, _ = source.coefficients(sigma)
    a_target, _ = target.coefficients(convert_sigma(sigma, source, target))
    if a_source == 0:
        raise ValueError("cannot convert a latent at pure noise (its signal scale is 0)")
    return x * (a_target / a_source)


def check_start_sigma(start_sigma: float) -> None:
    interval = "(0, 1]"
    # "0.7" < 1 raises an unnamed TypeError deep in the planner; True would pass as 1.
    if isinstance(start_sigma, bool) or not isinstance(start_sigma, numbers.Real):
        raise LSSArgumentTypeError(
            "start_sigma",
            f"start_sigma must be a real number in {interval}, got {start_sigma!r} "
            f"({type(start_sigma).__name__})",
        )
    if not (0 < start_sigma <= 1) or math.isnan(start_sigma):
        raise LSSArgumentError(
            "start_sigma", f"start_sigma={start_sigma} is outside the allowed range {interval}"
        )
