"""What every denoiser wrapper here shares: a table of its training levels, as k-diffusion's
discrete denoisers keep one."""

from __future__ import annotations

import torch
from torch import nn

from lssgen_core.parameterization import VE


class SigmaTableDenoiser(nn.Module):
    """A denoiser in VE sigmas whose training levels are the buffer ``sigmas``, ascending;
    ``sigma_min`` and ``sigma_max`` are its ends, as k-diffusion's samplers and schedules read
    them."""

    parameterization = VE
    sigmas: torch.Tensor

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]
