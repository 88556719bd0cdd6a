"""Helpers for the LSS adapter tests: tiny LSS pipelines over stock ones, call recording."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import attrs
import pytest
import torch

import lssgen_diffusers as lss
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_core.upsample.config import RELEASED_WIDTHS
from lssgen_diffusers.registry import FAMILIES
from lssgen_diffusers.testing import TINY_FAMILIES

PROMPT = "a red circle left of a blue square"
# Every family of the registry: the parametrised tests grow by registry entry.
KINDS = tuple(FAMILIES)

LSS_CLASSES: dict[str, type] = {kind: getattr(lss, f.lss_class) for kind, f in FAMILIES.items()}
# The families whose stock call has callback_on_step_end (the stock contracts the conformance
# tests check run through it).
STEP_CALLBACK_KINDS = tuple(
    kind
    for kind, cls in LSS_CLASSES.items()
    if "callback_on_step_end" in inspect.signature(cls.__call__).parameters
)


@attrs.frozen
class Pair:
    """A stock tiny pipeline and the LSS pipeline sharing its components."""

    kind: str
    stock: Any
    lss: Any

    @property
    def negative(self) -> dict[str, Any]:
        """Stock arguments that turn this family's negative prompt on."""
        return dict(TINY_FAMILIES[self.kind].negative)

    @property
    def call(self) -> dict[str, Any]:
        """Stock arguments every shared test call adds (see ``TinyFamily.call``)."""
        return dict(TINY_FAMILIES[self.kind].call)

    @property
    def has_step_callback(self) -> bool:
        """Whether the stock call takes ``callback_on_step_end`` (PixArt-Sigma has only the
        older ``callback``)."""
        return "callback_on_step_end" in inspect.signature(type(self.stock).__call__).parameters

    @property
    def calls_per_step(self) -> int:
        """Denoiser calls per guided step."""
        return TINY_FAMILIES[self.kind].calls_per_step

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.lss.unet if hasattr(self.lss, "unet") else self.lss.transformer

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        names = ("text_encoder", "text_encoder_2", "text_encoder_3")
        return [getattr(self.lss, n) for n in names if getattr(self.lss, n, None) is not None]


def random_upsampler(channels: int, seed: int = 0) -> LatentUpsampler:
    """A random upsampler of the released config, or (channel counts with no released one, e.g.
    SANA's 32) of the released 16-channel layout at ``channels`` channels."""
    if channels in RELEASED_WIDTHS:
        config = UpsamplerConfig.released(channels)
    else:
        config = UpsamplerConfig(
            in_channels=channels,
            out_channels=channels,
            block_out_channels=RELEASED_WIDTHS[16],
            is_up_samples=(True, False),
            strides=(2, 1),
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LatentUpsampler(config).eval()


def latent_channels(vae: Any) -> int:
    """A VAE's latent channels (Qwen-Image's VAE calls them ``z_dim``)."""
    config = vae.config
    return int(config.latent_channels if "latent_channels" in config else config.z_dim)


def lss_from_stock(kind: str, stock: Any, **components: Any) -> Any:
    """An LSS pipeline over ``stock``'s components (some replaced), with a random upsampler."""
    parts = dict(stock.components)
    parts.setdefault("latent_upsampler", random_upsampler(latent_channels(stock.vae)))
    parts.update(components)
    pipe = LSS_CLASSES[kind](**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@contextmanager
def recorded_inputs(module: torch.nn.Module) -> Iterator[list[dict[str, Any]]]:
    """Record every forward call of ``module``: its main input's shape and its keyword inputs."""
    calls: list[dict[str, Any]] = []

    def hook(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Text encoders called by keyword (Qwen-Image's, Krea 2's, Z-Image's, FLUX.2 [klein]'s)
        # take input_ids.
        first = args[0] if args else kwargs.get("input_ids")
        sample = kwargs.get("hidden_states", kwargs.get("sample", first))
        if isinstance(sample, list):  # Z-Image: one (C, F, h, w) tensor per image
            sample = torch.stack(sample)
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        calls.append({"shape": tuple(sample.shape), "timestep": timestep, "kwargs": kwargs})

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def latent_call(size: int, steps: int, *, seed: int | None = 0, **overrides: Any) -> dict[str, Any]:
    """A call's arguments at ``size`` x ``size`` and ``steps`` returning latents, with a generator
    seeded by ``seed`` (none for ``None``)."""
    call: dict[str, Any] = {
        "prompt": PROMPT,
        "height": size,
        "width": size,
        "num_inference_steps": steps,
        "output_type": "latent",
    }
    if seed is not None:
        call["generator"] = torch.Generator().manual_seed(seed)
    return {**call, **overrides}  # a given generator replaces the seeded one


#: The size and step count of a family test's calls.
TARGET, STEPS = 128, 8


def run(pipe: Any, **overrides: Any) -> Any:
    """The images (latents by default) of ``pipe``'s :func:`latent_call` at ``TARGET`` and
    ``STEPS`` with ``overrides``."""
    return pipe(**latent_call(TARGET, STEPS, **overrides)).images


def call_counts(pair: Pair, **overrides: Any) -> tuple[int, int]:
    """How many denoiser calls and text-encoder calls the LSS pipeline's :func:`run` with
    ``overrides`` makes."""
    with recorded_inputs(pair.denoiser) as calls, recorded_inputs(pair.lss.text_encoder) as encoded:
        run(pair.lss, **overrides)
    return len(calls), len(encoded)


def stage_call(stage: Any) -> dict[str, Any]:
    """The size and step arguments of a stock call that makes plan stage ``stage`` alone."""
    return {"height": stage.height, "width": stage.width, "num_inference_steps": stage.num_steps}


def family_pair(kind: str) -> Any:
    """A ``pair`` fixture for the tests of one family: ``lss_pair(kind)``."""

    @pytest.fixture
    def pair(lss_pair: Callable[[str], Pair]) -> Pair:
        return lss_pair(kind)

    return pair


@contextmanager
def cache_enabled(denoiser: Any, config: Any) -> Iterator[None]:
    """``denoiser.enable_cache(config)`` for the block, then disabled again."""
    denoiser.enable_cache(config)
    try:
        yield
    finally:
        denoiser.disable_cache()


def _kind_of(pipe: Any) -> str:
    names = {cls.__name__ for cls in type(pipe).__mro__}
    return next(kind for kind, family in FAMILIES.items() if family.stock_class in names)


def family_call(pipe: Any) -> dict[str, Any]:
    """The stock arguments the shared tests add for ``pipe``'s family (``TinyFamily.call``)."""
    return dict(TINY_FAMILIES[_kind_of(pipe)].call)


def family_sized(pipe: Any, height: int, width: int) -> AbstractContextManager[Any]:
    """The context in which a stock call of ``pipe`` makes ``height`` x ``width`` as asked
    (``TinyFamily.sized``: HiDream scales every size to one area otherwise)."""
    return TINY_FAMILIES[_kind_of(pipe)].sized(pipe, height, width)


def step_callback(pair: Pair, seen: Callable[[Any, int, torch.Tensor], None]) -> dict[str, Any]:
    """Call arguments that run ``seen(pipe, step, latents)`` after every denoising step: through
    ``callback_on_step_end``, or the older ``callback`` where the stock call has only that."""
    if pair.has_step_callback:

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            seen(pipe, step, tensors["latents"])
            return tensors

        return {"callback_on_step_end": on_step_end}

    def callback(step: int, timestep: Any, latents: torch.Tensor) -> None:
        seen(pair.lss, step, latents)

    return {"callback": callback, "callback_steps": 1}
