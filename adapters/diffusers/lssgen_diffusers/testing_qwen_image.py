"""Tiny random-weight stock Qwen-Image and Krea 2 pipelines, built offline from configs.

Both share Qwen-Image's VAE (``AutoencoderKLQwenImage``: a causal 3-D VAE whose images are
one-frame videos, 8x in space, 16 latent channels normalised per channel by the real model's
``latents_mean`` / ``latents_std``, its config defaults) and a flow-matching Euler scheduler
with a resolution-dependent exponential shift; they differ in the transformer and the text
encoder (Qwen2.5-VL for Qwen-Image, Qwen3-VL for Krea 2). Deterministic given ``seed``; the
global random state is left alone; modules in ``eval()`` mode, float32, on the CPU.
"""

from __future__ import annotations

from functools import partial

from diffusers import AutoencoderKLQwenImage, Krea2Pipeline, QwenImagePipeline

from lssgen_diffusers.testing_build import (
    stream_seed,
    text_components,
    tiny_module,
    tiny_stock_pipeline,
)
from lssgen_diffusers.testing_text import (
    tiny_qwen2_5_vl_encoder,
    tiny_qwen3_tokenizer,
    tiny_qwen3_vl_encoder,
)

__all__ = ["tiny_krea2_pipeline", "tiny_qwen_image_pipeline", "tiny_qwen_image_vae"]

_TEXT_WIDTH = 32


def tiny_qwen_image_vae(seed: int = 0) -> AutoencoderKLQwenImage:
    """Qwen-Image's VAE layout, narrow: four levels (``dim_mult`` 1, 2, 4, 4: 8x in space),
    temporal downsampling as the real one's (a one-frame image stays one latent frame), 16
    latent channels with the real ``latents_mean`` / ``latents_std`` (the config defaults)."""
    return tiny_module(
        AutoencoderKLQwenImage, "autoencoders", "qwen_image", stream_seed(seed, "vae")
    )


def tiny_qwen_image_pipeline(seed: int = 0) -> QwenImagePipeline:
    """A tiny random Qwen-Image-shaped ``QwenImagePipeline``.

    * VAE: :func:`tiny_qwen_image_vae` (``vae_scale_factor == 8``).
    * Transformer: ``QwenImageTransformer2DModel`` with patch size 2 (64 packed channels, 16
      out), one block, 2 heads x 16 dims (rotary axes 4 + 6 + 6), ``joint_attention_dim`` the
      text encoder's width.
    * Text: a two-layer Qwen2.5-VL and a byte-level Qwen tokenizer
      (:mod:`lssgen_diffusers.testing_text`); the stock call drops the template's first 34
      tokens and keeps an attention mask for padded prompts.
    * Scheduler: Qwen/Qwen-Image's ``scheduler_config.json``: flow-matching Euler with dynamic
      exponential shifting (``base_shift`` 0.5 at 256 tokens to ``max_shift`` 0.9 at 8192) and
      ``shift_terminal`` 0.02.

    Height and width should be multiples of 16 (the stock call rounds others down, warning).
    """
    encoder = partial(tiny_qwen2_5_vl_encoder, hidden_size=_TEXT_WIDTH)
    text = text_components(seed, (tiny_qwen3_tokenizer(), encoder))
    return tiny_stock_pipeline(
        QwenImagePipeline, "qwen-image", seed, text, joint_attention_dim=_TEXT_WIDTH
    )


def tiny_krea2_pipeline(seed: int = 0) -> Krea2Pipeline:
    """A tiny random Krea-2-shaped ``Krea2Pipeline``.

    * VAE: :func:`tiny_qwen_image_vae` (Krea 2 ships Qwen-Image's VAE).
    * Transformer: ``Krea2Transformer2DModel`` (64 packed channels: patch size 2 over 16),
      one block, 2 heads x 16 dims (rotary axes 4 + 6 + 6), reading 12 text layers 32 wide
      through one layer-wise and one refiner text block.
    * Text: a Qwen3-VL with 36 layers (as Qwen3-VL-4B), 32 wide, and a byte-level Qwen
      tokenizer; the pipeline stacks the hidden states of its default
      ``text_encoder_select_layers`` (every third layer, 12 of them: ``num_text_layers``), so
      the pipeline rebuilds from its components alone.
    * Scheduler: what the stock docstring asks for: flow-matching Euler with dynamic
      exponential shifting, ``base_shift`` 0.5 at 256 tokens to ``max_shift`` 1.15 at 6400.

    Height and width should be multiples of 16 (the stock call rounds others up, warning).
    """
    encoder = partial(tiny_qwen3_vl_encoder, hidden_size=_TEXT_WIDTH, num_layers=36)
    text = text_components(seed, (tiny_qwen3_tokenizer(), encoder))
    return tiny_stock_pipeline(Krea2Pipeline, "krea2", seed, text, text_hidden_dim=_TEXT_WIDTH)
