"""A cost model for LSS plans: predicted denoiser work per stage and speed-up over plain sampling.

A denoiser step costs ``linear * n + quadratic * n**2`` FLOPs for ``n`` image tokens: the linear
term is every per-token layer (projections, MLPs, convolutions), the quadratic one is attention.
Plain generation runs ``num_steps`` steps at the target's ``n``; LSS runs fewer steps at the target
and the rest at a quarter (or less) of the tokens, where attention costs a sixteenth.

Optional terms, all off by default: ``overhead_flops`` (work only LSS does: the upsampler or a
pixel round trip), ``shared_flops`` (work both do once: prompt encoding, the final VAE decode)
and :class:`CalibratedCost`, a fixed cost per denoiser call fitted to measured step times
(:func:`calibrate`) for hardware that is not compute-bound at the small stage's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
class CrossAttentionCost:
    """A DiT whose blocks self-attend over the image / video tokens and cross-attend to the text
    (Wan, LTX-Video): the text tokens do not pass through the blocks, unlike MMDiT's.

    Per block and token: self-attention q, k, v, o (4 w^2), cross-attention q, o (2 w^2), the MLP
    (2 * ffn_dim * w) multiply-adds; self-attention over ``n`` tokens adds 2 n w per token,
    cross-attention over ``text_tokens`` 2 text w; the text's cross k and v cost 2 text w^2 per
    block whatever ``n``. ``patch_features``: input plus output features of the patch embedding
    and the output projection (Wan: 16 channels x 1x2x2 patches, in and out: 128), per token.
    """

    width: int
    depth: int
    ffn_dim: int
    text_tokens: int = 0
    patch_features: int = 0

    def flops(self, num_tokens: int) -> float:
        n, w, text = num_tokens, self.width, self.text_tokens
        per_token = 6 * w * w + 2 * self.ffn_dim * w
        attention = 2 * n * n * w + 2 * n * text * w
        blocks = self.depth * (n * per_token + attention + 2 * text * w * w)
        return 2.0 * (blocks + n * w * self.patch_features)


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
class CalibratedCost:
    """``model`` plus a fixed cost per denoiser call, for hardware that is not compute-bound.

    FLOP counts predict time only where the hardware runs at a steady FLOP rate. Small calls
    (few tokens, small batches, or any call on a fast GPU) also pay a fixed price: kernel
    launches, Python, memory-bound norms and activations. Modelled as ``seconds(n) =
    overhead_seconds + model.flops(n) / flops_per_second``, and expressed to the rest of this
    module as ``overhead_seconds * flops_per_second`` extra FLOP-equivalents per call, so
    :func:`plan_cost` and ``StagePlan.describe`` work unchanged. The overhead favours plans with
    fewer denoiser calls: a calibrated speed-up lies between the FLOP model's and the ratio of
    call counts. Fit both numbers from measured step times with :func:`calibrate`.
    """

    model: StepCost
    flops_per_second: float = attrs.field()
    overhead_seconds: float = 0.0

    @flops_per_second.validator
    def _positive(self, _: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"flops_per_second must be > 0, got {value!r}")

    @property
    def overhead_flops(self) -> float:
        return self.overhead_seconds * self.flops_per_second

    def flops(self, num_tokens: int) -> float:
        return self.model.flops(num_tokens) + self.overhead_flops

    def seconds(self, num_tokens: int) -> float:
        """Predicted time of one denoiser call."""
        return self.flops(num_tokens) / self.flops_per_second


def calibrate(model: StepCost, seconds_per_call: Mapping[int, float]) -> CalibratedCost:
    """Fit :class:`CalibratedCost` to measured times of one denoiser call at >= 2 token counts.

    Least squares on ``seconds = overhead + flops / rate`` (exact for two token counts). The
    overhead is not clamped: a negative one means the hardware got *more* efficient at the small
    size, which the caller should see rather than have hidden.
    """
    if len(seconds_per_call) < 2:
        raise ValueError(
            f"calibrate needs times at >= 2 token counts, got {dict(seconds_per_call)}"
        )
    flops = [model.flops(n) for n in seconds_per_call]
    times = list(seconds_per_call.values())
    count = len(flops)
    mean_f, mean_t = sum(flops) / count, sum(times) / count
    spread = sum((f - mean_f) ** 2 for f in flops)
    if spread <= 0:
        raise ValueError("calibrate needs token counts with different FLOP costs")
    seconds_per_flop = sum((f - mean_f) * (t - mean_t) for f, t in zip(flops, times)) / spread
    if not seconds_per_flop > 0:
        raise ValueError(
            f"measured times {dict(seconds_per_call)} do not grow with the FLOP count; "
            "they are too noisy to calibrate with"
        )
    overhead = mean_t - seconds_per_flop * mean_f
    return CalibratedCost(model, flops_per_second=1 / seconds_per_flop, overhead_seconds=overhead)


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
    # Work plain and LSS generation both do once (prompt encoding, the final VAE decode): it
    # dilutes the speed-up towards 1 without changing which is faster. 0 for a denoiser-only
    # prediction.
    shared_flops: float = 0.0

    @property
    def lss_flops(self) -> float:
        return sum(stage.flops for stage in self.stages) + self.overhead_flops

    @property
    def speedup(self) -> float:
        return (self.plain_flops + self.shared_flops) / (self.lss_flops + self.shared_flops)

    def describe(self) -> str:
        lines = [
            f"  stage {s.index}: {s.steps} steps x {s.num_tokens} tokens "
            f"= {s.flops / 1e12:.3f} TFLOP"
            for s in self.stages
        ]
        if self.shared_flops:
            lines.append(f"  shared by plain and LSS: {self.shared_flops / 1e12:.3f} TFLOP")
        return "\n".join(
            [
                "predicted denoiser cost:",
                *lines,
                f"  plain: {self.plain_flops / 1e12:.3f} TFLOP; LSS: {self.lss_flops / 1e12:.3f} "
                f"TFLOP; predicted speed-up {self.speedup:.2f}x",
            ]
        )


def plan_cost(
    plan: StagePlan, model: StepCost, overhead_flops: float = 0.0, shared_flops: float = 0.0
) -> PlanCost:
    """Predicted cost of ``plan`` for ``model``; ``overhead_flops`` adds what only LSS does (the
    upsampler, a pixel round trip), ``shared_flops`` what both do (e.g. the final VAE decode)."""
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
    return PlanCost(
        stages=stages, plain_flops=plain, overhead_flops=overhead_flops, shared_flops=shared_flops
    )
