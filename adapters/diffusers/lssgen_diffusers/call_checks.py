"""Checks of a call's stock arguments, and of the latents a call produces, for the LSS pipelines.

The argument checks run before any model, for one stage and several alike, and only refuse what
the stock pipeline cannot do anyway: it would fail deep inside torch or Diffusers (``generator=42``,
numpy ``latents``, ``num_inference_steps=0``, a negative size), return an empty or NaN image
(FLUX at 8 px, NaN ``latents``), or silently change the request (``guidance_scale=nan`` turns
guidance off, since ``nan > 1`` is False). Every message names the argument and what it may be.

The latent checks turn a non-finite latent into :class:`NonFiniteLatentError` naming the stage,
at each stage hand-over and before decoding, instead of a black image.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError

# A count (num_images_per_prompt): the core's one positive-integer check, under the name the
# pipelines call it by.
from lssgen_core.validation import check_positive_int as check_count  # noqa: F401

# Stock float arguments that steer guidance; NaN or inf in any of them is never meaningful.
GUIDANCE_ARGUMENTS = ("guidance_scale", "true_cfg_scale", "guidance_rescale")
# Stock arguments that replace num_inference_steps with a schedule of their own.
SCHEDULE_ARGUMENTS = ("sigmas", "timesteps")


class NonFiniteLatentError(RuntimeError):
    """A latent holds NaN or inf: the image would come out black (or NaN)."""


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def check_size(value: Any, argument: str, minimum: int) -> None:
    """A resolved ``height`` / ``width``: a number of pixels the model can make (>= one token).

    Integral floats pass, as the stock pipelines accept them.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LSSArgumentTypeError(
            argument, f"{argument} must be an integer, got {value!r} ({_type_name(value)})"
        )
    if not float(value) >= minimum:
        raise LSSArgumentError(
            argument,
            f"{argument}={value} is below the smallest size this pipeline makes: {minimum} px "
            "(one latent token: vae_scale_factor x the denoiser's patch size)",
        )


def check_finite_real(value: Any, argument: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LSSArgumentTypeError(
            argument, f"{argument} must be a real number, got {value!r} ({_type_name(value)})"
        )
    if not math.isfinite(value):
        raise LSSArgumentError(argument, f"{argument}={value} must be a finite real number")


def none_by_default(function: Any) -> frozenset[str]:
    """The parameters of ``function`` (a stock ``__call__``) whose default is ``None``."""
    parameters = inspect.signature(function).parameters.values()
    return frozenset(p.name for p in parameters if p.default is None)


def check_generator(generator: Any) -> None:
    items = generator if isinstance(generator, list) else [generator]
    if generator is None or all(isinstance(g, torch.Generator) for g in items):
        return
    raise LSSArgumentTypeError(
        "generator",
        "generator must be a torch.Generator, a list of them (one per image) or None, got "
        f"{generator!r} ({_type_name(generator)}); e.g. torch.Generator().manual_seed(42)",
    )


def check_prompt(prompt: Any, argument: str = "prompt") -> None:
    if prompt is None or isinstance(prompt, str):
        return
    if not isinstance(prompt, list):
        raise LSSArgumentTypeError(
            argument, f"{argument} must be a string or a list of strings, got {_type_name(prompt)}"
        )
    if not prompt:
        raise LSSArgumentError(argument, f"{argument} is an empty list; pass at least one prompt")
    for i, item in enumerate(prompt):
        if not isinstance(item, str):
            raise LSSArgumentTypeError(
                argument, f"{argument}[{i}] must be a string, got {_type_name(item)}"
            )


def count_non_finite(tensor: torch.Tensor) -> int:
    return int((~torch.isfinite(tensor)).sum())


def check_latents(latents: Any, *, dtype: torch.dtype | None, denoiser: str) -> None:
    """User ``latents``: a finite floating-point tensor; of the denoiser's ``dtype`` unless None
    (pipelines whose stock ``prepare_latents`` casts given latents pass None)."""
    if latents is None:
        return
    if not isinstance(latents, torch.Tensor):
        raise LSSArgumentTypeError(
            "latents",
            f"latents must be a torch.Tensor, got {_type_name(latents)}; e.g. "
            "torch.from_numpy(array)",
        )
    if not latents.is_floating_point():
        raise LSSArgumentTypeError(
            "latents", f"latents must be a floating-point tensor, got dtype {latents.dtype}"
        )
    if dtype is not None and latents.dtype != dtype:
        raise LSSArgumentTypeError(
            "latents",
            f"latents has dtype {latents.dtype} but the {denoiser} runs in {dtype}; pass "
            f"latents.to({dtype})",
        )
    bad = count_non_finite(latents)
    if bad:
        raise LSSArgumentError(
            "latents",
            f"latents holds {bad} non-finite value(s) (NaN or inf) of {latents.numel()}; the "
            "image would come out black. Pass finite starting noise, or none",
        )


def check_embeds_batch(call: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Embeddings in ``names`` must have ``prompt_embeds``' batch size (stock would fail deep)."""
    embeds = call.get("prompt_embeds")
    if not isinstance(embeds, torch.Tensor):
        return
    for name in names:
        value = call.get(name)
        if isinstance(value, torch.Tensor) and value.shape[0] != embeds.shape[0]:
            raise LSSArgumentError(
                name,
                f"{name} has batch size {value.shape[0]} but prompt_embeds has batch size "
                f"{embeds.shape[0]}; pass one {name} per prompt",
            )


def run_stock_check_inputs(pipe: Any, call: Mapping[str, Any], height: int, width: int) -> None:
    """The stock ``check_inputs`` with this call's arguments, as the stock ``__call__`` runs it
    (its size defaults filled in), so several stages refuse what one stage refuses."""
    if not hasattr(pipe, "check_inputs"):
        return  # Z-Image's stock call checks only its sizes, which the mixin checks first
    resolved: dict[str, Any] = {"height": height, "width": width}
    callback: Any = call.get("callback_on_step_end")
    if hasattr(callback, "tensor_inputs"):  # PipelineCallback: the stock call reads it first
        resolved["callback_on_step_end_tensor_inputs"] = callback.tensor_inputs
    parameters = inspect.signature(pipe.check_inputs).parameters
    pipe.check_inputs(**{name: resolved.get(name, call.get(name)) for name in parameters})


_FLOAT16_HINT = "float16 overflow is a common cause (try torch.bfloat16 or torch.float32)"
UPSAMPLER_HINT = "check the latent_upsampler's weights, or choose another scaling_mode"


def stage_produced(index: int, width: int, height: int) -> str:
    return f"stage {index} ({width}x{height}) produced a latent with"


def stage_entry(index: int, width: int, height: int) -> str:
    return f"the latent entering stage {index} ({width}x{height}) (scaled up and re-noised) holds"


def check_finite_latent(latent: torch.Tensor, what: str, hint: str = _FLOAT16_HINT) -> None:
    """Raise :class:`NonFiniteLatentError` if ``latent`` holds NaN or inf; ``what`` names it
    (:func:`stage_produced`, :func:`stage_entry`)."""
    bad = count_non_finite(latent)
    if bad:
        raise NonFiniteLatentError(
            f"{what} {bad} non-finite value(s) (NaN or inf) of {latent.numel()}; stopping "
            f"instead of returning a black image. {hint}"
        )


@contextmanager
def checked_decode(vae: Any, what: str) -> Iterator[None]:
    """Check every latent ``vae.decode`` gets while the block runs (the stock ``__call__`` decodes
    its final latent itself)."""
    if vae is None:  # a pipeline loaded without its VAE only returns latents
        yield
        return
    fields = vars(vae)
    previous = fields.get("decode")
    real = vae.decode

    def decode(latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        check_finite_latent(latents, what)
        return real(latents, *args, **kwargs)

    fields["decode"] = decode
    try:
        yield
    finally:
        if previous is None:
            del fields["decode"]
        else:
            fields["decode"] = previous
