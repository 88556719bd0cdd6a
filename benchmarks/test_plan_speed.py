"""Explicit plans against plain at full and at fewer steps, with the cost model's predictions.

Issue-level question: which plan inputs (``stage_steps``, three stages) cut the wall time beyond
the paper's plan, and does the cost model predict each within 5%? Each round generates every
variant back to back on the flux benchmark model (``models.py``: 512 px from 256 px, 20 steps),
the order rotating every round, and the summary takes the median over rounds of each round's
``plain / variant`` ratio, as ``test_paired_rounds`` does.

Besides plain at the benchmark's 20 steps, plain runs at the step count that the cost model says
costs what each plan costs (``round(20 / predicted)``): a plan is only a speed-up if it beats
plain run for the same time, which here is measured in the same rounds. This file measures
speed only; whether a plan keeps the image is lssgen-mini's evaluation.

    pytest benchmarks/test_plan_speed.py --benchmark-only --benchmark-enable --lss-paired-rounds 3

Timed runs write ``results/plans-<profile>.json`` (in ``--lss-results``).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from lssgen_core.atomic import write_json_atomic
from lssgen_core.cost import plan_cost

if TYPE_CHECKING:
    from conftest import Collector

# LSS arguments over the benchmark's own (the paper's plan: start_sigma 0.75 from 256 px,
# shortened steps). Explicit step counts fix every stage, so they turn shortening off.
PLANS: dict[str, dict[str, Any]] = {
    "paper": {},
    "stage_steps=(10, 5)": {"stage_steps": (10, 5), "shorten_intermediate_steps": False},
    "stage_steps=(12, 3)": {"stage_steps": (12, 3), "shorten_intermediate_steps": False},
    "three stages (10, 5, 3)": {
        "min_size": 128,
        "stage_steps": (10, 5, 3),
        "shorten_intermediate_steps": False,
    },
}


def _generate(
    runner: Any, variant: str, overrides: dict[str, Any], times: dict[str, list[float]]
) -> torch.Tensor:
    bench = runner.bench
    generator = torch.Generator(runner.device).manual_seed(0)
    start = time.perf_counter()
    if variant.startswith("plain"):
        result = bench.stock(**{**bench.call, **overrides}, generator=generator)
    else:
        result = bench.pipeline(**bench.call, **{**bench.lss, **overrides}, generator=generator)
    runner.recorder.now()  # synchronises on CUDA
    times.setdefault(variant, []).append(time.perf_counter() - start)
    images = result.images
    images = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if not torch.isfinite(images).all():
        raise AssertionError(f"{variant} gave non-finite pixels")
    return images


def test_plan_paired_rounds(
    benchmark: Any, collector: Collector, lss_paired_rounds: int, request: pytest.FixtureRequest
) -> None:
    runner = collector.runner("cpu", "flux")
    bench = runner.bench
    steps = int(bench.call["num_inference_steps"])
    plans = {name: bench.plan(**overrides) for name, overrides in PLANS.items()}
    predicted = {name: plan_cost(plan, bench.cost).speedup for name, plan in plans.items()}
    # Plain at full steps, and at the steps that cost what each plan is predicted to cost.
    fewer = sorted({max(1, round(steps / p)) for p in predicted.values()} - {steps}, reverse=True)
    variants: dict[str, dict[str, Any]] = {f"plain@{steps}": {}}
    variants |= {f"plain@{k}": {"num_inference_steps": k} for k in fewer}
    variants |= PLANS
    names = list(variants)
    times: dict[str, list[float]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    rounds = [0]

    def run() -> None:
        shift = rounds[0] % len(names)
        for name in names[shift:] + names[:shift]:
            shapes[name] = tuple(_generate(runner, name, variants[name], times).shape)
        rounds[0] += 1

    benchmark.group = "cpu-flux-plans"
    benchmark.extra_info.update(model="flux", variants=names)
    benchmark.pedantic(run, rounds=lss_paired_rounds, warmup_rounds=0, iterations=1)
    assert len(set(shapes.values())) == 1, shapes  # every variant at the target size
    assert [len(plans[name].stages) for name in PLANS] == [2, 2, 2, 3]
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    plain = f"plain@{steps}"
    measured = {
        name: statistics.median(p / v for p, v in zip(times[plain], times[name]))
        for name in names
        if name != plain
    }
    summary = {
        "rounds": lss_paired_rounds,
        "median_s": {name: statistics.median(times[name]) for name in names},
        "speedup_over_plain": measured,
        "predicted": predicted,
        "measured_over_predicted": {name: measured[name] / predicted[name] for name in PLANS},
        "plan_steps": {
            name: [s.num_denoising_steps for s in p.stages] for name, p in plans.items()
        },
        "times_s": times,
    }
    benchmark.extra_info.update(speedups=measured)
    print("\n" + ", ".join(f"{k} {v:.2f}x" for k, v in measured.items()))
    print("predicted: " + ", ".join(f"{k} {v:.2f}x" for k, v in predicted.items()))
    path = Path(request.config.getoption("--lss-results")) / "plans-cpu.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored["flux"] = summary
    write_json_atomic(path, stored)
