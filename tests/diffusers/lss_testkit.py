"""Helpers for the LSS adapter tests: tiny LSS pipelines over stock ones, call recording."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import torch

import lssgen_diffusers as lss
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig

PROMPT = "a red circle left of a blue square"
KINDS = ("flux", "sd3", "sdxl", "sd", "cogview4")

LSS_CLASSES: dict[str, type] = {
    "flux": lss.LSSFluxPipeline,
    "sd3": lss.LSSStableDiffusion3Pipeline,
    "sdxl": lss.LSSStableDiffusionXLPipeline,
    "sd": lss.LSSStableDiffusionPipeline,
    "cogview4": lss.LSSCogView4Pipeline,
}


@attrs.frozen
class Pair:
    """A stock tiny pipeline and the LSS pipeline sharing its components."""

    kind: str
    stock: Any
    lss: Any

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.lss.unet if hasattr(self.lss, "unet") else self.lss.transformer

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        names = ("text_encoder", "text_encoder_2", "text_encoder_3")
        return [getattr(self.lss, n) for n in names if getattr(self.lss, n, None) is not None]


def random_upsampler(channels: int, seed: int = 0) -> LatentUpsampler:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentUpsampler(UpsamplerConfig.released(channels)).eval()


def lss_from_stock(kind: str, stock: Any, **components: Any) -> Any:
    """An LSS pipeline over ``stock``'s components (some replaced), with a random upsampler."""
    parts = dict(stock.components)
    parts.setdefault("latent_upsampler", random_upsampler(stock.vae.config.latent_channels))
    parts.update(components)
    pipe = LSS_CLASSES[kind](**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextmanager
def recorded_inputs(module: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """Record every forward call of ``module``: its main input's shape and its keyword inputs."""
    calls: list[dict[str, Any]] = []

    def hook(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        sample = kwargs.get("hidden_states", kwargs.get("sample", args[0] if args else None))
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        calls.append({"shape": tuple(sample.shape), "timestep": timestep, "kwargs": kwargs})

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def latent_call(size: int, steps: int, **overrides: Any) -> dict[str, Any]:
    """A call's arguments at ``size`` x ``size`` and ``steps`` returning latents, seed 0."""
    return {
        "prompt": PROMPT,
        "height": size,
        "width": size,
        "num_inference_steps": steps,
        "generator": torch.Generator().manual_seed(0),
        "output_type": "latent",
        **overrides,
    }


@contextmanager
def cache_enabled(denoiser: Any, config: Any) -> Iterator[None]:
    """``denoiser.enable_cache(config)`` for the block, then disabled again."""
    denoiser.enable_cache(config)
    try:
        yield
    finally:
        denoiser.disable_cache()
