"""Sigma schedules and timestep shifts.

A schedule here is a descending list of ``num_steps + 1`` noise levels that ends with 0 (the
k-diffusion convention: step ``i`` goes from ``sigmas[i]`` to ``sigmas[i + 1]``). Shifts move a
flow schedule's steps towards high noise; the amount depends on the image's token count for
FLUX and CogView4, which is why LSS recomputes the shift for every stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
import numpy as np

from lssgen_core.validation import check_positive_int

# --- timestep shifts on flow sigmas ---------------------------------------------------------------


def shift_static(sigma: float, shift: float) -> float:
    """SD3's resolution shift: ``shift * s / (1 + (shift - 1) * s)``."""
    if shift <= 0:
        raise ValueError(f"shift={shift} must be > 0")
    return shift * sigma / (1 + (shift - 1) * sigma)


def shift_exponential(sigma: float, mu: float, exponent: float = 1.0) -> float:
    """FLUX's shift ``e^mu / (e^mu + (1/s - 1)^exponent)`` (Diffusers' "exponential" type)."""
    if sigma <= 0:
        return 0.0
    return math.exp(mu) / (math.exp(mu) + (1 / sigma - 1) ** exponent)


def shift_linear(sigma: float, mu: float, exponent: float = 1.0) -> float:
    """CogView4's shift ``mu / (mu + (1/s - 1)^exponent)`` (Diffusers' "linear" type)."""
    if sigma <= 0:
        return 0.0
    return mu / (mu + (1 / sigma - 1) ** exponent)


def flux_mu(
    num_tokens: int,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """FLUX's ``mu``: linear in the image token count (Diffusers' ``calculate_shift``)."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return num_tokens * slope + base_shift - slope * base_seq_len


def cogview4_mu(
    num_tokens: int, base_seq_len: int = 256, base_shift: float = 0.25, max_shift: float = 0.75
) -> float:
    """CogView4's ``mu``: ``sqrt(tokens / base_seq_len) * max_shift + base_shift``."""
    return math.sqrt(num_tokens / base_seq_len) * max_shift + base_shift


def resolution_shift(sigma: float, area_ratio: float) -> float:
    """Resolution-aware noise compensation (off by default everywhere).

    An image with ``area_ratio`` times the pixels at the same flow level ``s`` carries roughly
    ``area_ratio`` times the signal-to-noise ratio, because neighbouring pixels average out the
    noise (SD3 paper, section 5.3.2). The level at the larger size that destroys as much signal as
    ``s`` does at the smaller one is SD3's static shift with factor ``sqrt(area_ratio)``. LSS can
    use it to raise ``start_sigma`` for a stage ``area_ratio`` times larger than the one before.
    """
    if area_ratio <= 0:
        raise ValueError(f"area_ratio={area_ratio} must be > 0")
    return shift_static(sigma, math.sqrt(area_ratio))


# --- base schedules -------------------------------------------------------------------------------


def flow_sigmas(num_steps: int) -> list[float]:
    """FLUX's unshifted flow schedule ``linspace(1, 1/N, N)`` followed by the final 0."""
    check_positive_int(num_steps, "num_steps")
    return [*np.linspace(1.0, 1.0 / num_steps, num_steps).tolist(), 0.0]


def karras_sigmas(
    num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0
) -> list[float]:
    """Karras et al. (2022) VE schedule, as k-diffusion's ``get_sigmas_karras``."""
    check_positive_int(num_steps, "num_steps")
    ramp = np.linspace(0, 1, num_steps)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [*((max_inv + ramp * (min_inv - max_inv)) ** rho).tolist(), 0.0]


def exponential_sigmas(num_steps: int, sigma_min: float, sigma_max: float) -> list[float]:
    """Log-linear VE schedule, as k-diffusion's ``get_sigmas_exponential``."""
    check_positive_int(num_steps, "num_steps")
    return [*np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), num_steps)).tolist(), 0.0]


# --- schedules that know a stage's size -----------------------------------------------------------


@attrs.frozen
class StageSize:
    """What a schedule may depend on: the stage's pixel and latent size and its token count
    (over every frame of a video: :mod:`lssgen_core.frames`)."""

    height: int
    width: int
    latent_height: int
    latent_width: int
    num_tokens: int
    latent_frames: int = 1  # the same in every stage of a video plan; 1 for images


class Schedule(Protocol):
    """``schedule(num_steps, size) -> sigmas``: ``num_steps + 1`` descending levels ending in 0."""

    def __call__(self, num_steps: int, size: StageSize, /) -> Sequence[float]: ...


def _shifted(base: list[float], shift: Callable[[float], float]) -> list[float]:
    return [shift(s) if s > 0 else 0.0 for s in base]


@attrs.frozen
class FlowSchedule:
    """A flow schedule with one of the shifts our models use, recomputed for every stage size.

    ``shift_type``: "none", "static" (SD3: ``shift``), "exponential" (FLUX: ``mu`` from the
    token count with :func:`flux_mu`), "linear" (CogView4: ``mu`` from :func:`cogview4_mu`).
    """

    shift_type: str = attrs.field(
        default="none",
        validator=attrs.validators.in_(("none", "static", "exponential", "linear")),
    )
    shift: float = 1.0
    mu: Callable[[int], float] | None = None

    def mu_for(self, size: StageSize) -> float:
        default = cogview4_mu if self.shift_type == "linear" else flux_mu
        return (self.mu or default)(size.num_tokens)

    def __call__(self, num_steps: int, size: StageSize, /) -> list[float]:
        base = flow_sigmas(num_steps)
        if self.shift_type == "static":
            return _shifted(base, lambda s: shift_static(s, self.shift))
        if self.shift_type == "exponential":
            mu = self.mu_for(size)
            return _shifted(base, lambda s: shift_exponential(s, mu))
        if self.shift_type == "linear":
            mu = self.mu_for(size)
            return _shifted(base, lambda s: shift_linear(s, mu))
        return base


def flux_schedule() -> FlowSchedule:
    return FlowSchedule("exponential")


def sd3_schedule(shift: float = 3.0) -> FlowSchedule:
    return FlowSchedule("static", shift=shift)


def cogview4_schedule() -> FlowSchedule:
    return FlowSchedule("linear")
