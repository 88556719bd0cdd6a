"""Fixtures of the LSS speed benchmarks; writes results/<profile>.json and the README table.

Run: ``pytest benchmarks/ --benchmark-only --benchmark-enable`` (``make bench``). The repository's
pytest configuration disables pytest-benchmark and collects only ``tests/``, so the default test
run never gets here; without ``--benchmark-enable`` every case runs once, as a smoke test, and
nothing is written.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import report  # benchmarks/report.py
import torch

# Every model is built from configs; nothing may reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bench_support import ModelRunner, model_summary, step_times, upsampler_summary
from models import bench_model, flop_report

RESULTS = Path(__file__).parent / "results"
COMMAND = "pytest benchmarks/ --benchmark-only --benchmark-enable"
# The round counts of the cases: option -> (results key, default, help).
ROUND_OPTIONS: dict[str, tuple[str, int, str]] = {
    "--lss-rounds": ("rounds", 3, "timed rounds per case"),
    "--lss-warmup": ("warmup_rounds", 1, "untimed warm-up rounds per case"),
    "--lss-paired-rounds": (
        "paired_rounds",
        5,
        "rounds of the paired case (each runs all four modes); its ratios are the headline",
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lss benchmarks")
    for option, (_key, default, help_text) in ROUND_OPTIONS.items():
        group.addoption(option, type=int, default=default, help=help_text)
    group.addoption(
        "--lss-results",
        default=str(RESULTS),
        help="folder for <profile>.json and the chart (the README table is always updated "
        "when it is the default)",
    )


class Collector:
    """What the benchmark cases measured, per (device, model) and mode."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.runners: dict[tuple[str, str], ModelRunner] = {}
        self.modes: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.upsampler: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
        self.paired: dict[tuple[str, str], dict[str, Any]] = {}

    def runner(self, device: str, kind: str) -> ModelRunner:
        key = (device, kind)
        if key not in self.runners:
            profile = "cuda" if device == "cuda" else "cpu"
            dtype = torch.bfloat16 if device == "cuda" else torch.float32
            bench = bench_model(kind, profile, device=device, dtype=dtype)
            self.runners[key] = ModelRunner.create(bench, torch.device(device))
        return self.runners[key]

    def add(self, device: str, kind: str, mode: str, summary: dict[str, Any]) -> None:
        self.modes.setdefault((device, kind), {})[mode] = summary

    def add_paired(self, device: str, kind: str, summary: dict[str, Any]) -> None:
        self.paired[(device, kind)] = summary

    def add_upsampler(
        self, device: str, kind: str, memory_format: str, wall: dict[str, float]
    ) -> None:
        self.upsampler.setdefault((device, kind), {})[memory_format] = wall

    def results(self) -> dict[str, dict[str, Any]]:
        """Per device: machine facts and, per model with all four modes, the summary."""
        by_device: dict[str, dict[str, Any]] = {}
        for (device, kind), modes in self.modes.items():
            if set(modes) != {"plain", "resnet", "latent", "pixel"}:
                continue  # a -k selection: ratios need the plain run of the same session
            runner = self.runners[(device, kind)]
            entry = by_device.setdefault(device, {"machine": _machine(device), "models": {}})
            steps = step_times(runner.records)
            flops = flop_report(runner.bench)
            paired = self.paired.get((device, kind))
            summary = model_summary(runner.bench, modes, steps, flops, paired)
            summary["paired"] = paired
            summary["upsampler_alone"] = upsampler_summary(
                self.upsampler.get((device, kind), {}), steps, runner.bench
            )
            summary["flops"] = flops
            summary["notes"] = dict(runner.bench.notes)
            summary["setting"] = {**runner.bench.call, **runner.bench.lss}
            entry["models"][kind] = summary
        return by_device


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _machine(device: str) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "device": device,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda":
        facts["gpu"] = torch.cuda.get_device_name()
        facts["dtype"] = "bfloat16"
    else:
        facts["dtype"] = "float32"
    return facts


@pytest.fixture(scope="session")
def collector(request: pytest.FixtureRequest) -> Iterator[Collector]:
    found = Collector()
    request.config.stash[_COLLECTOR] = found
    yield found


_COLLECTOR = pytest.StashKey[Collector]()


@pytest.fixture
def lss_rounds(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.config.getoption("--lss-rounds"), request.config.getoption("--lss-warmup")


@pytest.fixture
def lss_paired_rounds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--lss-paired-rounds"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = session.config.stash.get(_COLLECTOR, None)
    if found is None:
        return
    results = found.results()
    if not results:
        return

    folder = Path(session.config.getoption("--lss-results"))
    elapsed = time.perf_counter() - found.started
    for device, data in results.items():
        data["command"] = _command(session.config)
        data["suite_seconds"] = elapsed
        for option, (key, _default, _help) in ROUND_OPTIONS.items():
            data[key] = session.config.getoption(option)
        path = report.write_results(data, folder, profile_of(device))
        report.render(path, update_readme_file=folder.resolve() == RESULTS.resolve())


def _command(config: pytest.Config) -> str:
    """The command line of this session (from the repository root), for the README."""
    args = [a for a in config.invocation_params.args if not a.startswith("--lss-results")]
    return " ".join(["pytest", *args]) if args else COMMAND


def profile_of(device: str) -> str:
    return "cuda" if device == "cuda" else "cpu"
