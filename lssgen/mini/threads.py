"""How many CPU threads time lssgen-mini soundly (`lssgen demo` and `lssgen evaluate`): the idle
cores, from the load average (`lssgen.torch_settings.torch_threads` sets them for a block)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable

import torch

# A 1-minute load average from this much on, other processes hold a share of the CPU that skews
# a timing; below it the machine counts as idle.
BUSY_LOAD = 0.5


def available_cpus() -> int:
    """The cores this process may run on."""
    with contextlib.suppress(AttributeError):  # no sched_getaffinity outside Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    with contextlib.suppress(AttributeError, OSError):
        return os.getloadavg()[0]
    return None


def choose_threads(cpus: int, load: float) -> int:
    """Threads for timing on `cpus` cores with `load` runnable processes already: the idle cores,
    at least one.

    Why not all cores: a torch thread that shares its core with another process stalls every
    parallel operation of the call, and more so for LSS's small first stage, whose operations are
    short. Measured on a 2-core machine with a training job running: `lssgen demo` with 2
    threads reported LSS at 0.85x and 0.96x of plain, with 1 thread 1.22x.
    """
    return max(1, min(cpus, math.floor(cpus - load + 0.5)))


def timing_threads(requested: int | None, report: Callable[[str], None] = print) -> int:
    """The thread count for this run (`requested`, or `choose_threads` from the load) and a
    line saying what it is based on, with a warning when other processes distort timings."""
    cpus, load = available_cpus(), load_average()
    threads = requested or (
        choose_threads(cpus, load) if load is not None else torch.get_num_threads()
    )
    if load is None:
        report(f"timing with {threads} thread(s) on {cpus} cores (no load average here)")
        return threads
    how = "--threads" if requested else "the idle cores"
    line = f"load average {load:.2f} on {cpus} cores: timing with {threads} thread(s) ({how})"
    if load >= BUSY_LOAD:
        line += "; other processes are running, so times vary from run to run"
    if threads + load > cpus + BUSY_LOAD:
        line += "; the threads share cores with them, which distorts the comparison"
    report(line)
    return threads
