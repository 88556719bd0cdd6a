"""The one clock of `lssgen demo` and `lssgen evaluate` (lssgen.mini.timing)."""

from __future__ import annotations

import time

import pytest

from lssgen.mini.timing import ZERO, CallTime, speedups, timed


def test_timed_returns_the_result_and_both_clocks():
    def busy() -> int:
        deadline = time.process_time() + 0.05
        while time.process_time() < deadline:
            pass
        return 7

    result, took = timed(busy)
    assert result == 7
    assert took.cpu >= 0.05 and took.wall >= took.cpu * 0.5


def test_sleep_counts_on_the_wall_clock_only():
    _, took = timed(lambda: time.sleep(0.05))
    assert took.wall >= 0.05 and took.cpu < 0.04


def test_times_add_and_scale_and_speedups_are_ratios_per_clock():
    total = ZERO + CallTime(2.0, 1.0) + CallTime(4.0, 3.0)
    assert total == CallTime(6.0, 4.0)
    assert total.scaled(0.5) == CallTime(3.0, 2.0)
    assert speedups(CallTime(6.0, 4.0), CallTime(3.0, 1.0)) == pytest.approx(
        {"wall": 2.0, "cpu": 4.0}
    )
