"""A tiny random-weight *stock* ``ZImagePipeline``, built offline from configs (see
:mod:`lssgen_diffusers.testing`, whose ``TINY_FAMILIES`` lists it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel

from lssgen_diffusers.testing_text import tiny_qwen3_encoder, tiny_qwen3_tokenizer

__all__ = ["Z_IMAGE_TURBO_SCHEDULER", "tiny_z_image_pipeline"]

#: Z-Image-Turbo's shipped scheduler config (Tongyi-MAI/Z-Image-Turbo): a static shift of 3.0.
Z_IMAGE_TURBO_SCHEDULER: Mapping[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": False,
}

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
    # Imported here: lssgen_diffusers.testing imports this module for its TINY_FAMILIES.
    from lssgen_diffusers.testing import tiny_vae

    tokenizer = tiny_qwen3_tokenizer()
    text_encoder = tiny_qwen3_encoder(tokenizer, seed * 16 + 3, hidden_size=_TEXT_WIDTH)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 16 + 2)
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=16,
            dim=32,
            n_layers=1,
            n_refiner_layers=1,
            n_heads=2,
            n_kv_heads=2,
            cap_feat_dim=_TEXT_WIDTH,
            axes_dims=[8, 4, 4],
            axes_lens=[1024, 128, 128],
        ).eval()
    scaling, shift = _FLUX_VAE_FACTORS
    return ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**(scheduler or Z_IMAGE_TURBO_SCHEDULER)),
        vae=tiny_vae(16, seed, scaling_factor=scaling, shift_factor=shift, use_quant_conv=False),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
