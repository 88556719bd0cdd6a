"""LSS with Diffusers' step caches: plain, cache alone, LSS alone and LSS + cache, in one run.

Per cache (FirstBlockCache and TaylorSeer at Diffusers' defaults), each round generates with all
four variants back to back on the flux benchmark model (``models.py``), the order rotating every
round, and the summary takes the median over rounds of each round's ratios, as
``test_paired_rounds`` does: neighbouring runs share the machine's momentary speed. The cache is
enabled on the denoiser both pipelines share and disabled after each cached run (outside the
timing). Random weights make a cache's hit rate unlike a trained model's (FirstBlockCache skips
when the first block's residual changes by less than its threshold), so these figures measure the
composition's overhead and the per-stage restart, not the quality/speed trade of a real model.

    pytest benchmarks/test_cache_speed.py --benchmark-only --benchmark-enable --lss-paired-rounds 3

Timed runs write ``results/cache-<profile>.json`` (in ``--lss-results``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

from lssgen_core.atomic import write_json_atomic

if TYPE_CHECKING:
    from conftest import Collector

CACHES: dict[str, Callable[[], Any]] = {
    "FirstBlockCache": FirstBlockCacheConfig,
    "TaylorSeer": TaylorSeerCacheConfig,
}
VARIANTS = ("plain", "cache", "lss", "lss+cache")
# The ratios reported: (numerator, denominator) wall times of the same round.
RATIOS = {
    "plain / lss": ("plain", "lss"),
    "plain / cache": ("plain", "cache"),
    "plain / lss+cache": ("plain", "lss+cache"),
    "cache / lss+cache": ("cache", "lss+cache"),
    "lss / lss+cache": ("lss", "lss+cache"),
}


def _generate(
    runner: Any, variant: str, config: Any, times: dict[str, list[float]]
) -> torch.Tensor:
    bench = runner.bench
    generator = torch.Generator(runner.device).manual_seed(0)
    cached = variant.endswith("cache")
    if cached:
        bench.denoiser.enable_cache(config)
    try:
        start = time.perf_counter()
        if variant.startswith("lss"):
            result = bench.pipeline(**bench.call, **bench.lss, generator=generator)
        else:
            result = bench.stock(**bench.call, generator=generator)
        runner.recorder.now()  # synchronises on CUDA
        seconds = time.perf_counter() - start
    finally:
        if cached:
            bench.denoiser.disable_cache()
    images = result.images
    images = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if not torch.isfinite(images).all():
        raise AssertionError(f"{variant} gave non-finite pixels")
    times.setdefault(variant, []).append(seconds)
    return images


@pytest.mark.parametrize("cache", CACHES)
def test_cache_paired_rounds(
    benchmark: Any,
    collector: Collector,
    lss_paired_rounds: int,
    request: pytest.FixtureRequest,
    cache: str,
) -> None:
    runner = collector.runner("cpu", "flux")
    times: dict[str, list[float]] = {}
    config = CACHES[cache]()
    benchmark.group = f"cpu-flux-cache-{cache}"
    benchmark.extra_info.update(model="flux", cache=cache, variants=list(VARIANTS))
    rounds = [0]
    shapes: dict[str, tuple[int, ...]] = {}

    def run() -> None:
        shift = rounds[0] % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            shapes[variant] = tuple(_generate(runner, variant, config, times).shape)
        rounds[0] += 1

    benchmark.pedantic(run, rounds=lss_paired_rounds, warmup_rounds=0, iterations=1)
    plan = runner.bench.pipeline.lss_plan
    assert plan is not None and len(plan.stages) == 2, "the benchmark setting must use LSS"
    assert len(set(shapes.values())) == 1, shapes  # every variant at the target size
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    summary = {
        "cache": repr(config),
        "rounds": lss_paired_rounds,
        "median_s": {v: statistics.median(times[v]) for v in VARIANTS},
        "ratios": {
            name: statistics.median(n / d for n, d in zip(times[a], times[b]))
            for name, (a, b) in RATIOS.items()
        },
        "plan_steps": [s.num_denoising_steps for s in plan.stages],
        "predicted_lss_speedup": 1 / plan.token_steps_ratio(),
        "times_s": times,
    }
    benchmark.extra_info.update(ratios=summary["ratios"])
    print(f"\n{cache}: " + ", ".join(f"{k} {v:.2f}x" for k, v in summary["ratios"].items()))
    folder = Path(request.config.getoption("--lss-results"))
    path = folder / "cache-cpu.json"
    stored: dict[str, Any] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    stored[cache] = summary
    write_json_atomic(path, stored)
