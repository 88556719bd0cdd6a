"""LSS for Lumina Image 2.0: ``LSSLumina2Pipeline``."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from diffusers import Lumina2Pipeline

from lssgen_core.plan import Stage, StagePlan
from lssgen_core.schedules import StageSize
from lssgen_diffusers.family import linear_sigmas, set_shifted_timesteps
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC, LSSPipelineMixin
from lssgen_diffusers.registry import family_of
from lssgen_diffusers.scheduler_levels import scheduler_levels


class LSSLumina2Pipeline(LSSPipelineMixin, Lumina2Pipeline):
    __doc__ = (
        """``Lumina2Pipeline`` with latent space scaling (LSSGen).

    Latents are not packed: the stock call takes and returns FLUX.1's 16-channel VAE latents
    ``(B, 16, H/8, W/8)`` (normalised by the VAE's scaling and shift factors), and the upsampler
    runs on them; the transformer patchifies 2x2, so sizes are multiples of 16. Each stage gets
    the stock schedule for its step count: linear sigmas shifted by the scheduler's static
    ``shift``, or by ``mu`` with ``use_dynamic_shifting``, where the stock call takes ``mu``'s
    "sequence length" from ``latents.shape[1]``, the channel count, so it is the same at every
    size. The Gemma-2 prompt, with the ``system_prompt`` (the stock one by default) prepended,
    and the negative prompt are encoded once, attention masks included.
    Guidance (``guidance_scale > 1``) runs the two branches as separate transformer calls.
    As the stock loop checks no interrupt, setting ``pipe._interrupt`` in a callback stops
    nothing.
    ``cfg_normalization`` renormalises every guided step of every stage, as in one stock call.
    ``cfg_trunc_ratio`` stops guidance after that fraction of a stock call's steps; with
    several stages it stops where the noise level falls below the last level a one-stage stock
    call (``num_inference_steps`` at the target size) guides: each stage guides its steps at or
    above that level (the stages' own ``cfg_trunc_ratio`` is restated so), so guidance covers
    the same noise levels as the call LSS replaces, and a later stage entering below them runs
    unguided, as those steps run in that call.
    Defaults: ``min_size=512``, ``shorten_intermediate_steps=False``, 30 steps, guidance 4.0
    (the stock call's).
    Extra component: ``latent_upsampler`` (a 16-channel ``LatentUpsampler``, optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = family_of("lumina2").defaults
    lss_encode_outputs = (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    )
    lss_lora_argument = "attention_kwargs"

    @property
    def _interrupt(self) -> bool:
        """Always False: the stock Lumina2 loop has no interrupt check (and never resets the
        flag), so a callback's ``pipe._interrupt = True`` stops nothing, in one stage or in
        several, and does not carry over to the next call."""
        return False

    @_interrupt.setter
    def _interrupt(self, value: bool) -> None:
        pass

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As the stock __call__: linear sigmas, mu from latents.shape[1] (the channel count).
        channels = self.lss_latent_channels
        set_shifted_timesteps(scheduler, num_steps, linear_sigmas(num_steps), channels)

    def lss_stage_arguments(
        self, call: Mapping[str, Any], plan: StagePlan, stage: Stage
    ) -> dict[str, Any]:
        ratio = call.get("cfg_trunc_ratio")
        if ratio is None:
            return {}
        plain = copy.deepcopy(self.scheduler)
        self.lss_set_timesteps(plain, call["num_inference_steps"], plan.target.size, call)
        plain_levels = scheduler_levels(plain, plan.parameterization)[:-1]
        run_levels = stage.run_sigmas[:-1]
        return {"cfg_trunc_ratio": stage_cfg_trunc_ratio(ratio, plain_levels, run_levels)}


def stage_cfg_trunc_ratio(
    ratio: float, plain_levels: Sequence[float], run_levels: Sequence[float]
) -> float:
    """The ``cfg_trunc_ratio`` under which a stage's stock call, running the steps at
    ``run_levels``, guides exactly its steps at or above the lowest level that a one-stage stock
    call with ``ratio``, running ``plain_levels``, guides (both descending, one level per step).

    The stock call guides step ``i`` of ``n`` unless ``(i + 1) / n > ratio``: the first ``k``
    steps for the ratio ``k / n``. A ``ratio`` under which the one-stage call guides every step
    (``>= 1``) is returned as it is.
    """
    steps = len(plain_levels)
    guided = sum(1 for i in range(steps) if not (i + 1) / steps > ratio)
    if guided == steps:
        return ratio
    lowest = plain_levels[guided - 1] if guided else float("inf")
    return sum(1 for level in run_levels if level >= lowest) / len(run_levels)
