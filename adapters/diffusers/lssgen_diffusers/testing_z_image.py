"""A tiny random-weight *stock* ``ZImagePipeline``, built offline from configs (see
:mod:`lssgen_diffusers.testing`, whose ``TINY_FAMILIES`` lists it)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

from lssgen_diffusers.testing_build import text_components, tiny_stock_pipeline
from lssgen_diffusers.testing_text import tiny_qwen3_encoder, tiny_qwen3_tokenizer
from lssgen_diffusers.tiny_configs import tiny_config

__all__ = ["Z_IMAGE_TURBO_SCHEDULER", "tiny_z_image_pipeline"]

#: Z-Image-Turbo's shipped scheduler config (Tongyi-MAI/Z-Image-Turbo): a static shift of 3.0.
Z_IMAGE_TURBO_SCHEDULER: Mapping[str, Any] = tiny_config("schedulers", "z_image_turbo")

# FLUX.1's VAE, which Z-Image uses (scaling_factor, shift_factor).
_FLUX_VAE_FACTORS = (0.3611, 0.1159)
_TEXT_WIDTH = 32


def tiny_z_image_pipeline(
    seed: int = 0, scheduler: Mapping[str, Any] | None = None
) -> ZImagePipeline:
    """A tiny random Z-Image-shaped ``ZImagePipeline``.

    * VAE: FLUX.1's (16 latent channels, scaling 0.3611, shift 0.1159, no quant convs).
    * Transformer: ``ZImageTransformer2DModel`` with patch 2 (frame patch 1), 16 channels, one
      main and one refiner layer, 2 heads x 16 dims, RoPE axes (8, 4, 4), ``cap_feat_dim=32``.
    * Text: a two-layer ``Qwen3Model`` (32 wide) and a byte-level Qwen tokenizer with a chat
      template; the stock call wraps each prompt in it and keeps only its unpadded tokens, so
      prompt embeddings are lists of per-prompt tensors of different lengths.
    * Scheduler: ``FlowMatchEulerDiscreteScheduler`` of ``scheduler``'s config, by default
      Z-Image-Turbo's (:data:`Z_IMAGE_TURBO_SCHEDULER`).

    Height and width must be multiples of 16 (the stock default is 1024).
    """
    text = text_components(
        seed, (tiny_qwen3_tokenizer(), partial(tiny_qwen3_encoder, hidden_size=_TEXT_WIDTH))
    )
    components = {
        "scheduler": FlowMatchEulerDiscreteScheduler(**(scheduler or Z_IMAGE_TURBO_SCHEDULER)),
        **text,
    }
    return tiny_stock_pipeline(
        ZImagePipeline, "z-image", seed, components, cap_feat_dim=_TEXT_WIDTH
    )
