"""The builder of the tiny random test models: a component from its tiny config under its own
random stream (:func:`tiny_module`), a pipeline's text slots (:func:`text_components`), and a
stock pipeline of the parts a family's entry of ``pipelines.json`` names
(:func:`tiny_stock_pipeline`).

Every tiny pipeline seeds each of its components from ``seed * 16 + STREAMS[component]``, in a
fork of torch's CPU random state, so that components are independent of one another and of the
order they are built in, and the caller's random state is left as it was. The config values
come from :mod:`lssgen_diffusers.tiny_configs`; the builders add what depends on another
component (a vocabulary size, a text width) as keyword arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import diffusers
import torch
from transformers import PretrainedConfig, PreTrainedModel

from lssgen_diffusers.tiny_configs import tiny_config

__all__ = [
    "STREAMS",
    "TextEncoderBuilder",
    "configured",
    "ready",
    "seeded",
    "seeded_fork",
    "stream_seed",
    "text_components",
    "tiny_module",
    "tiny_stock_pipeline",
    "vocabulary",
]

#: The random stream of each component of a tiny pipeline (its offset from ``seed * 16``).
STREAMS: Mapping[str, int] = {
    "vae": 1,
    "denoiser": 2,
    "text_encoder": 3,
    "text_encoder_2": 4,
    "text_encoder_3": 5,
    "text_encoder_4": 6,
    # FLUX.2's VAE batch-norm statistics (FLUX.2 pipelines have no second text encoder).
    "vae_statistics": 4,
    # The video pipelines' own numbering.
    "transformer": 2,
    "transformer_2": 3,
    "video_text_encoder": 4,
    "upsampler": 5,
}

_Module = TypeVar("_Module", bound=torch.nn.Module)
_Configured = TypeVar("_Configured")
_Pipeline = TypeVar("_Pipeline")

#: ``build(tokenizer, seed)``: a random text encoder over ``tokenizer``, drawn from ``seed``.
TextEncoderBuilder = Callable[[Any, int], Any]

# The group of pipelines.json's slots, and the random stream of the seeded ones.
_SLOT_GROUPS = {
    "scheduler": "schedulers",
    "vae": "autoencoders",
    "transformer": "denoisers",
    "unet": "denoisers",
}
_SLOT_STREAMS = {"vae": "vae", "transformer": "denoiser", "unet": "denoiser"}


def stream_seed(seed: int, component: str) -> int:
    """The seed of ``component``'s random stream (one of :data:`STREAMS`) for pipeline ``seed``."""
    return _offset_seed(seed, STREAMS[component])


def _offset_seed(seed: int, offset: int) -> int:
    # 16 streams a pipeline seed; the modulo keeps the seed in torch's accepted range.
    return (seed * 16 + offset) % 2**63


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed a fork of torch's CPU RNG with ``seed`` for the body (the caller's RNG state is left as
    it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def seeded_fork(seed: int, offset: int) -> Iterator[None]:
    """Seed a fork of torch's CPU RNG with stream ``offset`` of ``seed`` for the body, so that
    each component of a tiny pipeline has its own random stream and the caller's RNG state is
    left as it was."""
    with seeded(_offset_seed(seed, offset)):
        yield


def ready(module: _Module) -> _Module:
    """Put a freshly built module into ``eval()`` mode, the state ``from_pretrained`` returns."""
    return module.eval()


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list) else value


def _typed(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """JSON arrays as the tuples Diffusers' signatures use, except where the class's own default
    is a list (Transformers configs keep lists: their nested dicts are lists throughout)."""
    if issubclass(cls, PretrainedConfig):
        return values
    parameters = inspect.signature(cls).parameters
    return {
        key: value
        if key in parameters and isinstance(parameters[key].default, list)
        else _as_tuples(value)
        for key, value in values.items()
    }


def configured(cls: type[_Configured], group: str, name: str, **fields: Any) -> _Configured:
    """``cls`` (a Diffusers model or scheduler, or a Transformers config class) made from tiny
    config ``name`` of ``group``, with ``fields`` (as given) added; unknown keys are a
    ``TypeError``."""
    return cls(**{**_typed(cls, tiny_config(group, name)), **fields})


def tiny_module(cls: type[_Module], group: str, name: str, seed: int, **fields: Any) -> _Module:
    """A random ``cls`` of tiny config ``name`` of ``group`` (plus ``fields``), its weights drawn
    from ``seed`` (a :func:`stream_seed`), in ``eval()`` mode. A Transformers model is built
    from its ``config_class`` of those values."""
    with seeded(seed):
        if issubclass(cls, PreTrainedModel):
            config_class: type[PretrainedConfig] = cls.config_class  # type: ignore[attr-defined]
            module = cls(configured(config_class, group, name, **fields))
        else:
            module = configured(cls, group, name, **fields)
    return ready(module)


def vocabulary(tokenizer: Any, *special: str) -> dict[str, Any]:
    """A text model's config fields for ``tokenizer``: ``vocab_size`` and the ``<name>_token_id``
    of each ``special`` name (``"pad"``, ``"eos"``, ``"bos"``)."""
    ids = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id") for name in special}
    return {"vocab_size": len(tokenizer), **ids}


def text_components(seed: int, *encoders: tuple[Any, TextEncoderBuilder]) -> dict[str, Any]:
    """A pipeline's ``tokenizer`` / ``text_encoder``, ``tokenizer_2`` / ``text_encoder_2``, ...:
    one ``(tokenizer, build)`` pair a slot, each encoder drawn from its slot's stream."""
    components: dict[str, Any] = {}
    for index, (tokenizer, build) in enumerate(encoders, start=1):
        suffix = "" if index == 1 else f"_{index}"
        components[f"tokenizer{suffix}"] = tokenizer
        encoder_seed = stream_seed(seed, f"text_encoder{suffix}")
        components[f"text_encoder{suffix}"] = build(tokenizer, encoder_seed)
    return components


def tiny_stock_pipeline(
    pipeline_class: type[_Pipeline],
    family: str,
    seed: int,
    components: Mapping[str, Any],
    **denoiser_fields: Any,
) -> _Pipeline:
    """The stock ``pipeline_class`` of ``components`` and of the parts ``family``'s entry of
    ``pipelines.json`` names: its scheduler, VAE and denoiser (``transformer`` or ``unet``, with
    ``denoiser_fields``: what it reads from the text encoders), each seeded by its stream."""
    spec = tiny_config("pipelines", family)
    arguments: dict[str, Any] = {**spec.pop("arguments", {}), **components}
    clashes = sorted(set(spec) & set(arguments))
    if clashes:
        raise ValueError(f"{family}: {clashes[0]!r} is both given and in pipelines.json")
    for slot, (class_name, name) in spec.items():
        cls = getattr(diffusers, class_name)
        group = _SLOT_GROUPS[slot]
        if slot not in _SLOT_STREAMS:
            arguments[slot] = configured(cls, group, name)
            continue
        fields = denoiser_fields if group == "denoisers" else {}
        arguments[slot] = tiny_module(
            cls, group, name, stream_seed(seed, _SLOT_STREAMS[slot]), **fields
        )
    return pipeline_class(**arguments)
