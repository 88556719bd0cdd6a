"""Measure what each lssgen-mini stage costs per step here, and plan the steps for a time budget.

`measure` runs a few real steps of each stage's own code at the proposed sizes (fresh random
weights, a synthetic latent cache: cost does not depend on the weights) with the torch threads
the caller set; `plan` turns seconds per unit into units per stage for a budget in minutes,
assuming `speedup` from the measured thread count to the one training will use. Run it with
`lssgen mini budget` (1 thread by default; see lssgen/mini/README.md for the table it gives).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import attrs
import torch

from lssgen.mini.render import render
from lssgen.mini.scenes import scene_for_index
from lssgen.mini.train_data import TRAIN_DATA_SEED, render_batch
from lssgen.mini.train_latents import LatentCache
from lssgen.mini.train_recipe import LoopConfig, run_loop
from lssgen.mini.train_text import TextConfig, build_text
from lssgen.mini.train_transformer import FlowTask, FlowTrainConfig, build_transformer
from lssgen.mini.train_vae import VaeTask, VaeTrainConfig, build_vae
from lssgen.training.train import default_upsampler_config, init_upsampler
from lssgen_diffusers.vae import VaeCodec


@attrs.frozen
class Measurement:
    stage: str
    unit: str
    seconds: float  # per unit, at the measured thread count


@attrs.frozen
class StageBudget:
    """One training stage's share of the time budget: its minutes and the units that fit."""

    stage: str
    unit: str
    seconds: float  # per unit, at the planned thread count
    minutes: float
    units: int


# Minutes of a ~2 h budget per stage: the transformer gets most, the VAE enough to be sharp.
DEFAULT_MINUTES: dict[str, float] = {
    "vae": 25.0,
    "latents": 12.0,
    "images": 1.0,
    "upsampler": 10.0,
    "transformer": 70.0,
}


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: allocator, kernels
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _loop_seconds(net: torch.nn.Module, task: Any, batch_size: int, steps: int) -> float:
    config = LoopConfig(steps=steps + 1, batch_size=batch_size, warmup_steps=0)
    return run_loop(net, task, config).seconds_per_step  # first step excluded


def measure_vae(steps: int, batch_size: int = 8) -> Measurement:
    config = VaeTrainConfig()
    seconds = _loop_seconds(
        build_vae(config.arch, 0), VaeTask(config, batch_size), batch_size, steps
    )
    return Measurement("vae", f"step (batch {batch_size}, {config.crop} px crops)", seconds)


def measure_encode(repeats: int, sizes: tuple[int, ...] = (256, 128)) -> Measurement:

    codec = VaeCodec.from_vae(build_vae(VaeTrainConfig().arch, 0).eval())
    batch = 16

    def encode() -> None:
        for size in sizes:
            codec.encode(render_batch(TRAIN_DATA_SEED, range(batch), size))

    return Measurement(
        "latents", "scene (render + encode at 256 and 128)", _timed(encode, repeats) / batch
    )


def synthetic_cache(
    count: int = 64, channels: int = 16, sizes: tuple[int, ...] = (256, 128)
) -> LatentCache:
    generator = torch.Generator().manual_seed(0)
    latents = {
        s: torch.randn(count, channels, s // 8, s // 8, generator=generator).half() for s in sizes
    }
    return LatentCache(latents, tuple(["a red circle to the left of a blue star"] * count), "x")


def measure_transformer(steps: int, batch_size: int = 16) -> list[Measurement]:
    text = build_text(TextConfig())
    cache = synthetic_cache()
    results = []
    for label, low, stock in (
        ("256 px", 0.0, 0.0),
        ("128 px", 1.0, 0.0),
        ("256 px + 256 T5 tokens", 0.0, 1.0),
        ("128 px + 256 T5 tokens", 1.0, 1.0),
    ):
        config = FlowTrainConfig(low_res_fraction=low, stock_t5_fraction=stock)
        net = build_transformer(
            config.arch,
            latent_channels=16,
            joint_attention_dim=text.joint_attention_dim,
            pooled_projection_dim=text.pooled_projection_dim,
            seed=0,
        )
        task = FlowTask(config, batch_size, cache, text, "x")
        seconds = _loop_seconds(net, task, batch_size, steps)
        results.append(Measurement("transformer", f"step (batch {batch_size}, {label})", seconds))
    return results


def transformer_mix(measured: list[Measurement], config: FlowTrainConfig) -> float:
    """Mean seconds per step under `config`'s mix of sizes and T5 lengths."""
    fast_256, fast_128, stock_256, stock_128 = (m.seconds for m in measured)
    low, stock = config.low_res_fraction, config.stock_t5_fraction
    fast = (1 - low) * fast_256 + low * fast_128
    slow = (1 - low) * stock_256 + low * stock_128
    return (1 - stock) * fast + stock * slow


def measure_upsampler(
    repeats: int, batch_size: int = 16, encode_per_scene: float = 0.0
) -> Measurement:
    """`lssgen train-upsampler --size 128 --cache-latents` per step: the upsampler's forward and
    backward on 16x16 -> 32x32 latents, plus a quarter of the batch encoded (pool reuse 4)."""

    model = init_upsampler(default_upsampler_config(16), 0)
    optimizer = torch.optim.AdamW(model.parameters())
    low, high = torch.randn(batch_size, 16, 16, 16), torch.randn(batch_size, 16, 32, 32)

    def step() -> None:
        loss = (model(low) - high).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    seconds = _timed(step, repeats) + batch_size / 4 * encode_per_scene
    return Measurement("upsampler", f"step (batch {batch_size}, cached pools)", seconds)


def measure_images(count: int = 8) -> Measurement:

    def write() -> None:
        for i in range(count):
            render(scene_for_index(TRAIN_DATA_SEED, i)[0], 256).save(io.BytesIO(), format="PNG")

    return Measurement("images", "PNG render (256 px)", _timed(write, 1) / count)


def measure(steps: int = 2) -> list[Measurement]:
    encode = measure_encode(1)
    return [
        measure_vae(steps),
        encode,
        measure_images(),
        measure_upsampler(steps, encode_per_scene=encode.seconds),
        *measure_transformer(steps),
    ]


def plan(
    measured: list[Measurement],
    *,
    speedup: float,
    minutes: dict[str, float] | None = None,
    flow: FlowTrainConfig | None = None,
) -> list[StageBudget]:
    """Units (steps, scenes, images) per stage that fit `minutes` at `speedup` x the measured
    speed; the transformer's step is the mean over `flow`'s mix of sizes and T5 lengths."""
    minutes = DEFAULT_MINUTES if minutes is None else minutes
    per_stage: dict[str, tuple[str, float]] = {}
    for m in measured:
        if m.stage != "transformer":
            per_stage[m.stage] = (m.unit, m.seconds)
    transformer = [m for m in measured if m.stage == "transformer"]
    if transformer:
        mix = flow if flow is not None else FlowTrainConfig()
        per_stage["transformer"] = (
            "step (batch 16, training mix)",
            transformer_mix(transformer, mix),
        )
    plans = []
    for stage, budget in minutes.items():
        unit, seconds = per_stage[stage]
        seconds /= speedup
        plans.append(StageBudget(stage, unit, seconds, budget, int(budget * 60 / seconds)))
    return plans


def markdown_table(
    measured: list[Measurement], plans: list[StageBudget], threads: int, speedup: float
) -> str:
    lines = [
        f"| stage | unit | s/unit, {threads} thread(s) | s/unit, est. x{speedup:g} |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {m.stage} | {m.unit} | {m.seconds:.3f} | {m.seconds / speedup:.3f} |" for m in measured
    ]
    lines += ["", "| stage | minutes | units that fit | unit |", "|---|---:|---:|---|"]
    lines += [f"| {p.stage} | {p.minutes:g} | {p.units} | {p.unit} |" for p in plans]
    return "\n".join(lines)
