"""LSS pipelines keep the stock pipeline's contracts: signature, interrupts, cache hooks, variants,
size rounding, guidance changed by callbacks, ``num_timesteps`` and components."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
import torch
from diffusers.callbacks import SD3CFGCutoffCallback, SDCFGCutoffCallback, SDXLCFGCutoffCallback
from diffusers.hooks import (
    FasterCacheConfig,
    FirstBlockCacheConfig,
    HookRegistry,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    SeaCacheConfig,
    TaylorSeerCacheConfig,
    TextKVCacheConfig,
)
from diffusers.utils import logging as diffusers_logging
from hypothesis import given, settings
from hypothesis import strategies as st
from lss_testkit import (
    KINDS,
    LSS_CLASSES,
    PROMPT,
    STEP_CALLBACK_KINDS,
    Pair,
    cache_enabled,
    family_sized,
    latent_call,
    random_upsampler,
    recorded_inputs,
    stage_call,
)

from lssgen_diffusers import LSSFluxPipeline
from lssgen_diffusers.registry import FAMILIES
from lssgen_diffusers.testing import tiny_pipeline

TARGET = 128
MIN_SIZE = 64
STEPS = 8


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def arguments(**overrides: Any) -> dict[str, Any]:
    return latent_call(TARGET, STEPS, **overrides)


@pytest.fixture(params=KINDS)
def pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    return lss_pair(request.param)


@pytest.fixture(params=STEP_CALLBACK_KINDS)
def callback_pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    """The families whose stock call has callback_on_step_end, interrupts and num_timesteps."""
    return lss_pair(request.param)


# Lumina 2's stock loop checks no interrupt (its own test shows LSS ignores it too).
INTERRUPT_KINDS = tuple(
    kind
    for kind in STEP_CALLBACK_KINDS
    if hasattr(getattr(diffusers, FAMILIES[kind].stock_class), "interrupt")
)


@pytest.fixture(params=INTERRUPT_KINDS)
def interrupt_pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    """The callback families whose stock loop stops when a callback sets ``_interrupt``."""
    return lss_pair(request.param)


# --- 1. the signature ------------------------------------------------------------------------


def test_call_signature_is_the_stock_one_plus_the_lss_keywords(pair: Pair) -> None:
    stock = inspect.signature(pair.stock.__call__).parameters
    lss = inspect.signature(pair.lss.__call__).parameters
    defaults = pair.lss.lss_defaults
    expected_lss = {
        "start_sigma": 0.75,
        "min_size": defaults.min_size,
        "min_resolution": None,
        "shorten_intermediate_steps": defaults.shorten_intermediate_steps,
        "scaling_mode": "resnet",
        "entry_rule": "sigma",
    }
    for name in ("prompt", "height", "guidance_scale", "num_images_per_prompt"):
        assert name in lss, name
    if "callback_on_step_end" in stock:  # PixArt-Sigma's stock call has only `callback`
        assert "callback_on_step_end" in lss and "callback_on_step_end_tensor_inputs" in lss
    if "ip_adapter_image" in stock:
        assert "ip_adapter_image" in lss
    stock_plain = [n for n, p in stock.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert list(lss)[: len(stock_plain)] == stock_plain  # same order: positional calls work
    for name in stock_plain:
        assert lss[name].kind is stock[name].kind, name
        assert lss[name].default == stock[name].default, name
        assert lss[name].annotation == stock[name].annotation, name
    for name, default in expected_lss.items():
        assert lss[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert lss[name].default == default, name
    kinds = [p.kind for p in lss.values()]
    if inspect.Parameter.VAR_KEYWORD in [p.kind for p in stock.values()]:
        assert kinds[-1] is inspect.Parameter.VAR_KEYWORD  # SDXL's deprecated callback kwargs
    doc = pair.lss.__call__.__doc__
    assert pair.stock.__call__.__doc__.strip() in doc
    assert "LSS arguments" in doc and "start_sigma" in doc


def test_positional_call_matches_the_keyword_call(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    names = list(inspect.signature(pipe.__call__).parameters)
    values = {"prompt": PROMPT, "height": TARGET, "width": TARGET, "num_inference_steps": STEPS}
    count = max(names.index(n) for n in values) + 1
    defaults = inspect.signature(pipe.__call__).parameters
    positional = [values.get(n, defaults[n].default) for n in names[:count]]
    rest = {"generator": seeded(), "output_type": "latent", "min_size": MIN_SIZE}
    by_position = pipe(*positional, **rest).images
    assert len(pipe.lss_plan.stages) == 2
    by_name = pipe(**arguments(min_size=MIN_SIZE)).images
    assert torch.equal(by_position, by_name)


def test_min_size_sent_back_as_the_shown_default_acts_as_the_default(lss_pair: Any) -> None:
    # A form built from the signature sends SDXL's shown min_size=1024 for a 128 px image.
    pair = lss_pair("sdxl")
    shown = inspect.signature(pair.lss.__call__).parameters["min_size"].default
    assert shown == pair.lss.lss_defaults.min_size == 1024
    got = pair.lss(**arguments(min_size=1024)).images
    assert pair.lss.lss_plan.is_single_stage
    assert torch.equal(got, pair.stock(**arguments()).images)


# --- 2. interrupting an early stage ----------------------------------------------------------


def interrupt_at(step: int) -> Callable[..., dict]:
    def stop(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        if index == step:
            pipe._interrupt = True
        return tensors

    return stop


@pytest.mark.parametrize("output_type", ["latent", "np"])
def test_interrupting_an_early_stage_returns_what_stock_returns_at_that_stage(
    interrupt_pair: Pair, output_type: str
) -> None:
    pair = interrupt_pair
    with recorded_inputs(pair.denoiser) as calls:
        got = pair.lss(
            **arguments(
                min_size=MIN_SIZE,
                output_type=output_type,
                return_dict=False,
                callback_on_step_end=interrupt_at(1),
                **pair.call,
            )
        )
    plan = pair.lss.lss_plan
    first = plan.stages[0]
    assert len(plan.stages) == 2
    # Stock semantics: the loop stops and the current latent is decoded as asked, here the first
    # stage's latent at the first stage's size.
    per_step = pair.calls_per_step
    assert len(calls) == 2 * per_step
    assert pair.lss.interrupt  # as after an interrupted stock call
    with family_sized(pair.stock, first.height, first.width):
        expected = pair.stock(
            **arguments(
                **stage_call(first),
                output_type=output_type,
                return_dict=False,
                callback_on_step_end=interrupt_at(1),
                **pair.call,
            )
        )
    assert isinstance(got, tuple) and len(got) == len(expected)
    if output_type == "np":
        assert got[0].shape == (1, first.height, first.width, 3)
        np.testing.assert_array_equal(got[0], expected[0])
    else:
        assert torch.equal(got[0], expected[0])


def test_interrupted_call_returns_an_output_object_when_asked(lss_pair: Any) -> None:
    pipe = lss_pair("sd3").lss
    stop = interrupt_at(0)
    output = pipe(**arguments(min_size=MIN_SIZE, output_type="pil", callback_on_step_end=stop))
    assert output.images[0].size == (MIN_SIZE, MIN_SIZE)
    # The next call is not interrupted.
    assert pipe(**arguments(min_size=MIN_SIZE)).images.shape[-1] == TARGET // 8


# --- 3. cache hooks ----------------------------------------------------------------------------

CACHE_KINDS = ("flux", "cogview4")  # the denoisers with Diffusers' CacheMixin


def cache_configs(kind: str, pipe: Any) -> dict[str, Any]:
    """Every cache Diffusers 0.42 offers through ``enable_cache`` that the tiny ``kind`` model
    takes (FirstBlockCache does not support CogView4's blocks: ``enable_cache`` fails in
    Diffusers itself); MagCache and FasterCache skipping at an entry are refused (tests below)."""

    def timestep() -> Any:
        return pipe.current_timestep

    first_block = {"FirstBlockCache": FirstBlockCacheConfig(threshold=10.0)}
    return {
        **(first_block if kind == "flux" else {}),
        "PyramidAttentionBroadcast": PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_timestep_skip_range=(-1, 1001),
            current_timestep_callback=timestep,
        ),
        "TaylorSeer": TaylorSeerCacheConfig(cache_interval=2, disable_cache_before_step=1),
        "SeaCache": SeaCacheConfig(),
        "TextKVCache": TextKVCacheConfig(),
        "FasterCache (outside the entries)": FasterCacheConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_timestep_skip_range=(-1, 200),
            current_timestep_callback=timestep,
            is_guidance_distilled=True,
        ),
    }


@contextmanager
def event_log(pipe: Any, denoiser: Any) -> Iterator[list[tuple[str, int]]]:
    """("forward", stage) per denoiser call and ("reset", stage) per stateful-hook reset."""
    events: list[tuple[str, int]] = []
    original = HookRegistry.reset_stateful_hooks

    def reset(self: Any, recurse: bool = True) -> None:
        stage = pipe.lss_stage
        events.append(("reset", -1 if stage is None else stage.index))
        original(self, recurse)

    def forward(*_: Any, **__: Any) -> None:
        events.append(("forward", pipe.lss_stage.index))

    HookRegistry.reset_stateful_hooks = reset  # type: ignore[method-assign]
    handle = denoiser.register_forward_pre_hook(forward, with_kwargs=True)
    try:
        yield events
    finally:
        handle.remove()
        HookRegistry.reset_stateful_hooks = original  # type: ignore[method-assign]


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_cache_hooks_run_across_stages_and_reset_at_each_stage_change(
    lss_pair: Any, kind: str
) -> None:
    pair = lss_pair(kind)
    # Stock CogView4 with PyramidAttentionBroadcast fails under CFG (the cached attention output
    # of the conditional pass meets the shorter negative prompt), so CogView4 runs unguided here.
    unguided = {"guidance_scale": 1.0} if kind == "cogview4" else {}
    shape = pair.stock(**arguments()).images.shape
    for name, config in cache_configs(kind, pair.lss).items():
        with cache_enabled(pair.denoiser, config), event_log(pair.lss, pair.denoiser) as events:
            latents = pair.lss(**arguments(min_size=MIN_SIZE, **unguided)).images
        assert torch.isfinite(latents).all(), name
        assert latents.shape == shape, name
        last_first_stage = max(i for i, e in enumerate(events) if e == ("forward", 0))
        first_last_stage = events.index(("forward", 1))
        between = events[last_first_stage:first_last_stage]
        assert ("reset", 0) in between, (name, events)


def test_first_block_cache_does_not_reuse_a_residual_from_the_previous_stage(
    lss_pair: Any,
) -> None:
    # With an enormous threshold every step after the first reuses the cached residual; the first
    # step of the second stage must run every block, since its cache was emptied.
    pair = lss_pair("flux")
    head_block = pair.denoiser.transformer_blocks[0]
    # A module inside the last block: the block's own pre-hooks run even when the cache skips it.
    tail_block = pair.denoiser.single_transformer_blocks[-1].proj_out
    with (
        cache_enabled(pair.denoiser, FirstBlockCacheConfig(threshold=1e9)),
        recorded_inputs(tail_block) as tail,
        recorded_inputs(head_block) as head,
    ):
        pair.lss(**arguments(min_size=MIN_SIZE))
    assert len(head) == pair.lss.lss_plan.num_denoising_steps  # the first block always runs
    # The rest ran once per stage: at the first step of each (the second stage's from scratch).
    assert len(tail) == 2
    assert tail[0]["shape"] != tail[1]["shape"]


def faster_cache_inside_the_entry(pipe: Any) -> FasterCacheConfig:
    # The stock call starts at t=1000, outside the range; the later stage enters inside it.
    return FasterCacheConfig(
        spatial_attention_block_skip_range=2,
        spatial_attention_timestep_skip_range=(-1, 901),
        current_timestep_callback=lambda: pipe.current_timestep,
        is_guidance_distilled=True,
    )


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_faster_cache_skipping_at_a_stage_entry_is_refused_before_any_work(
    lss_pair: Any, kind: str
) -> None:
    pair = lss_pair(kind)
    unguided = {"guidance_scale": 1.0} if kind == "cogview4" else {}  # see the test above
    with cache_enabled(pair.denoiser, faster_cache_inside_the_entry(pair.lss)):
        with (
            recorded_inputs(pair.denoiser) as calls,
            pytest.raises(ValueError, match=r"FasterCache.*timestep_skip_range.*stage 1"),
        ):
            pair.lss(**arguments(min_size=MIN_SIZE, **unguided))
        assert calls == []
        # One stage is the stock pipeline, cache and all.
        got = pair.lss(**arguments(start_sigma=1.0, **unguided)).images
    with cache_enabled(pair.denoiser, faster_cache_inside_the_entry(pair.stock)):
        expected = pair.stock(**arguments(**unguided)).images
    assert torch.equal(got, expected)


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_mag_cache_is_refused_with_several_stages(lss_pair: Any, kind: str) -> None:
    pair = lss_pair(kind)
    config = MagCacheConfig(mag_ratios=[1.0] * STEPS, num_inference_steps=STEPS)
    with cache_enabled(pair.denoiser, config):
        with (
            recorded_inputs(pair.denoiser) as calls,
            pytest.raises(ValueError, match=r"MagCache.*one schedule"),
        ):
            pair.lss(**arguments(min_size=MIN_SIZE))
        assert calls == []
        assert torch.isfinite(pair.lss(**arguments(start_sigma=1.0)).images).all()


def test_a_cache_not_known_to_work_across_stages_is_refused(lss_pair: Any) -> None:
    @dataclasses.dataclass
    class FutureCacheConfig:
        threshold: float = 0.1

    pair = lss_pair("flux")
    pair.denoiser._cache_config = FutureCacheConfig()  # as enable_cache records a config
    try:
        with (
            recorded_inputs(pair.denoiser) as calls,
            pytest.raises(ValueError, match=r"FutureCacheConfig\) is not known to work across"),
        ):
            pair.lss(**arguments(min_size=MIN_SIZE))
        assert calls == []
    finally:
        pair.denoiser._cache_config = None


# --- 4. variants -------------------------------------------------------------------------------


def test_save_and_load_a_variant_keep_the_upsampler_variant(tmp_path: Path) -> None:
    stock = tiny_pipeline("flux")
    plain = random_upsampler(16, seed=1)
    half = random_upsampler(16, seed=2).to(torch.float16)
    LSSFluxPipeline(**stock.components, latent_upsampler=plain).save_pretrained(tmp_path)
    LSSFluxPipeline(**stock.components, latent_upsampler=half).save_pretrained(
        tmp_path, variant="fp16"
    )
    folder = tmp_path / "latent_upsampler"
    assert (folder / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "transformer" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert json.loads((folder / "config.json").read_text())["in_channels"] == 16

    for variant, expected in ((None, plain), ("fp16", half)):
        loaded = LSSFluxPipeline.from_pretrained(tmp_path, variant=variant).latent_upsampler
        for name, tensor in expected.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor), (variant, name)


def test_a_variant_the_upsampler_lacks_loads_its_plain_weights(tmp_path: Path) -> None:
    # As Diffusers does for a pipeline component saved without that variant.
    stock = tiny_pipeline("flux")
    stock.save_pretrained(tmp_path, variant="fp16")
    upsampler = random_upsampler(16, seed=4)
    upsampler.save_pretrained(tmp_path / "latent_upsampler")
    loaded = LSSFluxPipeline.from_pretrained(tmp_path, variant="fp16").latent_upsampler
    for name, tensor in upsampler.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


# --- 5. sizes the stock pipeline rounds -------------------------------------------------------


@contextmanager
def diffusers_warnings() -> Iterator[list[str]]:
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    root = diffusers_logging.get_logger("diffusers")
    root.addHandler(handler)
    try:
        yield messages
    finally:
        root.removeHandler(handler)


def test_flux_rounds_sizes_as_stock_does_before_planning(lss_pair: Any) -> None:
    pair = lss_pair("flux")
    with diffusers_warnings() as stock_warnings:
        expected = pair.stock(**arguments(height=135, width=140, output_type="np")).images
    with diffusers_warnings() as lss_warnings:
        got = pair.lss(
            **arguments(height=135, width=140, output_type="np", min_size=MIN_SIZE)
        ).images
    assert [s.height for s in pair.lss.lss_plan.stages] == [64, 128]
    assert got.shape == expected.shape == (1, 128, 128, 3)
    rounding = [m for m in stock_warnings if "divisible by 16" in m]
    assert rounding and rounding == [m for m in lss_warnings if "divisible by 16" in m]
    rounded = pair.lss(**arguments(height=128, width=128, output_type="np", min_size=MIN_SIZE))
    np.testing.assert_array_equal(got, rounded.images)


@settings(max_examples=60, deadline=None)
@given(height=st.integers(16, 2100), width=st.integers(16, 2100))
def test_flux_plans_the_size_the_stock_pipeline_makes(
    lss_pair: Any, height: int, width: int
) -> None:
    pair = lss_pair("flux")
    target = pair.lss.lss_plan_for(height=height, width=width, start_sigma=1.0).target
    # The stock latent grid for this request (latents given: nothing is drawn).
    _, ids = pair.stock.prepare_latents(
        1, 16, height, width, torch.float32, "cpu", None, torch.empty(0)
    )
    rows, columns = int(ids[:, 1].max()) + 1, int(ids[:, 2].max()) + 1
    assert (target.latent_height, target.latent_width) == (2 * rows, 2 * columns)
    assert (target.height, target.width) == (16 * rows, 16 * columns)
    assert height - 16 < target.height <= height and width - 16 < target.width <= width


def test_a_rounded_size_no_stage_plan_accepts_is_refused_naming_the_rounding(
    lss_pair: Any,
) -> None:
    pair = lss_pair("flux")
    with (
        recorded_inputs(pair.denoiser) as calls,
        pytest.raises(ValueError, match=r"width=57 .*rounds.* to 48.*multiple of 32"),
    ):
        pair.lss(**arguments(height=64, width=57, min_size=24))
    assert calls == []


# --- 6. guidance changed by a callback --------------------------------------------------------

CUTOFF_CALLBACKS = {
    "sd": SDCFGCutoffCallback,
    "sdxl": SDXLCFGCutoffCallback,
    "sd3": SD3CFGCutoffCallback,
}


def guidance_off_after(step: int) -> Callable[..., dict]:
    def cut(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
        if pipe.lss_stage.index == 0 and index == step:
            pipe._guidance_scale = 1.0
        return tensors

    return cut


@pytest.mark.parametrize("kind", [*CUTOFF_CALLBACKS, "cogview4"])
def test_guidance_a_callback_turns_off_stays_off_in_later_stages(lss_pair: Any, kind: str) -> None:
    pair = lss_pair(kind)
    if kind in CUTOFF_CALLBACKS:
        callback: Any = CUTOFF_CALLBACKS[kind](cutoff_step_ratio=None, cutoff_step_index=1)
        tensor_inputs = callback.tensor_inputs
    else:
        callback, tensor_inputs = guidance_off_after(1), ["latents"]
    with recorded_inputs(pair.denoiser) as calls:
        pair.lss(
            **arguments(
                min_size=MIN_SIZE,
                guidance_scale=5.0,
                negative_prompt="blurry",
                callback_on_step_end=callback,
                callback_on_step_end_tensor_inputs=tensor_inputs,
            )
        )
    plan = pair.lss.lss_plan
    first, last = plan.stages
    latent = last.latent_height
    in_last = [c["shape"][0] for c in calls if c["shape"][-1] == latent]
    in_first = [c["shape"][0] for c in calls if c["shape"][-1] != latent]
    per_step = 2 if kind == "cogview4" else 1  # CogView4 runs the two branches separately
    guided = 2 if kind != "cogview4" else 1
    # Steps 0 and 1 of the first stage are guided; from then on (the whole last stage) not.
    assert in_first[: 2 * per_step] == [guided] * (2 * per_step)
    assert in_first[2 * per_step :] == [1] * (first.num_denoising_steps - 2)
    assert in_last == [1] * last.num_denoising_steps
    assert pair.lss.guidance_scale in (0.0, 1.0)
    assert not pair.lss.do_classifier_free_guidance


def test_flux_guidance_attribute_set_by_a_callback_holds_across_stages(lss_pair: Any) -> None:
    pipe = lss_pair("flux").lss
    seen: list[tuple[int, float]] = []

    def lower(p: Any, index: int, timestep: Any, tensors: dict) -> dict:
        seen.append((p.lss_stage.index, p.guidance_scale))
        p._guidance_scale = 1.5
        return tensors

    pipe(**arguments(min_size=MIN_SIZE, guidance_scale=3.5, callback_on_step_end=lower))
    assert seen[0] == (0, 3.5)
    assert all(scale == 1.5 for _, scale in seen[1:])
    assert {stage for stage, _ in seen} == {0, 1}


# --- 7. num_timesteps ---------------------------------------------------------------------------


def test_num_timesteps_is_the_calls_total(callback_pair: Pair) -> None:
    pair = callback_pair
    pair.lss(**arguments(min_size=MIN_SIZE, **pair.call))
    plan = pair.lss.lss_plan
    assert len(plan.stages) == 2
    assert pair.lss.num_timesteps == plan.num_denoising_steps
    assert pair.lss.num_timesteps == sum(s.num_denoising_steps for s in plan.stages)
    pair.lss(**arguments(start_sigma=1.0, **pair.call))
    pair.stock(**arguments(**pair.call))
    assert pair.lss.num_timesteps == pair.stock.num_timesteps == STEPS


def test_callbacks_see_the_running_stages_step_count(lss_pair: Any) -> None:
    pipe = lss_pair("sd3").lss
    seen: list[tuple[int, int]] = []

    def keep(p: Any, index: int, timestep: Any, tensors: dict) -> dict:
        seen.append((p.lss_stage.index, p.num_timesteps))
        return tensors

    pipe(**arguments(min_size=MIN_SIZE, callback_on_step_end=keep))
    counts = {s.index: s.num_denoising_steps for s in pipe.lss_plan.stages}
    assert all(count == counts[stage] for stage, count in seen)


# --- components ---------------------------------------------------------------------------------


def test_components_move_between_stock_and_lss_classes(pair: Pair) -> None:
    lss_class = LSS_CLASSES[pair.kind]
    stock_class = type(pair.stock)
    from_stock = lss_class(**pair.stock.components)
    assert from_stock.latent_upsampler is None
    assert set(from_stock.components) == {*pair.stock.components, "latent_upsampler"}
    back = stock_class(**{k: v for k, v in pair.lss.components.items() if k != "latent_upsampler"})
    assert set(back.components) == set(pair.stock.components)
    back.set_progress_bar_config(disable=True)
    assert torch.equal(back(**arguments()).images, pair.stock(**arguments()).images)
    via_from_pipe = stock_class.from_pipe(pair.lss)
    assert type(via_from_pipe) is stock_class
    assert set(via_from_pipe.components) == set(pair.stock.components)
