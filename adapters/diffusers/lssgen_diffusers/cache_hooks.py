"""Diffusers' denoiser caches (``transformer.enable_cache(config)``) across LSS stages.

Every cache keeps state from one denoising step to the next (residuals, attention outputs,
Taylor factors, text K/V). A stage change changes the token count, so between stages the
pipeline resets every stateful hook, as the stock pipeline does at the end of a call
(``maybe_free_model_hooks``); each later stage then starts its cache from scratch, like a stock
call entering its schedule part-way. What that means per cache in Diffusers 0.42:

- FirstBlockCache, PyramidAttentionBroadcast, TaylorSeer, SeaCache, TextKVCache: work; their
  first step after a reset always computes.
- FasterCache: works unless ``is_guidance_distilled`` and a later stage enters inside an
  attention ``timestep_skip_range``; its first step there would reuse attention it never
  computed (Diffusers fails with ``TypeError: 'NoneType' object is not subscriptable``). Refused.
- MagCache: its ``mag_ratios`` and retention steps are indexed by the step of one schedule of
  ``num_inference_steps``; the stages run other schedules. Refused.
- A cache config this module does not know: refused, rather than trusted.

Refusals happen before any model runs; one stage (``start_sigma=1``) is the stock call and
takes every cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffusers.hooks import (
    FasterCacheConfig,
    FirstBlockCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    SeaCacheConfig,
    TaylorSeerCacheConfig,
    TextKVCacheConfig,
)

from lssgen_core.plan import Stage, StagePlan
from lssgen_diffusers.scheduler_levels import entry_timesteps

# Caches whose state the reset between stages makes correct for the next stage.
RESET_PER_STAGE = (
    FirstBlockCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
    SeaCacheConfig,
    TextKVCacheConfig,
)
_ONE_STAGE = "or use one stage (start_sigma=1), which is the stock call"


def check_cache_across_stages(
    denoiser: Any, plan: StagePlan, configured_scheduler: Callable[[Stage], Any]
) -> None:
    """Raise ValueError if the cache enabled on ``denoiser`` cannot run ``plan``'s stages.

    ``configured_scheduler(stage)`` is a scheduler set up as the stock ``__call__`` sets it up
    for ``stage`` (only asked for when a cache depends on timesteps).
    """
    config = getattr(denoiser, "_cache_config", None)
    if config is None or isinstance(config, RESET_PER_STAGE):
        return
    if isinstance(config, MagCacheConfig):
        raise ValueError(
            "MagCache (MagCacheConfig) indexes its mag_ratios and retention steps by the step of "
            f"one schedule of num_inference_steps={config.num_inference_steps} steps, but the "
            f"{len(plan.stages)} LSS stages run other schedules (the smaller stages their own, "
            "the later ones entered part-way); disable it (pipe.transformer.disable_cache()) "
            + _ONE_STAGE
        )
    if isinstance(config, FasterCacheConfig):
        _check_faster_cache(config, plan, configured_scheduler)
        return
    known = ", ".join(c.__name__ for c in (*RESET_PER_STAGE, FasterCacheConfig))
    raise ValueError(
        f"the denoiser's cache ({type(config).__name__}) is not known to work across LSS stages "
        f"(known: {known}); disable it (pipe.transformer.disable_cache()) " + _ONE_STAGE
    )


def _check_faster_cache(
    config: FasterCacheConfig, plan: StagePlan, configured_scheduler: Callable[[Stage], Any]
) -> None:
    # Without guidance distillation FasterCache computes the first step after a reset (its
    # batch-size test); with it, a first step inside a skip range reads an empty cache.
    if not config.is_guidance_distilled:
        return
    ranges = [
        (name, getattr(config, f"{name}_timestep_skip_range"))
        for name in ("spatial_attention", "temporal_attention")
        if getattr(config, f"{name}_block_skip_range") is not None
    ]
    for stage in plan.stages[1:]:
        timestep = float(entry_timesteps(configured_scheduler(stage), stage.start_index)[0])
        for name, (low, high) in ranges:
            if low < timestep < high:
                raise ValueError(
                    f"FasterCache skips attention for timesteps in {name}_timestep_skip_range="
                    f"({low}, {high}), and LSS stage {stage.index} ({stage.width}x{stage.height}) "
                    f"enters its schedule at timestep {timestep:.0f}, inside it: the cache "
                    "restarts at every stage, so that first step would reuse attention never "
                    f"computed; end the range below {timestep:.0f} " + _ONE_STAGE
                )
