"""Tiny random-weight stock Qwen-Image and Krea 2 pipelines, built offline from configs.

Both share Qwen-Image's VAE (``AutoencoderKLQwenImage``: a causal 3-D VAE whose images are
one-frame videos, 8x in space, 16 latent channels normalised per channel by the real model's
``latents_mean`` / ``latents_std``, its config defaults) and a flow-matching Euler scheduler
with a resolution-dependent exponential shift; they differ in the transformer and the text
encoder (Qwen2.5-VL for Qwen-Image, Qwen3-VL for Krea 2). Deterministic given ``seed``; the
global random state is left alone; modules in ``eval()`` mode, float32, on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    Krea2Pipeline,
    Krea2Transformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)

from lssgen_diffusers.testing_text import (
    tiny_qwen2_5_vl_encoder,
    tiny_qwen3_tokenizer,
    tiny_qwen3_vl_encoder,
)

__all__ = ["tiny_krea2_pipeline", "tiny_qwen_image_pipeline", "tiny_qwen_image_vae"]

_OFFSETS = {"vae": 1, "denoiser": 2, "text_encoder": 3}
_TEXT_WIDTH = 32

T = TypeVar("T")


@contextmanager
def _seeded(seed: int, component: str) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((seed * 16 + _OFFSETS[component]) % 2**63)
        yield


def _built(seed: int, component: str, build: Callable[[], T]) -> T:
    with _seeded(seed, component):
        module = build()
    assert isinstance(module, torch.nn.Module)
    module.eval()
    return module


def tiny_qwen_image_vae(seed: int = 0) -> AutoencoderKLQwenImage:
    """Qwen-Image's VAE layout, narrow: four levels (``dim_mult`` 1, 2, 4, 4: 8x in space),
    temporal downsampling as the real one's (a one-frame image stays one latent frame), 16
    latent channels with the real ``latents_mean`` / ``latents_std`` (the config defaults)."""
    return _built(
        seed,
        "vae",
        lambda: AutoencoderKLQwenImage(
            base_dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1
        ),
    )


def _exponential_shift_scheduler(max_image_seq_len: int, max_shift: float, **extra: Any) -> Any:
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=max_shift,
        base_image_seq_len=256,
        max_image_seq_len=max_image_seq_len,
        time_shift_type="exponential",
        **extra,
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
    tokenizer = tiny_qwen3_tokenizer()
    text_encoder = tiny_qwen2_5_vl_encoder(tokenizer, seed * 16 + 3, _TEXT_WIDTH)
    transformer = _built(
        seed,
        "denoiser",
        lambda: QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=64,
            out_channels=16,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=_TEXT_WIDTH,
            axes_dims_rope=(4, 6, 6),
        ),
    )
    return QwenImagePipeline(
        scheduler=_exponential_shift_scheduler(8192, 0.9, shift_terminal=0.02),
        vae=tiny_qwen_image_vae(seed),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
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
    tokenizer = tiny_qwen3_tokenizer()
    text_encoder = tiny_qwen3_vl_encoder(tokenizer, seed * 16 + 3, _TEXT_WIDTH, num_layers=36)
    transformer = _built(
        seed,
        "denoiser",
        lambda: Krea2Transformer2DModel(
            in_channels=64,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            num_key_value_heads=1,
            # 128 also puts every weight of a plain save_pretrained at a 16-byte offset (header
            # length), so the saved pipeline reloads bit for bit.
            intermediate_size=128,
            timestep_embed_dim=32,
            text_hidden_dim=_TEXT_WIDTH,
            num_text_layers=12,
            text_num_attention_heads=2,
            text_num_key_value_heads=1,
            text_intermediate_size=32,
            num_layerwise_text_blocks=1,
            num_refiner_text_blocks=1,
            axes_dims_rope=(4, 6, 6),
        ),
    )
    return Krea2Pipeline(
        scheduler=_exponential_shift_scheduler(6400, 1.15),
        vae=tiny_qwen_image_vae(seed),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
