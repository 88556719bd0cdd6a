"""Flow-matching velocity models as k-diffusion denoisers (VE sigmas).

A rectified-flow latent at time ``t`` is ``x_t = (1 - t) x0 + t e``. Dividing by ``1 - t`` gives
``x0 + sigma e`` with ``sigma = t / (1 - t)``: k-diffusion's VE form. So a k-diffusion sampler can
drive a flow model if the wrapper takes the VE latent ``x``, hands the model
``x / (1 + sigma) = (1 - t) x`` at time ``t = sigma / (1 + sigma)``, and turns the predicted
velocity ``v = e - x0`` (Diffusers' SD3 / FLUX convention) into ``x0 = x_t - t v``.

Pure noise is ``t = 1``, i.e. ``sigma = inf``, which no k-diffusion sampler can start from (the
first latent would be ``noise * inf``). Schedules are therefore clamped at :data:`FLOW_T_MAX`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lssgen_core.schedules import FlowSchedule, StageSize
from lssgen_kdiffusion._sigma_table import SigmaTableDenoiser
from lssgen_kdiffusion._tensor import append_dims, append_zero

# The flow time a schedule's t = 1 is clamped to: sigma_max = FLOW_T_MAX / (1 - FLOW_T_MAX) = 9999.
# Two errors pull in opposite directions. Starting at t_max instead of pure noise leaves out a
# (1 - t_max) share of signal; and float32 VE latents of size ~sigma_max lose ~sigma_max * 6e-8
# when the first step cancels them back to O(1) (Euler's x + d * (sigma_next - sigma)). Both are
# ~1e-4 at 1 - 1e-4. Against Diffusers' FlowMatchEulerDiscreteScheduler on a tiny SD3 transformer
# (8 steps, latents up to ~4) the max deviation is 5.3e-4 here, 4.3e-3 at 1 - 1e-3, 1.5e-3 at
# 1 - 1e-5 (tests/kdiffusion/test_kdiffusion_equivalence.py).
FLOW_T_MAX = 1.0 - 1e-4

Velocity = Callable[..., torch.Tensor]


def flow_t_to_sigma(t: torch.Tensor) -> torch.Tensor:
    """VE sigma ``t / (1 - t)`` of flow time ``t`` (inf at t = 1)."""
    return t / (1 - t)


def sigma_to_flow_t(sigma: torch.Tensor) -> torch.Tensor:
    """Flow time ``sigma / (1 + sigma)``; written so small sigmas keep their relative precision."""
    return sigma / (1 + sigma)


def clamp_flow_t(t: float, t_max: float = FLOW_T_MAX) -> float:
    """``t`` with pure noise (t = 1) moved to ``t_max``, where the VE sigma is finite."""
    if not 0 < t_max < 1:
        raise ValueError(f"t_max={t_max} must be in (0, 1)")
    return min(t, t_max)


def flow_sigmas_to_ve(flow_sigmas: Sequence[float], t_max: float = FLOW_T_MAX) -> list[float]:
    """A flow schedule (times in [0, 1]) as VE sigmas, its t = 1 clamped to ``t_max``."""
    return [t / (1 - t) for t in (clamp_flow_t(float(s), t_max) for s in flow_sigmas)]


class FlowDenoiser(SigmaTableDenoiser):
    """A velocity model ``velocity(x_t, t, **cond) -> e - x0`` as ``denoiser(x, sigma) -> x0``.

    ``shift`` is the model's inference schedule (the core's :class:`FlowSchedule`: none, SD3's
    static shift, FLUX's or CogView4's resolution-dependent one); :meth:`get_sigmas` and the plan
    helpers use it. ``sigmas`` are the ``num_train_timesteps`` training times ``i / N`` in VE,
    ascending like k-diffusion's discrete schedules, the last one clamped to ``t_max``.
    """

    def __init__(
        self,
        velocity: Velocity,
        *,
        shift: FlowSchedule | None = None,
        num_train_timesteps: int = 1000,
        t_max: float = FLOW_T_MAX,
    ) -> None:
        super().__init__()
        clamp_flow_t(0.0, t_max)
        self.inner_model = velocity
        self.shift = shift or FlowSchedule()
        self.t_max = t_max
        times = torch.arange(1, num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
        self.register_buffer(
            "sigmas", flow_t_to_sigma(times.clamp(max=t_max)).float(), persistent=False
        )

    @classmethod
    def from_diffusers(
        cls, transformer: nn.Module, *, shift: FlowSchedule | None = None, **kwargs: Any
    ) -> FlowDenoiser:
        """Wrap an SD3Transformer2DModel-like transformer (see :func:`transformer_velocity`)."""
        return cls(transformer_velocity(transformer), shift=shift, **kwargs)

    def get_sigmas(self, n: int | None = None, size: StageSize | None = None) -> torch.Tensor:
        """The model's own ``n``-step schedule in VE, ending in 0 (k-diffusion's ``get_sigmas``).

        Resolution-dependent shifts (FLUX, CogView4) need the stage ``size``.
        """
        if n is None:
            return append_zero(self.sigmas.flip(0))
        if size is None and self.shift.shift_type in ("exponential", "linear"):
            raise ValueError(
                f"the {self.shift.shift_type} shift depends on the image size: pass size "
                "(a lssgen_core.schedules.StageSize)"
            )
        flow = self.shift(n, size)  # type: ignore[arg-type]  # size is unused by these shifts
        return torch.tensor(flow_sigmas_to_ve(flow, self.t_max), device=self.sigmas.device)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma_to_flow_t(sigma)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        return flow_t_to_sigma(t)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, **cond: Any) -> torch.Tensor:
        t = sigma_to_flow_t(sigma)
        x_t = x / append_dims(1 + sigma, x.ndim)
        velocity = self.inner_model(x_t, t, **cond)
        return (x_t - append_dims(t, x.ndim) * velocity).to(x.dtype)


def transformer_velocity(transformer: nn.Module, timestep_scale: float = 1000.0) -> Velocity:
    """``velocity(x_t, t, **cond)`` for a Diffusers transformer called like SD3Transformer2DModel.

    The transformer gets ``hidden_states=x_t``, ``timestep=t * timestep_scale`` (Diffusers' SD3
    and CogView4 take ``t * 1000``; FLUX's transformer scales by 1000 itself, so use 1) and
    ``**cond`` (``encoder_hidden_states``, ``pooled_projections``, ...). The latent is cast to the
    transformer's dtype and the velocity back to the latent's.
    """

    def velocity(x_t: torch.Tensor, t: torch.Tensor, **cond: Any) -> torch.Tensor:
        dtype = getattr(transformer, "dtype", x_t.dtype)
        out = transformer(
            hidden_states=x_t.to(dtype), timestep=t * timestep_scale, return_dict=False, **cond
        )[0]
        return out.to(x_t.dtype)

    return velocity
