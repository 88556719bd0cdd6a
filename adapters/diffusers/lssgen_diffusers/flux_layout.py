"""FLUX.1's latent layout and schedule, shared by the families built on its transformer.

FLUX.1 and Chroma pass latents packed 2x2 into tokens, ``(B, (h/2) * (w/2), 4 * C)``, round sizes
down to a multiple of ``2 * vae_scale_factor`` with a warning, and schedule linear sigmas shifted
by ``mu`` from the stage's token count (FLUX's ``calculate_shift``). :class:`FluxLayout` supplies
those parts of the :class:`~lssgen_diffusers.family.LSSFamily` contract; a family on it is
``class LSSXPipeline(LSSPipelineMixin, FluxLayout, XPipeline)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lssgen_core.plan import Stage
from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import (
    LSSFamily,
    dynamic_mu,
    encode_from_call,
    linear_sigmas,
    set_stock_timesteps,
)


class FluxLayout(LSSFamily):
    """2x2-packed latents (the spatial view is the VAE's ``(B, C, h, w)``), FLUX's rounding and
    its resolution-shifted linear schedule."""

    lss_casts_latents = True  # the stock prepare_latents casts given latents
    lss_patch_size = 2  # 2x2 latent packing

    @property
    def lss_latent_channels(self) -> int:
        return int(self._lss_pipe.transformer.config.in_channels) // 4

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        return (batch, stage.num_tokens, self.lss_latent_channels * 4)

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        pipe = self._lss_pipe
        return pipe._unpack_latents(latents, stage.height, stage.width, pipe.vae_scale_factor)

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        batch, channels, height, width = latents.shape
        return self._lss_pipe._pack_latents(latents, batch, channels, height, width)

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        # As the stock prepare_latents: 2 * (size // (vae_scale_factor * 2)) latent pixels.
        multiple = self._lss_pipe.vae_scale_factor * 2
        return height // multiple * multiple, width // multiple * multiple

    def lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        # The stock input check gives the rounding warning (and checks the rest as stock does).
        encode_from_call(self._lss_pipe.check_inputs, call, height=height, width=width)

    def lss_scheduler_sigmas(self, config: Mapping[str, Any]) -> bool:
        """Whether the stock call leaves the sigmas to the scheduler (FLUX: a scheduler with
        ``use_flow_sigmas``) instead of passing linear ones."""
        return False

    def lss_mu(self, config: Mapping[str, Any], size: StageSize, num_steps: int) -> float:
        """The stock call's shift for a stage: FLUX.1's ``calculate_shift`` of its packed
        sequence length (FLUX.2 overrides it with its own rule)."""
        return dynamic_mu(config, size.num_tokens, max_shift=1.15)

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As the stock __call__: linear sigmas (unless the scheduler sets them), the stage's mu.
        config = scheduler.config
        sigmas = None if self.lss_scheduler_sigmas(config) else linear_sigmas(num_steps)
        mu = self.lss_mu(config, size, num_steps)
        set_stock_timesteps(scheduler, num_steps, sigmas=sigmas, mu=mu)
