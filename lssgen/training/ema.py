"""An exponential moving average of a network's weights, kept beside it as one module."""

from __future__ import annotations

import copy

import torch
from torch import nn


class Trainee(nn.Module):
    """The trained network and its EMA copy (the EMA is what lssgen-mini's stages export).

    One module, so a checkpoint stores both under `net.` and `ema.` without knowing about EMA;
    the attribute names are part of the checkpoint format (keys `model/net.*`, `model/ema.*`).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.ema = copy.deepcopy(net).requires_grad_(False).eval()

    @torch.no_grad()
    def update_ema(self, decay: float, step: int) -> None:
        # Short horizon early on (as Diffusers' EMAModel), so short runs export trained weights.
        rate = 1.0 - min(decay, (1 + step) / (10 + step))
        for average, param in zip(self.ema.parameters(), self.net.parameters()):
            average.lerp_(param.detach().to(average.dtype), rate)
        for kept, buffer in zip(self.ema.buffers(), self.net.buffers()):
            kept.copy_(buffer)
