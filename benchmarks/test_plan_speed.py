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

Two predictions stand beside each measurement:
- the FLOP model (``bench.cost``), denoiser work only;
- the calibrated end-to-end one: a fixed cost per denoiser call (:func:`calibrate`), plus the
  work both pay once (prompt encoding, the final VAE decode, the scheduler: plain@20's time
  outside the denoiser) and the upsampler only LSS pays (``flop_report``'s exact count). All of
  it is fitted on plain@20 and the paper's plan only (256 and 512 px), so the other plans, the
  three-stage one's 128 px calls included, and plain at fewer steps are predicted out of sample.
The LSS machinery (planning, hand-over, schedule checks: ``bench_support.MACHINERY``) is reported
as its share of each LSS variant's wall time.

    pytest benchmarks/test_plan_speed.py --benchmark-only --benchmark-enable --lss-paired-rounds 3

Timed runs write ``results/plans-<profile>.json`` (in ``--lss-results``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from bench_support import RunRecord, step_times
from models import BenchModel, flop_report

from lssgen_core.atomic import write_json_atomic
from lssgen_core.cost import CalibratedCost, calibrate, plan_cost

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
    runner: Any, variant: str, overrides: dict[str, Any], records: dict[str, list[RunRecord]]
) -> torch.Tensor:
    bench = runner.bench
    recorder = runner.recorder
    generator = torch.Generator(runner.device).manual_seed(0)
    recorder.reset()
    start = recorder.now()  # synchronises on CUDA
    if variant.startswith("plain"):
        result = bench.stock(**{**bench.call, **overrides}, generator=generator)
    else:
        result = bench.pipeline(**bench.call, **{**bench.lss, **overrides}, generator=generator)
    record = RunRecord(recorder.now() - start, tuple(recorder.spans))
    records.setdefault(variant, []).append(record)
    images = result.images
    images = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if not torch.isfinite(images).all():
        raise AssertionError(f"{variant} gave non-finite pixels")
    return images


def _end_to_end(
    bench: BenchModel, plan: Any, model: CalibratedCost, flops: dict[str, Any], shared: float
) -> float:
    """Predicted plain / ``plan`` (both at the plan's steps), with the ``shared`` FLOP-equivalents
    both pay and the upsampler added.

    ``flop_report`` counts the upsampler on the paper plan's first stage; a hand-over from a
    smaller stage costs in proportion to its input's tokens (the network is convolutional).
    """
    first = bench.plan().stages[0].num_tokens
    upsampler = sum(
        float(flops["upsampler"]) * stage.num_tokens / first for stage in plan.stages[:-1]
    )
    return plan_cost(plan, model, overhead_flops=upsampler, shared_flops=shared).speedup


def _plain_end_to_end(
    bench: BenchModel, model: CalibratedCost, shared: float, steps: int, fewer: int
) -> float:
    """Predicted plain@``steps`` / plain@``fewer``, with the ``shared`` FLOP-equivalents."""
    step = model.flops(bench.plan().target.num_tokens)
    return (steps * step + shared) / (fewer * step + shared)


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
    records: dict[str, list[RunRecord]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    rounds = [0]

    def run() -> None:
        shift = rounds[0] % len(names)
        for name in names[shift:] + names[:shift]:
            shapes[name] = tuple(_generate(runner, name, variants[name], records).shape)
        rounds[0] += 1

    benchmark.group = "cpu-flux-plans"
    benchmark.extra_info.update(model="flux", variants=names)
    benchmark.pedantic(run, rounds=lss_paired_rounds, warmup_rounds=0, iterations=1)
    assert len(set(shapes.values())) == 1, shapes  # every variant at the target size
    assert [len(plans[name].stages) for name in PLANS] == [2, 2, 2, 3]
    assert {plan.num_steps for plan in plans.values()} == {steps}  # plain@steps is the baseline
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    plain = f"plain@{steps}"
    times = {name: [r.seconds for r in records[name]] for name in names}
    measured = {
        name: statistics.median(p / v for p, v in zip(times[plain], times[name]))
        for name in names
        if name != plain
    }
    calibrated = calibrate(bench.cost, step_times({k: records[k] for k in (plain, "paper")}))
    flops = flop_report(bench)
    # What plain@steps spends outside the denoiser, in the calibration's FLOP-equivalents.
    shared_s = statistics.median(r.seconds - r.total("denoiser") for r in records[plain])
    shared = shared_s * calibrated.flops_per_second
    end_to_end = {
        name: _end_to_end(bench, plans[name], calibrated, flops, shared) for name in PLANS
    } | {
        name: _plain_end_to_end(bench, calibrated, shared, steps, int(name.split("@")[1]))
        for name in measured
        if name.startswith("plain@")
    }
    machinery = {
        name: statistics.median(r.machinery() / r.seconds for r in records[name]) for name in PLANS
    }
    per_call = step_times(records)
    breakdowns = {name: [r.breakdown() for r in records[name]] for name in names}
    summary = {
        "rounds": lss_paired_rounds,
        "median_s": {name: statistics.median(times[name]) for name in names},
        "speedup_over_plain": measured,
        "predicted": predicted,
        "measured_over_predicted": {name: measured[name] / predicted[name] for name in PLANS},
        "calibration": {
            "fitted_on": [plain, "paper"],
            "flops_per_second": calibrated.flops_per_second,
            "overhead_seconds": calibrated.overhead_seconds,
            "shared_seconds": shared_s,
        },
        # Seconds of one denoiser call per token count over every run, against the calibration.
        "step_seconds": {str(n): t for n, t in per_call.items()},
        "step_seconds_calibrated": {str(n): calibrated.seconds(n) for n in per_call},
        "predicted_end_to_end": end_to_end,
        "measured_over_end_to_end": {
            name: measured[name] / end_to_end[name] for name in end_to_end
        },
        "machinery_share": machinery,
        # Seconds per part (bench_support.RunRecord.breakdown): the upsampler's own compute is
        # in "upsample", the rest of the machinery in "renoise" and "plan".
        "breakdown_median_s": {
            name: {
                part: statistics.median(parts[part] for parts in breakdowns[name])
                for part in breakdowns[name][0]
            }
            for name in names
        },
        "plan_steps": {
            name: [s.num_denoising_steps for s in p.stages] for name, p in plans.items()
        },
        "times_s": times,
    }
    benchmark.extra_info.update(speedups=measured)
    print("\n" + ", ".join(f"{k} {v:.2f}x" for k, v in measured.items()))
    print("FLOP model: " + ", ".join(f"{k} {v:.2f}x" for k, v in predicted.items()))
    print("calibrated end-to-end: " + ", ".join(f"{k} {v:.2f}x" for k, v in end_to_end.items()))
    print("LSS machinery: " + ", ".join(f"{k} {v:.2%}" for k, v in machinery.items()))
    path = Path(request.config.getoption("--lss-results")) / "plans-cpu.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored["flux"] = summary
    write_json_atomic(path, stored)
