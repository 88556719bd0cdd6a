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
from functools import partial
from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler, HiDreamImagePipeline

from lssgen_diffusers.hidream import sample_size_keeping
from lssgen_diffusers.testing_build import configured, text_components, tiny_stock_pipeline
from lssgen_diffusers.testing_text import tiny_llama_encoder, tiny_llama_tokenizer

__all__ = ["generating_as_asked", "tiny_hidream_pipeline", "tiny_hidream_scheduler"]


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
    return configured(FlowMatchEulerDiscreteScheduler, "schedulers", "hidream", **overrides)


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
    from lssgen_diffusers.testing import (
        clip_with_projection,
        t5_encoder,
        tiny_clip_tokenizer,
        tiny_t5_tokenizer,
    )

    text = text_components(
        seed,
        # HiDream pads CLIP prompts to min(max_sequence_length, 218) tokens, past CLIP's 77.
        (tiny_clip_tokenizer(model_max_length=256), clip_with_projection),
        (tiny_clip_tokenizer(model_max_length=256), clip_with_projection),
        (tiny_t5_tokenizer(), t5_encoder(32)),
        (tiny_llama_tokenizer(), partial(tiny_llama_encoder, num_layers=2)),
    )
    t5, llama = text["text_encoder_3"].config, text["text_encoder_4"].config
    return tiny_stock_pipeline(
        HiDreamImagePipeline,
        "hidream",
        seed,
        text,
        caption_channels=[t5.d_model, llama.hidden_size],
        # One Llama layer a block: each of them reads its own.
        llama_layers=list(range(llama.num_hidden_layers)),
    )
