"""What the LSS mixin uses of the stock Diffusers pipeline it is mixed into, as a type.

``LSSPipelineMixin`` comes first in every LSS pipeline's bases, so type checkers do not know the
stock pipeline's attributes on it. :class:`StockPipeline` states the few it reads; the mixin sees
itself through it (``_lss_host``) and the stock methods it extends through it (``_lss_stock``).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class StockPipeline(Protocol):
    """The part of a stock ``DiffusionPipeline`` (FLUX, SD3, SDXL, SD, CogView4) LSS relies on."""

    vae: Any
    scheduler: Any
    vae_scale_factor: int
    config: Any

    @property
    def components(self) -> dict[str, Any]: ...

    @property
    def _execution_device(self) -> torch.device: ...

    @property
    def do_classifier_free_guidance(self) -> bool: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def register_to_config(self, **kwargs: Any) -> None: ...

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> None: ...

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any: ...

    def maybe_free_model_hooks(self) -> None: ...
