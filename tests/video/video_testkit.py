"""Helpers for the LSS video pipeline tests: tiny pipelines, call recording, call arguments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

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
