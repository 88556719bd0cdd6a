"""A tiny random-weight *stock* ``HiDreamImagePipeline``, built offline from configs.

HiDream's stock call generates every image at the area of its hard-coded
``default_sample_size = 128`` latent pixels, whatever size is asked for (only the aspect ratio
is kept). So that the tiny pipeline makes the 128-px images of the other tiny pipelines and keeps
the released model's token geometry (128 x 128 latent pixels, 2x2 patches, ``max_seq`` 4096
tokens), its VAE has one block: a spatial factor of 1 instead of FLUX.1's 8, with FLUX.1's 16
latent channels and ``scaling_factor`` / ``shift_factor``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    HiDreamImagePipeline,
    HiDreamImageTransformer2DModel,
)
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5EncoderModel

from lssgen_diffusers.hidream import sample_size_keeping
from lssgen_diffusers.testing_text import tiny_llama_encoder, tiny_llama_tokenizer

__all__ = ["generating_as_asked", "tiny_hidream_pipeline", "tiny_hidream_scheduler"]

# FLUX.1's VAE (HiDream-I1 ships it): 16 channels, its normalisation constants.
_VAE_SCALING, _VAE_SHIFT = 0.3611, 0.1159
# Offsets added to the seed: every component its own random stream.
_OFFSETS = {
    "vae": 1,
    "denoiser": 2,
    "text_encoder": 3,
    "text_encoder_2": 4,
    "text_encoder_3": 5,
    "text_encoder_4": 6,
}


@contextmanager
def _seeded(seed: int, component: str) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((seed * 16 + _OFFSETS[component]) % 2**63)
        yield


@contextmanager
def generating_as_asked(pipe: HiDreamImagePipeline, height: int, width: int) -> Iterator[None]:
    """Within the block, the stock call of ``pipe`` generates ``height`` x ``width`` as asked:
    its ``default_sample_size`` (the area it scales every size to) is that size's own."""
    previous = pipe.default_sample_size
    pipe.default_sample_size = sample_size_keeping(height, width, pipe.vae_scale_factor)
    try:
        yield
    finally:
        pipe.default_sample_size = previous


def tiny_hidream_scheduler(**overrides: Any) -> FlowMatchEulerDiscreteScheduler:
    """The flow-matching Euler scheduler of HiDream-I1 Full / Fast: the static shift 3.0 of the
    original repository's inference script (Dev: 6.0), no dynamic shifting."""
    config: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 3.0}
    config["use_dynamic_shifting"] = False
    return FlowMatchEulerDiscreteScheduler(**{**config, **overrides})


def _vae(seed: int) -> AutoencoderKL:
    with _seeded(seed, "vae"):
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",),
            up_block_types=("UpDecoderBlock2D",),
            block_out_channels=(8,),
            layers_per_block=1,
            latent_channels=16,
            norm_num_groups=4,
            sample_size=128,
            scaling_factor=_VAE_SCALING,
            shift_factor=_VAE_SHIFT,
            use_quant_conv=False,
            use_post_quant_conv=False,
            # Mid-block attention at the VAE's full resolution (16384 positions at 128 px) would
            # cost more than the rest of the tiny pipeline together.
            mid_block_add_attention=False,
        )
    return vae.eval()


def _clip(tokenizer: Any, seed: int, component: str) -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        # HiDream pads CLIP prompts to min(max_sequence_length, 218) tokens, past CLIP's 77.
        max_position_embeddings=256,
        projection_dim=32,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(seed, component):
        return CLIPTextModelWithProjection(config).eval()


def tiny_hidream_pipeline(seed: int = 0) -> HiDreamImagePipeline:
    """A tiny random HiDream-I1-shaped ``HiDreamImagePipeline``.

    * VAE: ``AutoencoderKL`` with one block (spatial factor 1, see the module docstring), 16
      latent channels, scaling 0.3611, shift 0.1159.
    * Transformer: ``HiDreamImageTransformer2DModel`` with 2x2 patches on 16 channels, one
      double-stream and one single-stream block, 2 heads x 8 dims, RoPE axes (4, 2, 2), two
      routed experts (one active), ``max_resolution=(128, 128)`` (``max_seq`` 4096, the released
      model's), Llama layers ``(0, 1)`` (one per block).
    * Text: two ``CLIPTextModelWithProjection`` (pooled, 32 + 32 = ``text_emb_dim`` 64), a T5
      encoder (32 wide) and a ``LlamaForCausalLM`` (32 wide, 2 layers), with byte-level CLIP and
      Llama 3 and character-level T5 tokenizers.
    * Scheduler: :func:`tiny_hidream_scheduler`.

    The stock call generates 128 x 128 px (``default_sample_size`` 128 latent pixels) for any
    square size asked, and the same area at other aspect ratios, rounded to multiples of 2 px
    (twice the VAE factor, as stock); the transformer needs multiples of 8 px (its patches), so
    ask for sizes whose area is 128 x 128 px (256 x 64) or use :func:`generating_as_asked`.
    """
    # Imported here: lssgen_diffusers.testing imports this module for its TINY_FAMILIES.
    from lssgen_diffusers.testing import tiny_clip_tokenizer, tiny_t5_config, tiny_t5_tokenizer

    tokenizer = tiny_clip_tokenizer(model_max_length=256)
    tokenizer_2 = tiny_clip_tokenizer(model_max_length=256)
    tokenizer_3 = tiny_t5_tokenizer()
    tokenizer_4 = tiny_llama_tokenizer()
    with _seeded(seed, "text_encoder_3"):
        text_encoder_3 = T5EncoderModel(tiny_t5_config(tokenizer_3, 32)).eval()
    llama_seed = (seed * 16 + _OFFSETS["text_encoder_4"]) % 2**63
    text_encoder_4 = tiny_llama_encoder(tokenizer_4, seed=llama_seed, num_layers=2)
    with _seeded(seed, "denoiser"):
        transformer = HiDreamImageTransformer2DModel(
            patch_size=8,
            in_channels=16,
            out_channels=16,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            caption_channels=[text_encoder_3.config.d_model, text_encoder_4.config.hidden_size],
            text_emb_dim=64,
            num_routed_experts=2,
            num_activated_experts=1,
            axes_dims_rope=(4, 2, 2),
            max_resolution=(128, 128),
            llama_layers=[0, 1],
        )
    return HiDreamImagePipeline(
        scheduler=tiny_hidream_scheduler(),
        vae=_vae(seed),
        text_encoder=_clip(tokenizer, seed, "text_encoder"),
        tokenizer=tokenizer,
        text_encoder_2=_clip(tokenizer_2, seed, "text_encoder_2"),
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
        text_encoder_4=text_encoder_4,
        tokenizer_4=tokenizer_4,
        transformer=transformer.eval(),
    )
