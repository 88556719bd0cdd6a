"""Diffusers' step caches inside LSS calls: each stage's cache starts from scratch, the stages
run the planned denoiser calls, and the result is finite at the target size.

A cache carried over a stage change would hold residuals, attention outputs or Taylor factors of
the smaller stage's token count: wrong at the next size (or a shape error). The reset happens in
``LSSPipelineMixin.maybe_free_model_hooks``, which the stock ``__call__`` runs at its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig
from lss_testkit import cache_enabled, latent_call

TARGET = 128
MIN_SIZE = 64
STEPS = 10


def arguments(**overrides: Any) -> dict[str, Any]:
    return latent_call(TARGET, STEPS, **overrides)


@contextmanager
def steps_by_stage(pipe: Any, denoiser: Any, inner: torch.nn.Module) -> Iterator[dict[str, Any]]:
    """Per stage: the number of denoiser calls, and the step indices (within the stage) at which
    ``inner`` (a module a cache skips when it reuses) really ran."""
    seen: dict[str, Any] = {"calls": {}, "inner": {}}

    def step(*_: Any, **__: Any) -> None:
        index = pipe.lss_stage.index
        seen["calls"][index] = seen["calls"].get(index, 0) + 1

    def ran(*_: Any, **__: Any) -> None:
        index = pipe.lss_stage.index
        seen["inner"].setdefault(index, []).append(seen["calls"][index] - 1)

    handles = [
        denoiser.register_forward_pre_hook(step, with_kwargs=True),
        inner.register_forward_pre_hook(ran, with_kwargs=True),
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


CACHES = {
    # An enormous threshold: every step after a stage's first reuses the cached residual.
    "FirstBlockCache": FirstBlockCacheConfig(threshold=1e9),
    # Computes at steps 0 and 2 of its schedule (warm-up 1, then every 1000th), predicts the rest.
    "TaylorSeer": TaylorSeerCacheConfig(cache_interval=1000, disable_cache_before_step=1),
}
# Where each cache computes, in step indices counted from its last reset.
COMPUTED_AT = {"FirstBlockCache": (0,), "TaylorSeer": (0, 2)}


def inner_module(name: str, transformer: Any) -> torch.nn.Module:
    if name == "FirstBlockCache":
        # Inside the last block: the block's own pre-hooks run even when the cache skips it.
        return transformer.single_transformer_blocks[-1].proj_out
    # TaylorSeer replaces the attention modules' forward when it predicts.
    return transformer.transformer_blocks[0].attn.to_q


@pytest.mark.parametrize("name", CACHES)
def test_each_stage_restarts_the_cache_and_runs_the_planned_calls(lss_pair: Any, name: str) -> None:
    pair = lss_pair("flux")
    target_shape = pair.stock(**arguments()).images.shape
    inner = inner_module(name, pair.denoiser)
    with (
        cache_enabled(pair.denoiser, CACHES[name]),
        steps_by_stage(pair.lss, pair.denoiser, inner) as seen,
    ):
        latents = pair.lss(**arguments(min_size=MIN_SIZE)).images
    plan = pair.lss.lss_plan
    assert len(plan.stages) == 2
    assert seen["calls"] == {s.index: s.num_denoising_steps for s in plan.stages}
    for stage in plan.stages:
        # The second stage computes at its own first steps: its cache was emptied at the change.
        expected = [k for k in COMPUTED_AT[name] if k < stage.num_denoising_steps]
        assert seen["inner"][stage.index] == expected, (name, stage.index, seen)
    assert latents.shape == target_shape
    assert torch.isfinite(latents).all()


@pytest.mark.parametrize("name", CACHES)
def test_without_the_reset_the_second_stage_would_reuse_the_first_stages_cache(
    lss_pair: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checks above have teeth: with the between-stage reset switched off, the second stage
    # continues the first stage's cache, whose tensors have the smaller stage's token count.
    pair = lss_pair("flux")
    monkeypatch.setattr(type(pair.denoiser), "_reset_stateful_cache", lambda self: None)
    with (
        cache_enabled(pair.denoiser, CACHES[name]),
        pytest.raises(RuntimeError, match=r"size of tensor a \(64\) must match .* b \(16\)"),
    ):
        pair.lss(**arguments(min_size=MIN_SIZE))
