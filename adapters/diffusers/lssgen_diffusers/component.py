"""The latent upsampler as an optional pipeline component: registration, saving and loading.

Diffusers saves and loads only components whose class derives from a base it knows (ModelMixin,
PreTrainedModel, ...). ``LatentUpsampler`` is a plain ``torch.nn.Module`` with its own
``save_pretrained`` / ``from_pretrained``, so the pipelines store it themselves in a
``latent_upsampler/`` subfolder (``config.json`` + ``diffusion_pytorch_model.safetensors``, the
released format) and record ``[null, null]`` for it in ``model_index.json``; a stock pipeline
class can still load such a folder (it ignores the entry).

Variants follow Diffusers' naming: ``save_pretrained(variant="fp16")`` writes
``diffusion_pytorch_model.fp16.safetensors`` beside any plain weights, and
``from_pretrained(variant="fp16")`` reads it, or the plain file where the subfolder has no such
variant (as Diffusers does for any component saved without it).
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lssgen_core.upsample import LatentUpsampler
from lssgen_core.upsample.io import CONFIG_NAME, WEIGHTS_NAME, load_upsampler, save_upsampler

COMPONENT_NAME = "latent_upsampler"


def offload_sequence(stock_sequence: str) -> str:
    """The stock ``model_cpu_offload_seq`` with the upsampler between the denoiser and the VAE."""
    names = stock_sequence.split("->")
    position = names.index("vae") if "vae" in names else len(names)
    return "->".join([*names[:position], COMPONENT_NAME, *names[position:]])


def lss_init(stock_pipeline: type) -> Callable[..., None]:
    """``__init__`` for the LSS subclass of ``stock_pipeline``: the stock one plus the upsampler.

    Diffusers finds a pipeline's components by reading its ``__init__`` signature and checks them
    against its type hints (``from_pretrained``, ``from_pipe``), so the generated ``__init__``
    carries the stock signature and hints with ``latent_upsampler`` appended, and no subclass has
    to restate the stock parameter list.
    """
    stock_init = stock_pipeline.__init__  # type: ignore[misc]

    def __init__(self: Any, *args: Any, latent_upsampler: Any = None, **kwargs: Any) -> None:
        stock_init(self, *args, **kwargs)
        check_upsampler(latent_upsampler)
        self.register_modules(**{COMPONENT_NAME: latent_upsampler})

    signature = inspect.signature(stock_init)
    upsampler = inspect.Parameter(
        COMPONENT_NAME,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=LatentUpsampler | None,
    )
    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), upsampler]
    )
    hints = typing.get_type_hints(stock_init)
    __init__.__annotations__ = {**hints, COMPONENT_NAME: LatentUpsampler | None, "return": None}
    __init__.__qualname__ = f"LSS{stock_pipeline.__name__}.__init__"
    __init__.__doc__ = f"``{stock_pipeline.__name__}.__init__`` plus ``latent_upsampler``."
    return __init__


def _component_dtype(torch_dtype: Any) -> Any:
    # Diffusers accepts one dtype or a {component: dtype, "default": dtype} mapping.
    if isinstance(torch_dtype, dict):
        return torch_dtype.get(COMPONENT_NAME, torch_dtype.get("default"))
    return torch_dtype


def variant_weights_name(variant: str | None) -> str:
    """The weights file of ``variant``: ``diffusion_pytorch_model.fp16.safetensors`` for "fp16"."""
    if not variant:
        return WEIGHTS_NAME
    stem, suffix = WEIGHTS_NAME.rsplit(".", 1)
    return f"{stem}.{variant}.{suffix}"


def load_saved_upsampler(
    path: str | os.PathLike[str],
    *,
    subfolder: str | None = None,
    torch_dtype: Any = None,
    variant: str | None = None,
) -> LatentUpsampler | None:
    """The upsampler saved in ``path/latent_upsampler`` of a local pipeline folder, else None.

    Only local folders are looked into: for a Hub repository id, pass ``latent_upsampler=``.
    ``variant`` picks its weights file where the folder has it, else the plain one.
    """
    root = Path(path)
    if subfolder:
        root = root / subfolder
    folder = root / COMPONENT_NAME
    if not (folder / CONFIG_NAME).is_file():
        return None
    weights_name = variant_weights_name(variant)
    if not (folder / weights_name).is_file():
        weights_name = WEIGHTS_NAME
    return load_upsampler(
        folder, torch_dtype=_component_dtype(torch_dtype), weights_name=weights_name
    )


def save_component(
    upsampler: LatentUpsampler | None,
    save_directory: str | os.PathLike[str],
    variant: str | None = None,
) -> None:
    """Write the pipeline's upsampler subfolder (nothing when there is no upsampler)."""
    if upsampler is not None:
        save_upsampler(
            upsampler,
            Path(save_directory) / COMPONENT_NAME,
            weights_name=variant_weights_name(variant),
        )


def check_upsampler(upsampler: Any) -> None:
    """Raise TypeError unless ``upsampler`` is None or a ``LatentUpsampler``."""
    if upsampler is not None and not isinstance(upsampler, LatentUpsampler):
        raise TypeError(
            "latent_upsampler must be a LatentUpsampler (LatentUpsampler.from_pretrained(folder)) "
            f"or None, got {type(upsampler).__name__}"
        )
