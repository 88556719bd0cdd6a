"""Plain vs LSS on a Wan-architecture text-to-video model, paired in one run, vs the cost model.

The model is ``WanTransformer3DModel`` (Wan 2.1's blocks: self-attention over the video tokens,
cross-attention to 512 text tokens, patches 1x2x2) at width 256 (2 heads x 128), 4 blocks,
MLP 1536 (Wan 2.1 1.3B: 1536 wide, 30 blocks, MLP 8960), with random weights, the tiny UMT5 and
VAE of ``lssgen_diffusers.testing_video``, and Wan 2.1's shipped scheduler (UniPC, flow_shift 3).
Setting: 17 frames (5 latent) at 448x256, so 5 x 16 x 28 = 2240 tokens at the target and 560 at
the 224x128 first stage; 20 steps, guidance off (CFG doubles every call in both modes alike), and
``output_type="latent"`` (the decode is the same work in both). Variants: plain (the stock
``WanPipeline``), LSS at the pipeline's defaults (``start_sigma=0.75``, no step shortening), and
LSS with ``shorten_intermediate_steps=True``; the upsampler is a random ``LatentUpsampler`` of the
released 16-channel layout, run per frame.

Each round runs the variants back to back, the order rotating every round; the summary takes the
median over rounds of each round's plain / LSS ratio, in wall time and in this process's CPU time
(with one torch thread the CPU time counts only this work, so it is the figure to read on a
loaded machine), beside the cost model's prediction (``CrossAttentionCost``, whose per-token
terms are checked against torch's FLOP counter in ``tests/video/test_video_cost.py``).

    pytest benchmarks/test_video_speed.py --benchmark-only --benchmark-enable --lss-paired-rounds 3

Timed runs write ``results/video-cpu.json`` (in ``--lss-results``).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from lssgen_core.atomic import write_json_atomic
from lssgen_core.cost import CrossAttentionCost, plan_cost
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_diffusers.testing_video import tiny_wan_pipeline, tiny_wan_transformer
from lssgen_diffusers.wan import LSSWanPipeline

HEADS, HEAD_DIM, LAYERS, FFN, TEXT_TOKENS = 2, 128, 4, 1536, 512
CALL: dict[str, Any] = {
    "prompt": "a red circle moving left",
    "height": 256,
    "width": 448,
    "num_frames": 17,
    "num_inference_steps": 20,
    "guidance_scale": 1.0,
    "output_type": "latent",
    "max_sequence_length": TEXT_TOKENS,
}
VARIANTS: dict[str, dict[str, Any] | None] = {
    "plain": None,
    "lss": {"min_size": 128},
    "lss-shorten": {"min_size": 128, "shorten_intermediate_steps": True},
}
COST = CrossAttentionCost(
    HEADS * HEAD_DIM, LAYERS, FFN, text_tokens=TEXT_TOKENS, patch_features=2 * 16 * 4
)


def _pipelines() -> tuple[Any, LSSWanPipeline]:
    transformer = tiny_wan_transformer(heads=HEADS, head_dim=HEAD_DIM, layers=LAYERS, ffn_dim=FFN)
    stock = tiny_wan_pipeline(transformer=transformer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        upsampler = LatentUpsampler(UpsamplerConfig.released(16)).eval()
    lss = LSSWanPipeline(**stock.components, latent_upsampler=upsampler)
    for pipe in (stock, lss):
        pipe.set_progress_bar_config(disable=True)
    return stock, lss


def _run(stock: Any, lss: LSSWanPipeline, variant: str) -> tuple[float, float, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    arguments = VARIANTS[variant]
    wall, cpu = time.perf_counter(), time.process_time()
    if arguments is None:
        result = stock(**CALL, generator=generator)
    else:
        result = lss(**CALL, **arguments, generator=generator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    latents = result.frames
    if not torch.isfinite(latents).all():
        raise AssertionError(f"{variant} gave a non-finite latent")
    return wall, cpu, latents


def test_video_paired_rounds(
    benchmark: Any, lss_paired_rounds: int, request: pytest.FixtureRequest
) -> None:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time then counts this work alone, however loaded the machine
    try:
        stock, lss = _pipelines()
        times: dict[str, dict[str, list[float]]] = {v: {"wall": [], "cpu": []} for v in VARIANTS}
        shapes: dict[str, tuple[int, ...]] = {}
        plans: dict[str, Any] = {}
        loads: list[float] = []
        rounds = [0]
        names = list(VARIANTS)

        def run() -> None:
            shift = rounds[0] % len(names)
            for variant in names[shift:] + names[:shift]:
                wall, cpu, latents = _run(stock, lss, variant)
                times[variant]["wall"].append(wall)
                times[variant]["cpu"].append(cpu)
                shapes[variant] = tuple(latents.shape)
                if variant != "plain":
                    plans[variant] = lss.lss_plan
            loads.append(os.getloadavg()[0])
            rounds[0] += 1

        benchmark.group = "cpu-wan-video"
        benchmark.pedantic(run, rounds=lss_paired_rounds, warmup_rounds=0, iterations=1)
    finally:
        torch.set_num_threads(previous_threads)
    assert len(set(shapes.values())) == 1, shapes  # every variant at the target size and frames
    for variant, plan in plans.items():
        assert plan is not None and len(plan.stages) == 2, f"{variant} must use LSS"
    if benchmark.stats is None:  # --benchmark-disable: a smoke run, nothing to report
        return
    summary: dict[str, Any] = {
        "setting": {**CALL, "cost_model": repr(COST), "torch_threads": 1},
        "rounds": lss_paired_rounds,
        "load_average_1min_after_each_round": loads,
        "median_s": {v: {k: statistics.median(t[k]) for k in t} for v, t in times.items()},
        "times_s": times,
        "variants": {},
    }
    for variant, plan in plans.items():
        cost = plan_cost(plan, COST)
        ratio = {
            clock: statistics.median(
                p / v for p, v in zip(times["plain"][clock], times[variant][clock])
            )
            for clock in ("wall", "cpu")
        }
        summary["variants"][variant] = {
            "plan": plan.describe(),
            "tokens": [s.num_tokens for s in plan.stages],
            "steps": [s.num_denoising_steps for s in plan.stages],
            "token_steps_ratio": plan.token_steps_ratio(),
            "predicted_speedup": cost.speedup,
            "measured_speedup_wall": ratio["wall"],
            "measured_speedup_cpu": ratio["cpu"],
        }
        print(
            f"\n{variant}: plain / LSS {ratio['wall']:.2f}x wall, {ratio['cpu']:.2f}x CPU; "
            f"predicted {cost.speedup:.2f}x (token-steps {plan.token_steps_ratio():.1%}); "
            f"load {loads}"
        )
    benchmark.extra_info.update(variants=summary["variants"])
    folder = Path(request.config.getoption("--lss-results"))
    write_json_atomic(folder / "video-cpu.json", summary)
