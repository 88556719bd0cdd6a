"""Helpers for the LSS video pipeline tests: tiny pipelines, call recording, call arguments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from lssgen_core.errors import LSSArgumentError
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig

PROMPT = "a red circle moving left"


def random_upsampler(channels: int = 16, seed: int = 0) -> LatentUpsampler:
    """A random LatentUpsampler of the released layout, at ``channels`` channels."""
    config = UpsamplerConfig(
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(32, 32),
        is_up_samples=(True, False),
        strides=(2, 1),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentUpsampler(config).eval()


@contextmanager
def recorded_inputs(module: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """Every forward call of ``module``: its main input's shape, timestep and keyword inputs."""
    calls: list[dict[str, Any]] = []

    def hook(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        sample = kwargs.get("hidden_states", args[0] if args else None)
        timestep = kwargs.get("timestep")
        calls.append(
            {"shape": tuple(sample.shape), "input": sample, "timestep": timestep, "kwargs": kwargs}
        )

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def video_call(height: int, width: int, frames: int, steps: int, **overrides: Any) -> dict:
    """A call's arguments for a ``frames``-frame video, seed 0, returning numpy frames."""
    return {
        "prompt": PROMPT,
        "height": height,
        "width": width,
        "num_frames": frames,
        "num_inference_steps": steps,
        "generator": torch.Generator().manual_seed(0),
        "output_type": "np",
        **overrides,
    }


def lss_over(pipeline_class: type, stock: Any, **components: Any) -> Any:
    """A quiet ``pipeline_class`` over ``stock``'s components, with ``components`` replaced."""
    pipe = pipeline_class(**{**stock.components, **components})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def assert_one_stage_is_the_stock_call(
    stock: Any, lss: Any, call: dict, one_stage: dict, output_type: str
) -> None:
    """``lss`` planned to one stage gives ``stock``'s frames for ``call``, bit for bit."""
    expected = stock(**call).frames
    got = lss(**{**call, "generator": torch.Generator().manual_seed(0)}, **one_stage).frames
    assert lss.lss_plan is not None and lss.lss_plan.is_single_stage
    if output_type == "latent":
        assert torch.equal(got, expected)
    else:
        assert np.array_equal(got, expected)


def assert_refused_before_any_work(lss: Any, call: dict, argument: str) -> None:
    """A two-stage ``call`` of ``lss`` raises naming ``argument``, before any text encoding or
    denoising."""
    with (
        recorded_inputs(lss.transformer) as calls,
        recorded_inputs(lss.text_encoder) as encoded,
        pytest.raises(LSSArgumentError) as caught,
    ):
        lss(**call, min_size=32, scaling_mode="latent")
    assert caught.value.argument == argument
    assert argument in str(caught.value)
    assert not calls and not encoded


def two_stage_calls(
    lss_class: type,
    stock: Any,
    scaling_mode: str,
    call: dict,
    resnet_input: tuple[int, ...],
    **arguments: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``call`` (square, of ``video_call``) in two stages (``min_size`` half its side) on a
    ``lss_class`` over ``stock`` with a random upsampler, scaling by ``scaling_mode``; check what
    every family's two stages do and return the pipeline and its transformer's recorded inputs.
    The ``"resnet"`` mode runs the upsampler once, on ``resnet_input`` (frames, channels, h, w);
    the others never."""
    upsampler = random_upsampler(resnet_input[1])
    lss = lss_over(lss_class, stock, latent_upsampler=upsampler)
    side = call["height"]
    with recorded_inputs(lss.transformer) as calls, recorded_inputs(upsampler) as scaled:
        frames = lss(**call, min_size=side // 2, scaling_mode=scaling_mode, **arguments).frames
    plan = lss.lss_plan
    assert [(s.height, s.width) for s in plan.stages] == [(side // 2,) * 2, (side,) * 2]
    assert plan.target.start_index > 0  # entered part-way through its schedule
    assert frames.shape == (1, call["num_frames"], side, side, 3)
    assert np.isfinite(frames).all()
    assert [c["shape"] for c in scaled] == ([resnet_input] if scaling_mode == "resnet" else [])
    return lss, calls


def assert_several_videos_per_prompt(lss: Any, call: dict, **prompt_embeds: Any) -> None:
    """Two videos of one prompt given as ``prompt_embeds`` (no guidance), in two stages, make
    two videos of ``call``'s size."""
    frames = lss(
        **{**call, "prompt": None, **prompt_embeds},
        num_videos_per_prompt=2,
        guidance_scale=1.0,
        min_size=call["height"] // 2,
        scaling_mode="latent",
    ).frames
    assert frames.shape == (2, call["num_frames"], call["height"], call["width"], 3)
