"""Plain vs LSS (resnet, latent, pixel scaling) end-to-end generation time, per model, one run.

Per model, ``test_generation_time`` times each mode on its own (plain, resnet, latent, pixel, in
that order) and ``test_paired_rounds`` times rounds of all four back to back, whose per-round
ratios are immune to the slow drift of a shared machine's speed. Timed with pytest-benchmark's
pedantic mode (fixed rounds, warm-up rounds untimed); ``conftest.py`` turns the measurements into
``results/<profile>.json``, the README table and the chart. CUDA cases run in bf16 on the
real-size profiles when a GPU is present and are skipped otherwise (the only skip).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import torch
from bench_support import MODES, mode_summary, paired_summary
from models import BENCH_KINDS

if TYPE_CHECKING:
    from conftest import Collector

Rounds = tuple[int, int]  # (timed rounds, warm-up rounds), the lss_rounds fixture

DEVICES = ("cpu", "cuda")
CASES = [
    pytest.param(device, kind, mode, id=f"{device}-{kind}-{mode}")
    for device in DEVICES
    for kind in BENCH_KINDS
    for mode in MODES
]


@pytest.mark.parametrize(("device", "kind", "mode"), CASES)
def test_generation_time(
    benchmark: Any, collector: Collector, lss_rounds: Rounds, device: str, kind: str, mode: str
) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rounds, warmup = lss_rounds
    runner = collector.runner(device, kind)
    benchmark.group = f"{device}-{kind}"
    benchmark.extra_info.update(device=device, model=kind, mode=mode)

    benchmark.pedantic(runner.timed_call(mode), rounds=rounds, warmup_rounds=warmup, iterations=1)

    if mode != "plain":
        plan = runner.bench.pipeline.lss_plan
        assert plan is not None and len(plan.stages) == 2, "the benchmark setting must use LSS"
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    timed = runner.records[mode][-rounds:]
    stats = benchmark.stats.stats
    summary = mode_summary(timed, {"min": stats.min, "median": stats.median})
    benchmark.extra_info.update(
        machinery_share=summary["machinery_share"], wall_min_s=summary["wall_min_s"]
    )
    collector.add(device, kind, mode, summary)


@pytest.mark.parametrize(
    ("device", "kind"),
    [pytest.param(d, k, id=f"{d}-{k}") for d in DEVICES for k in BENCH_KINDS],
)
def test_paired_rounds(
    benchmark: Any,
    collector: Collector,
    lss_rounds: Rounds,
    lss_paired_rounds: int,
    device: str,
    kind: str,
) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rounds, (_, warmup) = lss_paired_rounds, lss_rounds
    runner = collector.runner(device, kind)
    benchmark.group = f"{device}-{kind}-paired"
    benchmark.extra_info.update(device=device, model=kind, modes=list(MODES))
    # The per-mode cases have warmed the model up unless they were deselected.
    warmup = 0 if runner.records else warmup
    benchmark.pedantic(runner.paired_round(), rounds=rounds, warmup_rounds=warmup, iterations=1)
    if benchmark.stats is None:
        return
    collector.add_paired(device, kind, paired_summary(runner.records, rounds))
