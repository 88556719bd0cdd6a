"""A cost model for LSS plans: predicted denoiser work per stage and speed-up over plain sampling.

A denoiser step costs ``linear * n + quadratic * n**2`` FLOPs for ``n`` image tokens: the linear
term is every per-token layer (projections, MLPs, convolutions), the quadratic one is attention.
Plain generation runs ``num_steps`` steps at the target's ``n``; LSS runs fewer steps at the target
and the rest at a quarter (or less) of the tokens, where attention costs a sixteenth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:  # plan.py prints costs, so this module must not import it at run time
    from lssgen_core.plan import StagePlan


class StepCost(Protocol):
    def flops(self, num_tokens: int) -> float:
        """FLOPs of one denoiser call on ``num_tokens`` image tokens (or latent pixels)."""
        ...


@attrs.frozen
class TransformerCost:
    """A DiT / MMDiT: ``depth`` blocks of attention + MLP at ``width``, plus ``text_tokens``.

    Per block and token: q, k, v, o projections (4 w^2) and the MLP (2 * mlp_ratio * w^2)
    multiply-adds; attention over ``n + text_tokens`` tokens adds 2 (n + text) w per token.
    Text tokens pass through the blocks too (MMDiT's joint attention).
    """

    width: int
    depth: int
    text_tokens: int = 0
    mlp_ratio: float = 4.0

    def flops(self, num_tokens: int) -> float:
        tokens = num_tokens + self.text_tokens
        per_token = (4 + 2 * self.mlp_ratio) * self.width**2
        attention = 2 * tokens * tokens * self.width
        return 2.0 * self.depth * (tokens * per_token + attention)


@attrs.frozen
class AttentionLevel:
    """UNet attention at one resolution level: ``blocks`` transformer blocks at ``width``,
    on the latent downsampled by ``downsample`` per side."""

    width: int
    blocks: int
    downsample: int


@attrs.frozen
class UNetCost:
    """A UNet: convolutions cost ``conv_flops_per_pixel`` per latent pixel (sum over all levels,
    measured or counted once), plus transformer blocks at some levels."""

    conv_flops_per_pixel: float
    attention: Sequence[AttentionLevel] = ()
    text_tokens: int = 77

    def flops(self, num_tokens: int) -> float:
        total = self.conv_flops_per_pixel * num_tokens
        for level in self.attention:
            n = num_tokens / level.downsample**2
            w = level.width
            # Self-attention scores and mixing (quadratic), cross-attention to the text, and per
            # token: q/k/v/o (4 w^2), cross q/o (2 w^2), GEGLU feed-forward (12 w^2).
            per_block = 2 * n * n * w + 2 * n * self.text_tokens * w + 18 * n * w * w
            total += 2.0 * level.blocks * per_block
        return total


@attrs.frozen
class StageCost:
    index: int
    num_tokens: int
    steps: int
    flops: float


@attrs.frozen
class PlanCost:
    """Predicted denoiser FLOPs of a plan and of plain generation with the same ``num_steps``."""

    stages: tuple[StageCost, ...]
    plain_flops: float
    overhead_flops: float = 0.0

    @property
    def lss_flops(self) -> float:
        return sum(stage.flops for stage in self.stages) + self.overhead_flops

    @property
    def speedup(self) -> float:
        return self.plain_flops / self.lss_flops

    def describe(self) -> str:
        lines = [
            f"  stage {s.index}: {s.steps} steps x {s.num_tokens} tokens "
            f"= {s.flops / 1e12:.3f} TFLOP"
            for s in self.stages
        ]
        return "\n".join(
            [
                "predicted denoiser cost:",
                *lines,
                f"  plain: {self.plain_flops / 1e12:.3f} TFLOP; LSS: {self.lss_flops / 1e12:.3f} "
                f"TFLOP; predicted speed-up {self.speedup:.2f}x",
            ]
        )


def plan_cost(plan: StagePlan, model: StepCost, overhead_flops: float = 0.0) -> PlanCost:
    """Predicted cost of ``plan`` for ``model``; ``overhead_flops`` adds e.g. the upsampler's."""
    stages = tuple(
        StageCost(
            index=stage.index,
            num_tokens=stage.num_tokens,
            steps=stage.num_denoising_steps,
            flops=stage.num_denoising_steps * model.flops(stage.num_tokens),
        )
        for stage in plan.stages
    )
    plain = plan.num_steps * model.flops(plan.target.num_tokens)
    return PlanCost(stages=stages, plain_flops=plain, overhead_flops=overhead_flops)
