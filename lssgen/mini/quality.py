"""What ``lssgen evaluate`` measures (its flags: `lssgen.cli.evaluate`): lssgen-mini's
prompt-following, sharpness and speed, plain versus LSS (`measure_quality`).

Prompts are held-out captions (`scene_for_index(EVAL_DATA_SEED, i)`: a seed training never uses,
categories in turn, so `--count 240` is 40 per GenEval category). Every configuration generates
every prompt from the same per-image seed; the rule-based evaluator (`lssgen.mini.scoring`) judges
each image against its caption. Configurations: plain (the stock call), LSS with each scaling mode
(resnet, latent, pixel) at the default `start_sigma`, and resnet over a `start_sigma` sweep; the
renders of the prompts' own scenes are scored too, as the evaluator's ceiling.

Timing is fair by construction: batches run configuration after configuration, so a change in the
machine's load falls on all of them, and an untimed warm-up call of each comes first. The speed-up
is plain's total seconds over the configuration's, on the wall clock and in CPU time
(`lssgen.mini.timing`, the clock `lssgen demo` uses too).

Resumable: each batch's PNGs are written atomically, then its seconds on both clocks
(`OUTPUT/<config>/times.json`); a batch with recorded seconds is skipped on the next run.
Results: `OUTPUT/results.json`, the markdown table `OUTPUT/results.md`, the chart
`OUTPUT/chart.png` and a sample grid `OUTPUT/samples.png`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import torch
from PIL import Image
from tqdm.auto import tqdm

from lssgen.images import png_bytes
from lssgen.mini.captions import CATEGORIES, Caption
from lssgen.mini.intervals import overall_interval, paired_difference_interval, wilson_interval
from lssgen.mini.model import MINI_SETTINGS, MiniSettings, load_shipped_pipeline
from lssgen.mini.quality_report import chart, sample_grid
from lssgen.mini.render import render
from lssgen.mini.scenes import scene_for_index
from lssgen.mini.timing import TIMING_BATCH, ZERO, CallTime, speedups, timed
from lssgen_core.atomic import write_bytes_atomic, write_json_atomic

EVAL_DATA_SEED = 7_000_003  # training uses TRAIN_DATA_SEED = 1000; never this one
SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
LSS_MODES = ("resnet", "latent", "pixel")


@attrs.frozen
class Config:
    """One way of generating: plain (`mode=None`) or LSS with a scaling mode and start_sigma;
    `steps` replaces the settings' step count (plain at fewer steps, the cheap baseline)."""

    mode: str | None
    start_sigma: float | None = None
    steps: int | None = None

    @property
    def name(self) -> str:
        name = "plain" if self.mode is None else f"{self.mode}@{self.start_sigma:g}"
        return name if self.steps is None else f"{name}/{self.steps}steps"

    def call(self, settings: MiniSettings) -> dict[str, Any]:
        steps = {} if self.steps is None else {"num_inference_steps": self.steps}
        if self.mode is None:
            return settings.plain(**steps)
        return settings.lss(scaling_mode=self.mode, start_sigma=self.start_sigma, **steps)


def equal_cost_plain(pipe: Any, settings: MiniSettings, configs: Sequence[Config]) -> list[Config]:
    """Plain at the step count whose cost matches each LSS configuration's plan.

    A speed-up only counts if it beats simply running fewer steps, so every LSS row gets a plain
    row at `round(N x plan token-steps ratio)` steps (at least 1): the same predicted work. The
    measured times of both are reported, so a mismatch between prediction and machine shows.
    """
    steps = set()
    for config in configs:
        if config.mode is not None and config.steps is None:
            ratio = pipe.lss_plan_for(**config.call(settings)).token_steps_ratio()
            fewer = max(1, round(settings.num_inference_steps * ratio))
            if fewer < settings.num_inference_steps:
                steps.add(fewer)
    return [Config(None, steps=n) for n in sorted(steps, reverse=True)]


def default_configs(
    start_sigma: float = MINI_SETTINGS.start_sigma, sweep: Sequence[float] = SWEEP
) -> tuple[Config, ...]:
    """Plain, every scaling mode at `start_sigma`, and resnet over `sweep` (no duplicates)."""
    configs = [Config(None), *(Config(mode, start_sigma) for mode in LSS_MODES)]
    configs += [Config("resnet", s) for s in sweep if s != start_sigma]
    return tuple(configs)


def eval_captions(count: int, seed: int = EVAL_DATA_SEED) -> list[Caption]:
    return [scene_for_index(seed, i)[1] for i in range(count)]


def batches(count: int, size: int) -> list[range]:
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def image_path(output: Path, config: Config, index: int) -> Path:
    return output / config.name / f"{index:05d}.png"


def _times_path(output: Path, config: Config) -> Path:
    return output / config.name / "times.json"


def read_times(output: Path, config: Config) -> dict[str, CallTime]:
    """Each finished batch's time on both clocks, by its first index. A batch recorded before
    CPU time was (a bare number of wall seconds) counts as not done: it is made and timed again,
    so every total has both clocks over the same batches."""
    path = _times_path(output, config)
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {
        batch: CallTime(entry["wall"], entry["cpu"])
        for batch, entry in recorded.items()
        if isinstance(entry, dict)
    }


def _write_times(output: Path, config: Config, times: dict[str, CallTime]) -> None:
    entries = {batch: attrs.asdict(took) for batch, took in times.items()}
    write_json_atomic(_times_path(output, config), entries)


def generate_all(
    pipe: Any,
    output: Path,
    configs: Sequence[Config],
    captions: Sequence[Caption],
    settings: MiniSettings,
    *,
    batch_size: int,
    seed: int,
    on_batch: Callable[[], None] = lambda: None,
) -> None:
    """Generate every (batch, config) not yet done, batch-major; records seconds per batch."""

    times = {config: read_times(output, config) for config in configs}
    pending = [
        (batch, config)
        for batch in batches(len(captions), batch_size)
        for config in configs
        if str(batch.start) not in times[config]
    ]
    if not pending:
        return
    for config in configs:  # untimed warm-up: first calls pay for one-time set-up
        pipe(captions[0].text, **{**config.call(settings), "num_inference_steps": 2})
    for batch, config in pending:
        prompts = [captions[i].text for i in batch]
        generators = [torch.Generator().manual_seed(seed + i) for i in batch]
        result, took = timed(partial(pipe, prompts, generator=generators, **config.call(settings)))
        for i, image in zip(batch, result.images):
            write_bytes_atomic(image_path(output, config, i), png_bytes(image))
        times[config][str(batch.start)] = took
        _write_times(output, config, times[config])
        on_batch()


def _load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def score_config(
    output: Path, config: Config, captions: Sequence[Caption], plan_ratio: float | None
) -> dict[str, Any]:
    # Lazy for start-up: scoring loads scipy (~0.5 s); only judging images needs it.
    from lssgen.mini.scoring import score

    images = [_load(image_path(output, config, i)) for i in range(len(captions))]
    result = with_intervals(score(images, captions))
    took = sum(read_times(output, config).values(), ZERO)
    result["seconds"], result["cpu_seconds"] = took.wall, took.cpu
    result["token_steps_ratio"] = plan_ratio
    return {
        "name": config.name,
        "mode": config.mode,
        "start_sigma": config.start_sigma,
        "steps": config.steps,
        **result,
    }


def with_intervals(result: dict[str, Any]) -> dict[str, Any]:
    """A `score` result with 95% intervals: Wilson per category, bootstrap overall."""

    passed = result["passed"]
    intervals = {c: wilson_interval(sum(v), len(v)) for c, v in passed.items()}
    return {**result, "interval": intervals, "overall_interval": overall_interval(passed)}


def add_paired_differences(rows: Sequence[dict[str, Any]]) -> None:
    """Each row's overall accuracy minus plain's, with the paired bootstrap's 95% interval."""

    plain = next(r for r in rows if r["mode"] is None and r["steps"] is None)
    for row in rows:
        row["difference"] = row["overall"] - plain["overall"]
        row["difference_interval"] = paired_difference_interval(row["passed"], plain["passed"])


def score_renders(captions: Sequence[Caption], size: int, seed: int) -> dict[str, Any]:
    """The evaluator on the prompts' own scenes: the ceiling any model can reach."""
    # Lazy for start-up: scoring loads scipy (~0.5 s); only judging images needs it.
    from lssgen.mini.scoring import score

    images = [render(scene_for_index(seed, i)[0], size) for i in range(len(captions))]
    result = with_intervals(score(images, captions))
    return {"name": "renders", "mode": None, "start_sigma": None, "steps": None, **result}


def measure_quality(
    folder: Path,
    output: Path,
    *,
    count: int,
    settings: MiniSettings = MINI_SETTINGS,
    configs: Sequence[Config] | None = None,
    batch_size: int = TIMING_BATCH,
    seed: int = 0,
    data_seed: int = EVAL_DATA_SEED,
    progress: bool = True,
    fewer_steps: bool = True,
) -> dict[str, Any]:
    """Generate (resuming), score and write results; returns the results dictionary.

    `fewer_steps` adds plain at the step count of each LSS configuration's predicted cost
    (`equal_cost_plain`)."""

    configs = tuple(configs or default_configs(settings.start_sigma))
    captions = eval_captions(count, data_seed)
    pipe = load_shipped_pipeline(folder)
    pipe.set_progress_bar_config(disable=True)
    if fewer_steps:
        known = set(configs)
        configs += tuple(c for c in equal_cost_plain(pipe, settings, configs) if c not in known)
    total = len(batches(count, batch_size)) * len(configs)
    done = sum(len(read_times(output, c)) for c in configs)
    with tqdm(
        total=total, initial=done, unit="batch", desc="evaluate", disable=not progress
    ) as bar:
        generate_all(
            pipe,
            output,
            configs,
            captions,
            settings,
            batch_size=batch_size,
            seed=seed,
            on_batch=lambda: bar.update(1),
        )
    rows = []
    for config in configs:
        plan = pipe.lss_plan_for(**config.call(settings))
        rows.append(score_config(output, config, captions, plan.token_steps_ratio()))
    plain = next(r for r in rows if r["mode"] is None and r["steps"] is None)
    for row in rows:
        ratio = speedups(
            CallTime(plain["seconds"], plain["cpu_seconds"]),
            CallTime(row["seconds"], row["cpu_seconds"]),
        )
        row["speedup"], row["speedup_cpu"] = ratio["wall"], ratio["cpu"]
    add_paired_differences(rows)
    results = {
        "model": folder.name,  # no machine path: results are committed as evidence
        "settings": attrs.asdict(settings),
        "count": count,
        "batch_size": batch_size,
        "seed": seed,
        "data_seed": data_seed,
        "threads": torch.get_num_threads(),
        "configs": rows,
        "renders": score_renders(captions, settings.size, data_seed),
    }
    write_json_atomic(output / "results.json", results)
    write_bytes_atomic(output / "results.md", (markdown(results) + "\n").encode())

    chart(results, output / "chart.png")
    sample_grid(
        lambda config, i: image_path(output, config, i),
        [c for c in configs if c.start_sigma in (None, settings.start_sigma)],
        captions[: len(CATEGORIES)],
        output / "samples.png",
    )
    return results


def _percent(value: float, interval: Sequence[float] | None) -> str:
    if interval is None:
        return f"{value:.1%}"
    return f"{value:.1%} [{interval[0]:.0%}, {interval[1]:.0%}]"


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table: accuracy per category and overall with 95% intervals,
    the paired difference from plain, sharpness and speed."""
    categories = [c for c in CATEGORIES if c in results["renders"]["per_category"]]
    header = ["config", *categories, "overall", "vs plain", "sharpness ×10³", "speed-up"]
    header.append("speed-up (CPU)")
    header.append("token-steps")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in [*results["configs"], results["renders"]]:
        intervals = row.get("interval", {})
        cells = [row["name"]]
        cells += [
            _percent(row["per_category"].get(c, float("nan")), intervals.get(c)) for c in categories
        ]
        cells.append(f"**{_percent(row['overall'], row.get('overall_interval'))}**")
        difference = row.get("difference")
        if difference is None:
            cells.append("-")
        else:
            low, high = row["difference_interval"]
            cells.append(f"{difference:+.1%} [{low:+.0%}, {high:+.0%}]")
        cells.append(f"{row['sharpness'] * 1000:.3f}")
        speedup, ratio = row.get("speedup"), row.get("token_steps_ratio")
        cpu = row.get("speedup_cpu")
        cells += [f"{speedup:.2f}x" if speedup else "-", f"{cpu:.2f}x" if cpu else "-"]
        cells.append(f"{ratio:.1%}" if ratio else "-")
        lines.append("| " + " | ".join(cells) + " |")
    notes = (
        "Accuracy: share of images the rule-based evaluator passes, with its 95% interval "
        "(Wilson per category; stratified bootstrap overall). vs plain: overall minus plain's "
        "on the same prompts and seeds, with the paired bootstrap's 95% interval."
    )
    return "\n".join([*lines, "", notes])
