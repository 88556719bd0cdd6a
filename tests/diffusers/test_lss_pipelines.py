"""The five LSS pipelines on tiny offline models: exactness, stages, batching, scaling modes."""

from __future__ import annotations

import io
import re
from collections import Counter
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import numpy as np
import PIL.Image
import pytest
import torch
from lss_testkit import (
    KINDS,
    Pair,
    family_call,
    family_sized,
    latent_call,
    recorded_inputs,
    stage_call,
    step_callback,
)

from lssgen_core.errors import LSSArgumentError
from lssgen_diffusers.flux2_layout import Flux2Layout
from lssgen_diffusers.vae_space import to_model_latents, to_vae_latents

TARGET = 128
MIN_SIZE = 64
STEPS = 8  # enough for every tiny schedule to be entered part-way at start_sigma 0.75


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def stage_key(pair: Pair, shape: tuple[int, ...]) -> tuple[int, ...]:
    """What identifies a stage in a denoiser input: the token count (packed latents) or (h, w)."""
    return shape[1:2] if len(shape) == 3 else shape[-2:]


def stage_keys(pair: Pair) -> list[tuple[int, ...]]:
    """Each stage's key as the denoiser sees it: its token count where it takes tokens (FLUX.2's
    ``latents`` argument is a patch grid the stock call flattens), else its latent (h, w)."""
    keys = [stage_key(pair, pair.lss.lss_packed_shape(1, s)) for s in pair.lss.lss_plan.stages]
    if isinstance(pair.lss, Flux2Layout):
        keys = [(s.num_tokens,) for s in pair.lss.lss_plan.stages]
    return keys


def run(pipe: Any, **kwargs: Any) -> Any:
    return pipe(**latent_call(TARGET, STEPS, **{**family_call(pipe), **kwargs})).images


def target_latent_shape(pair: Pair, batch: int = 1, size: int = TARGET) -> tuple[int, ...]:
    """The stock ``output_type="latent"`` shape at ``size`` (the family's output view)."""
    one_stage = {"height": size, "width": size, "start_sigma": 1.0, **pair.call}
    plan = pair.lss.lss_plan_for(num_inference_steps=STEPS, **one_stage)
    return tuple(pair.lss.lss_output_shape(batch, plan.target))


@pytest.fixture(params=KINDS)
def pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    return lss_pair(request.param)


@pytest.mark.parametrize(
    "single_stage",
    [{"start_sigma": 1.0}, {"min_size": TARGET}],
    ids=["start_sigma=1", "min_size=target"],
)
@pytest.mark.parametrize("negative", [False, True], ids=["prompt", "negative_prompt"])
def test_single_stage_equals_stock(pair: Pair, single_stage: dict, negative: bool) -> None:
    extra = pair.negative if negative else {}
    expected = run(pair.stock, **extra)
    got = run(pair.lss, **extra, **single_stage)
    assert torch.equal(got, expected)
    assert pair.lss.lss_plan.is_single_stage


@pytest.mark.parametrize("negative", [False, True], ids=["prompt", "negative_prompt"])
def test_first_stage_equals_stock_at_its_size(pair: Pair, negative: bool) -> None:
    # The prompt is encoded once before the stages; the first stage must still be the stock run.
    extra = pair.negative if negative else {}
    seen: list[torch.Tensor] = []

    def keep(pipe: Any, step: int, latents: torch.Tensor) -> None:
        seen.append(latents.clone())

    run(pair.lss, min_size=MIN_SIZE, **step_callback(pair, keep), **extra)
    first = pair.lss.lss_plan.stages[0]
    lss_seen, seen = seen[: first.num_denoising_steps], []
    # The stock run's latents as its own step callback sees them (the denoiser's view: FLUX.2
    # [klein]'s output_type="latent" is another one).
    with family_sized(pair.stock, first.height, first.width):
        run(
            pair.stock,
            **stage_call(first),
            **step_callback(pair, keep),
            **extra,
        )
    assert len(seen) == len(lss_seen)
    assert torch.equal(lss_seen[-1], seen[-1])


def test_two_stages_give_target_size_outputs(pair: Pair) -> None:
    latents = run(pair.lss, min_size=MIN_SIZE)
    assert len(pair.lss.lss_plan.stages) == 2
    assert tuple(latents.shape) == target_latent_shape(pair)
    assert torch.isfinite(latents).all()
    (image,) = run(pair.lss, min_size=MIN_SIZE, output_type="pil")
    assert isinstance(image, PIL.Image.Image)
    assert image.size == (TARGET, TARGET)
    array = run(pair.lss, min_size=MIN_SIZE, output_type="np")
    assert isinstance(array, np.ndarray)
    assert array.shape == (1, TARGET, TARGET, 3)


def test_output_type_pt(lss_pair: Any) -> None:
    images = run(lss_pair("sd3").lss, min_size=MIN_SIZE, output_type="pt")
    assert isinstance(images, torch.Tensor)
    assert tuple(images.shape) == (1, 3, TARGET, TARGET)


def test_denoiser_calls_and_callbacks_follow_plan(pair: Pair) -> None:
    steps: list[tuple[int, int]] = []

    def count(pipe: Any, step: int, latents: torch.Tensor) -> None:
        steps.append((pipe.lss_stage.index, step))

    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=MIN_SIZE, **step_callback(pair, count))
    plan = pair.lss.lss_plan
    per_stage = Counter(stage_key(pair, call["shape"]) for call in calls)
    expected = {
        key: stage.num_denoising_steps * pair.calls_per_step
        for key, stage in zip(stage_keys(pair), plan.stages)
    }
    assert dict(per_stage) == expected
    assert plan.target.start_index > 0  # entered part-way through its schedule
    # The step callback: once per denoising step over all stages, counting from 0 per stage.
    assert steps == [(s.index, i) for s in plan.stages for i in range(s.num_denoising_steps)]
    assert pair.lss.lss_stage is None  # only while running


def test_one_progress_bar_over_all_stages(pair: Pair) -> None:
    stream = io.StringIO()
    pair.lss.set_progress_bar_config(file=stream, ascii=True, mininterval=0, disable=False)
    try:
        run(pair.lss, min_size=MIN_SIZE)
    finally:
        pair.lss.set_progress_bar_config(disable=True)
    counts = [(int(n), int(total)) for n, total in re.findall(r"(\d+)/(\d+) \[", stream.getvalue())]
    total = pair.lss.lss_plan.num_denoising_steps
    assert counts
    assert {t for _, t in counts} == {total}
    assert counts[-1] == (total, total)


def test_images_do_not_depend_on_the_batch(pair: Pair) -> None:
    together = run(
        pair.lss, min_size=MIN_SIZE, num_images_per_prompt=2, generator=[seeded(1), seeded(2)]
    )
    assert tuple(together.shape) == target_latent_shape(pair, batch=2)
    for index, seed in enumerate((1, 2)):
        alone = run(pair.lss, min_size=MIN_SIZE, generator=seeded(seed))
        torch.testing.assert_close(together[index : index + 1], alone, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(together[0], together[1])


def test_scaling_modes_run_and_differ(pair: Pair) -> None:
    results = {
        mode: run(pair.lss, min_size=MIN_SIZE, scaling_mode=mode) for mode in ("resnet", "latent")
    }
    with recorded_inputs(pair.lss.vae.encoder) as encodes:
        results["pixel"] = run(pair.lss, min_size=MIN_SIZE, scaling_mode="pixel")
    assert len(encodes) == len(pair.lss.lss_plan.stages) - 1  # one VAE encode per transition
    for mode, latents in results.items():
        assert tuple(latents.shape) == target_latent_shape(pair), mode
        assert torch.isfinite(latents).all(), mode
    modes = list(results)
    for i, first in enumerate(modes):
        for second in modes[i + 1 :]:
            assert not torch.allclose(results[first], results[second]), (first, second)


def test_three_stages_on_flux(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, height=256, width=256, min_size=MIN_SIZE)
    plan = pair.lss.lss_plan
    assert [s.height for s in plan.stages] == [64, 128, 256]
    assert tuple(latents.shape) == target_latent_shape(pair, size=256)
    per_stage = Counter(stage_key(pair, call["shape"]) for call in calls)
    assert [per_stage[key] for key in stage_keys(pair)] == [
        s.num_denoising_steps for s in plan.stages
    ]


def test_sdxl_time_ids_follow_the_stage_size(lss_pair: Any) -> None:
    pair = lss_pair("sdxl")
    with recorded_inputs(pair.denoiser) as calls:
        run(pair.lss, min_size=MIN_SIZE)
    for call in calls:
        pixels = call["shape"][-1] * pair.lss.vae_scale_factor
        time_ids = call["kwargs"]["added_cond_kwargs"]["time_ids"]
        expected = torch.tensor([pixels, pixels, 0, 0, pixels, pixels], dtype=time_ids.dtype)
        assert torch.equal(time_ids, expected.expand_as(time_ids))


def test_interrupt_stops_the_later_stages(lss_pair: Any) -> None:
    pair = lss_pair("flux")

    def stop(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        pipe._interrupt = True
        return tensors

    with recorded_inputs(pair.denoiser) as calls:
        latents = run(pair.lss, min_size=MIN_SIZE, callback_on_step_end=stop)
    assert len(calls) == 1
    # The call stops in the first stage and returns its latent (as stock returns the current one).
    assert tuple(latents.shape) == target_latent_shape(pair, size=MIN_SIZE)


def test_plan_is_exposed_and_describes_itself(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    run(pipe, min_size=MIN_SIZE, shorten_intermediate_steps=False, min_resolution=None)
    text = pipe.lss_plan.describe()
    assert "128x128" in text and "64x64" in text
    assert [s.num_steps for s in pipe.lss_plan.stages] == [STEPS, STEPS]
    run(pipe, min_resolution=MIN_SIZE)  # the alias; FLUX shortens by default
    assert [s.num_steps for s in pipe.lss_plan.stages] == [STEPS // 2, STEPS]


@pytest.mark.parametrize(
    "config",
    [
        {"scaling_factor": 0.3611, "shift_factor": 0.1159},
        {"scaling_factor": 0.13025, "shift_factor": None},
        {
            "scaling_factor": 0.5,
            "latents_mean": [0.1, -0.2, 0.3, 0.0],
            "latents_std": [1.1, 0.9, 1.0, 1.2],
        },
    ],
    ids=["flux", "sdxl", "playground"],
)
def test_pixel_mode_normalises_like_the_pipelines(config: dict) -> None:
    vae = SimpleNamespace(config=SimpleNamespace(**config))
    model = torch.randn(2, 4, 3, 3, generator=seeded())
    raw = to_vae_latents(vae, model)
    if "latents_mean" in config:
        mean = torch.tensor(config["latents_mean"]).view(1, 4, 1, 1)
        std = torch.tensor(config["latents_std"]).view(1, 4, 1, 1)
        expected = model * std / config["scaling_factor"] + mean  # the SDXL pipeline's decode
    else:
        expected = model / config["scaling_factor"] + (config["shift_factor"] or 0.0)
    torch.testing.assert_close(raw, expected)
    torch.testing.assert_close(to_model_latents(vae, raw), model)


def test_text_encoders_run_once_per_call(pair: Pair) -> None:
    extra = pair.negative
    counts = []
    for pipe, lss_args in ((pair.stock, {}), (pair.lss, {"min_size": MIN_SIZE})):
        with ExitStack() as stack:
            calls = [stack.enter_context(recorded_inputs(m)) for m in pair.text_encoders]
            run(pipe, num_inference_steps=2, **extra, **lss_args)
        counts.append([len(c) for c in calls])
    stock_counts, lss_counts = counts
    assert len(pair.lss.lss_plan.stages) == 2
    assert lss_counts == stock_counts


def test_flux_stock_arguments_reach_every_stage(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    with (
        recorded_inputs(pair.lss.text_encoder_2) as encodes,
        recorded_inputs(pair.denoiser) as calls,
    ):
        run(
            pair.lss,
            min_size=MIN_SIZE,
            max_sequence_length=48,
            guidance_scale=2.5,
            joint_attention_kwargs={},
        )
    assert [call["shape"] for call in encodes] == [(1, 48)]
    assert {call["kwargs"]["encoder_hidden_states"].shape[1] for call in calls} == {48}
    assert {float(call["kwargs"]["guidance"][0]) for call in calls} == {2.5}


@pytest.mark.parametrize(
    "size", [{"height": 4}, {"width": -16}, {"height": "128"}], ids=["tiny", "negative", "text"]
)
def test_bad_sizes_are_refused_before_any_model_runs(pair: Pair, size: dict[str, Any]) -> None:
    with ExitStack() as stack:
        calls = [
            stack.enter_context(recorded_inputs(m)) for m in [pair.denoiser, *pair.text_encoders]
        ]
        with pytest.raises(LSSArgumentError) as refused:
            run(pair.lss, min_size=MIN_SIZE, **size)
    (argument,) = size
    assert refused.value.argument == argument
    assert argument in str(refused.value)
    assert all(recorded == [] for recorded in calls)
