"""What ``lssgen demo`` runs (its flags: `lssgen.cli.demo`): the shipped lssgen-mini model, plain
and with LSS, from the same seeds.

Offline and on the CPU: loads `lssgen/mini/model/`, prints both plans, makes an untimed warm-up
call of each mode (one-time set-up is billed to neither), then times one batched call per mode
twice, in the order plain, LSS, LSS, plain, so a drift in the machine's speed falls on both alike.
The calls are timed as `lssgen evaluate` times its batches (`lssgen.mini.timing`), with as many
prompts per call as the evaluation's default batch, so the two report the same speed-up.
Every prompt uses the same seed in both modes. Each image is judged by the rule-based evaluator,
and a side-by-side grid with the prompts, verdicts and mean times is written.

Timings on a busy machine: unless `--threads` says otherwise, torch gets the idle cores (from the
load average, `lssgen.mini.threads.choose_threads`), and the load is printed. Wall time and
CPU time are both reported: the wall clock also counts the time other processes hold the cores,
while the CPU time of a single-threaded run counts only the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import torch
from PIL import Image

from lssgen.mini.captions import parse_caption
from lssgen.mini.grid import prompt_grid
from lssgen.mini.model import MINI_SETTINGS, MiniSettings, load_shipped_pipeline
from lssgen.mini.timing import ZERO, CallTime, speedups, timed
from lssgen_core.cost import TransformerCost, plan_cost

# One prompt per GenEval category, in the form of the captions the shipped model was trained on:
# without GenEval's "a photo of" prefix, which it never saw and answers with noise (seen on the
# first shipped model; `lssgen mini transformer --prefix-fraction` trains both forms).
DEMO_PROMPTS = (
    "a triangle",
    "a circle and a square",
    "three stars",
    "a green square",
    "a red circle to the left of a blue triangle",
    "a yellow star and a purple circle",
    "two blue circles",
    "a white star above a black square",
)


@attrs.frozen
class ModeRun:
    """One mode's call over every prompt: its images, mean time per call and per-image
    verdicts."""

    name: str
    images: tuple[Image.Image, ...]
    time: CallTime  # wall and CPU (`lssgen.mini.timing`: why both)
    verdicts: tuple[bool | None, ...]  # None: the prompt is outside the evaluator's grammar


def demo(
    folder: Path,
    prompts: Sequence[str],
    settings: MiniSettings = MINI_SETTINGS,
    *,
    seed: int = 0,
    report: Any = print,
) -> tuple[ModeRun, ModeRun]:
    """Plain and LSS runs of `prompts` (prompt i from seed + i in both)."""

    pipe = load_shipped_pipeline(folder)
    pipe.set_progress_bar_config(disable=True)
    transformer = pipe.transformer.config
    text_tokens = pipe.tokenizer.model_max_length + settings.max_sequence_length
    cost = TransformerCost(
        width=transformer.num_attention_heads * transformer.attention_head_dim,
        depth=transformer.num_layers,
        text_tokens=text_tokens,
    )
    plain_call, lss_call = settings.plain(), settings.lss()
    for plan in (pipe.lss_plan_for(**plain_call, start_sigma=1.0), pipe.lss_plan_for(**lss_call)):
        report(plan.describe())
        report(plan_cost(plan, cost).describe())
    # Untimed warm-up of both modes: first calls pay for allocator and kernel set-up.
    for call in (plain_call, lss_call):
        pipe(prompts[0], **{**call, "num_inference_steps": 2})
    modes = {"plain": plain_call, "LSS (resnet)": lss_call}
    images: dict[str, list[Image.Image]] = {}
    times = dict.fromkeys(modes, ZERO)
    # Plain, LSS, LSS, plain: a drift in the machine's speed falls on both modes alike.
    for name in ("plain", "LSS (resnet)", "LSS (resnet)", "plain"):
        generators = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
        output, took = timed(partial(pipe, list(prompts), generator=generators, **modes[name]))
        images[name] = output.images
        times[name] += took.scaled(0.5)
    runs = []
    for name in modes:
        run = ModeRun(name, tuple(images[name]), times[name], verdicts(images[name], prompts))
        passed = sum(v is True for v in run.verdicts)
        report(
            f"{name}: {run.time.wall:.2f} s per call of {len(prompts)} images (mean of 2; "
            f"{run.time.cpu:.2f} s CPU time); "
            f"{passed} pass the evaluator"
        )
        runs.append(run)
    plain, lss = runs
    ratio = speedups(times["plain"], times["LSS (resnet)"])
    report(
        f"speed-up: {ratio['wall']:.2f}x in wall time, "
        f"{ratio['cpu']:.2f}x in CPU time (on a busy machine, with one "
        "thread, the CPU-time figure is the sound one)"
    )
    return plain, lss


def verdicts(images: Sequence[Image.Image], prompts: Sequence[str]) -> tuple[bool | None, ...]:
    """The evaluator's verdict per image; None where the prompt is not in its grammar."""
    # Lazy for start-up: scoring loads scipy (~0.5 s); only judging images needs it.
    from lssgen.mini.scoring import check

    results: list[bool | None] = []
    for image, prompt in zip(images, prompts):
        try:
            caption = parse_caption(prompt)
        except ValueError:
            results.append(None)
            continue
        results.append(check(image, caption).passed)
    return tuple(results)


def demo_grid(prompts: Sequence[str], runs: Sequence[ModeRun]) -> Image.Image:
    """Rows of prompts; per mode a column of images with verdicts; mean times in the headers."""
    plain = runs[0]
    columns = [
        (
            f"{r.name}: {r.time.wall:.1f} s, {r.time.cpu:.1f} s CPU"
            + ("" if r is plain else f" ({speedups(plain.time, r.time)['cpu']:.2f}x CPU)"),
            r.images,
            r.verdicts,
        )
        for r in runs
    ]
    return prompt_grid(prompts, columns)
