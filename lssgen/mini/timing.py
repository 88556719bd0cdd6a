"""One clock for lssgen-mini's speed figures: `lssgen demo` and `lssgen evaluate` time alike.

Why both clocks: on a busy machine the wall clock also counts the time other processes hold the
cores, while the CPU time of this process counts only its own work. With one torch thread (what
`threads.timing_threads` picks when the other core is taken) the CPU-time ratio is the sound
one. Our measurement, both commands' code on one pipeline, one thread, load 10 on 2 cores:
LSS/plain CPU-time speed-up 1.25x on the demo's prompts and 1.24x on six evaluation captions
(prompts do not matter: every caption pads to the same 16 tokens), 1.22x at eight captions per
call (batching changes per-image costs), while the wall-clock ratios of the same calls ranged
from 1.12x to 1.67x. So the two commands disagreed because they read the wall clock under
different loads and batch sizes; both now time TIMING_BATCH prompts per call on both clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import attrs

T = TypeVar("T")

# Prompts per timed call in both commands (the demo has this many prompts; the evaluation's
# default batch): a per-image cost depends on the batch, so equal batches compare alike.
TIMING_BATCH = 8


@attrs.frozen
class CallTime:
    """Seconds of one call: on the wall clock, and of this process's CPU (all its threads)."""

    wall: float
    cpu: float

    def __add__(self, other: CallTime) -> CallTime:
        return CallTime(self.wall + other.wall, self.cpu + other.cpu)

    def scaled(self, factor: float) -> CallTime:
        return CallTime(self.wall * factor, self.cpu * factor)


ZERO = CallTime(0.0, 0.0)


def timed(call: Callable[[], T]) -> tuple[T, CallTime]:
    """`call()`'s result and its time on both clocks."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, CallTime(time.perf_counter() - wall, time.process_time() - cpu)


def speedups(plain: CallTime, other: CallTime) -> dict[str, float]:
    """`other`'s speed-up over `plain` on each clock (above 1: `other` is faster)."""
    return {"wall": plain.wall / other.wall, "cpu": plain.cpu / other.cpu}
