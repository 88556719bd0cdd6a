"""The latent upsampler alone at each model's first-stage latent size, in two memory formats.

The end-to-end cases time the upsampler once per generation, which is too few samples for a
component that runs for milliseconds. Here it runs many rounds, as the pipeline calls it
(contiguous NCHW in and out) and with channels-last weights and activations (a possible change
to ``LatentUpsampler``, measured here without editing it: see the README).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import torch
from models import BENCH_KINDS

if TYPE_CHECKING:
    from bench_support import ModelRunner
    from conftest import Collector

FORMATS = ("contiguous", "channels_last")
CASES = [
    pytest.param(device, kind, memory_format, id=f"{device}-{kind}-{memory_format}")
    for device in ("cpu", "cuda")
    for kind in BENCH_KINDS
    for memory_format in FORMATS
]


def _upsample_call(runner: ModelRunner, memory_format: str) -> Callable[[], None]:
    bench = runner.bench
    first = bench.plan().stages[0]
    upsampler = bench.upsampler
    latent = torch.randn(
        1,
        upsampler.in_channels,
        first.latent_height,
        first.latent_width,
        device=runner.device,
        dtype=upsampler.dtype,
    )
    if memory_format == "channels_last":
        # Module.to takes memory_format (torch's docs); its typed overloads leave it out.
        upsampler = copy.deepcopy(upsampler).to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def run() -> None:
        x = latent
        if memory_format == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            # Back to the layout the pipeline expects, so both variants hand over the same thing.
            upsampler(x).contiguous()
        runner.recorder.now()  # synchronises on CUDA

    return run


@pytest.mark.parametrize(("device", "kind", "memory_format"), CASES)
def test_upsampler_time(
    benchmark: Any, collector: Collector, device: str, kind: str, memory_format: str
) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    runner = collector.runner(device, kind)
    benchmark.group = f"{device}-{kind}-upsampler"
    benchmark.extra_info.update(device=device, model=kind, memory_format=memory_format)
    benchmark.pedantic(
        _upsample_call(runner, memory_format), rounds=30, warmup_rounds=3, iterations=1
    )
    if benchmark.stats is None:
        return
    stats = benchmark.stats.stats
    collector.add_upsampler(device, kind, memory_format, {"min": stats.min, "median": stats.median})
