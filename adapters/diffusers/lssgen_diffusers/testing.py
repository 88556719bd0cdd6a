"""Tiny random-weight *stock* Diffusers pipelines, built fully offline from configs.

Every pipeline here is an unmodified Diffusers pipeline class (``FluxPipeline``,
``StableDiffusion3Pipeline``, ``StableDiffusionXLPipeline``, ``StableDiffusionPipeline``,
``CogView4Pipeline``) whose components are tiny, randomly initialised models built from
configs, and whose tokenizers are built in code from in-memory vocabularies. Nothing is
downloaded. They exist for tests, benchmarks and demos: the images are noise, but every
shape, scheduler, latent packing and VAE scale factor matches the real model family.

Shared properties:

* The config values are data: the JSON files of :mod:`lssgen_diffusers.tiny_configs` (shipped
  with the package), which :mod:`lssgen_diffusers.testing_build` turns into components, each
  seeded by its own random stream; the builders here add what one component reads from another.
* The VAEs are ``AutoencoderKL`` with four blocks, so ``pipe.vae_scale_factor == 8``, and the
  real models' latent channel counts and ``scaling_factor`` / ``shift_factor``.
* Schedulers use the real models' shipped configs (see each builder).
* Tokenizers save and load offline (``save_pretrained`` / ``from_pretrained``) and turn any
  text into ids inside the text encoder's vocabulary (byte-level CLIP and GLM vocabularies,
  a character-level T5 vocabulary with ``<unk>`` for anything else).
* Everything is deterministic given ``seed``, and building does not disturb torch's global
  random state.
* All modules are returned in ``eval()`` mode in float32 on the CPU.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import attrs
import torch
from diffusers import (
    AutoencoderKL,
    ChromaPipeline,
    CogView4Pipeline,
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    PixArtSigmaPipeline,
    PNDMScheduler,
    SanaPipeline,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    Gemma2Model,
    GlmModel,
    PretrainedConfig,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
    UMT5EncoderModel,
)

from lssgen_diffusers.aligned_save import align_safetensors
from lssgen_diffusers.registry import FAMILIES
from lssgen_diffusers.testing_build import (
    TextEncoderBuilder,
    configured,
    ready,
    seeded,
    seeded_fork,
    stream_seed,
    text_components,
    tiny_module,
    tiny_stock_pipeline,
    vocabulary,
)
from lssgen_diffusers.testing_flux2 import tiny_flux2_klein_pipeline, tiny_flux2_pipeline
from lssgen_diffusers.testing_hidream import generating_as_asked, tiny_hidream_pipeline
from lssgen_diffusers.testing_lumina2 import tiny_lumina2_pipeline
from lssgen_diffusers.testing_qwen_image import tiny_krea2_pipeline, tiny_qwen_image_pipeline
from lssgen_diffusers.testing_text import byte_alphabet, numbered, tiny_tokenizer
from lssgen_diffusers.testing_z_image import tiny_z_image_pipeline
from lssgen_diffusers.tiny_configs import tiny_config

__all__ = [
    "PIPELINE_KINDS",
    "SD_SCHEDULERS",
    "TINY_FAMILIES",
    "TinyFamily",
    "align_safetensors",
    "clip_with_projection",
    "flux_scheduler",
    "gemma2_encoder",
    "save_tiny_pipeline",
    "seeded_fork",
    "t5_encoder",
    "tiny_chroma_pipeline",
    "tiny_clip_tokenizer",
    "tiny_cogview4_pipeline",
    "tiny_flux_pipeline",
    "tiny_gemma2_encoder",
    "tiny_gemma_tokenizer",
    "tiny_glm_tokenizer",
    "tiny_krea2_pipeline",
    "tiny_pipeline",
    "tiny_pixart_sigma_pipeline",
    "tiny_qwen_image_pipeline",
    "tiny_sana_pipeline",
    "tiny_sd3_pipeline",
    "tiny_sd_pipeline",
    "tiny_sdxl_pipeline",
    "tiny_t5_config",
    "tiny_t5_encoder",
    "tiny_t5_tokenizer",
    "tiny_unet",
    "tiny_vae",
]

#: Kinds accepted by :func:`tiny_pipeline`: every family of the registry.
PIPELINE_KINDS: tuple[str, ...] = tuple(FAMILIES)

#: Schedulers accepted by :func:`tiny_sd_pipeline`.
SD_SCHEDULERS: tuple[str, ...] = ("ddim", "euler", "pndm")


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: tiny test tensors gain nothing from more, kernels stay the same in
    every run, and on a shared 2-core machine spinning OpenMP threads slow ~10 ms steps to ~2 s."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def tiny_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A byte-level CLIP tokenizer with no merges (514 tokens), built in memory.

    The vocabulary is CLIP's own first 512 entries (the 256 byte-level symbols, then the same
    symbols with the end-of-word suffix ``</w>``) followed by ``<|startoftext|>`` (512) and
    ``<|endoftext|>`` (513, also the pad token). As in real CLIP, the end-of-text id is the
    largest id. Any text tokenizes (one token per byte).
    """
    alphabet = byte_alphabet()
    symbols = [*alphabet, *(symbol + "</w>" for symbol in alphabet)]
    vocab = numbered([*symbols, "<|startoftext|>", "<|endoftext|>"])
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def tiny_t5_tokenizer(model_max_length: int = 512) -> T5Tokenizer:
    """A character-level T5 (Unigram) tokenizer built in memory (98 tokens).

    Ids: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, the word-start marker ``▁`` 3, then the printable
    ASCII characters. Characters outside printable ASCII map to ``<unk>``. No ``<extra_id_*>``
    sentinels (T5 encoders in text-to-image pipelines never use them).
    """
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(char, -5.0) for char in string.printable.strip()]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def tiny_glm_tokenizer(model_max_length: int = 8192) -> PreTrainedTokenizerFast:
    """A byte-level GLM-4-style tokenizer built in memory (262 tokens).

    Like GLM-4's tokenizer it prefixes every sequence with ``[gMASK]<sop>`` (so even the empty
    string gives two tokens, which CogView4's empty negative prompt needs), pads on the left
    with ``<|endoftext|>`` (id 256), and is a plain ``PreTrainedTokenizerFast``.
    """
    return tiny_tokenizer("glm", model_max_length)


# --------------------------------------------------------------------------------------------
# Text encoders
# --------------------------------------------------------------------------------------------


_ClipModel = TypeVar("_ClipModel", CLIPTextModel, CLIPTextModelWithProjection)


def _clip_text_model(
    tokenizer: CLIPTokenizer, seed: int, model_class: type[_ClipModel] = CLIPTextModel
) -> _ClipModel:
    """A random two-layer, 32-wide CLIP text model over ``tokenizer``, drawn from ``seed``."""
    return tiny_module(
        model_class,
        "text_encoders",
        "clip",
        seed,
        max_position_embeddings=tokenizer.model_max_length,
        **vocabulary(tokenizer, "bos", "eos", "pad"),
    )


#: The pooled CLIP text encoder of SDXL's second slot, SD3 and HiDream.
clip_with_projection = partial(_clip_text_model, model_class=CLIPTextModelWithProjection)


_T5LikeConfig = TypeVar("_T5LikeConfig", bound=PretrainedConfig)


def tiny_t5_config(
    tokenizer: T5Tokenizer, d_model: int, config_class: type[_T5LikeConfig] = T5Config
) -> _T5LikeConfig:
    """A 2-layer T5 v1.1 encoder's config over ``tokenizer``; ``config_class`` ``UMT5Config``
    gives Wan's UMT5 (the same fields)."""
    return configured(
        config_class,
        "text_encoders",
        "t5",
        d_model=d_model,
        decoder_start_token_id=tokenizer.pad_token_id,
        **vocabulary(tokenizer, "pad", "eos"),
    )


_T5LikeEncoder = TypeVar("_T5LikeEncoder", bound=T5EncoderModel | UMT5EncoderModel)


def tiny_t5_encoder(
    tokenizer: T5Tokenizer, d_model: int, model_class: type[_T5LikeEncoder] = T5EncoderModel
) -> _T5LikeEncoder:
    """A random encoder of :func:`tiny_t5_config` (the caller seeds torch's RNG);
    ``model_class`` ``UMT5EncoderModel`` gives Wan's UMT5."""
    return ready(model_class(tiny_t5_config(tokenizer, d_model, model_class.config_class)))


def t5_encoder(d_model: int) -> TextEncoderBuilder:
    """The builder of a :func:`tiny_t5_encoder` ``d_model`` wide, drawn from its seed."""

    def build(tokenizer: T5Tokenizer, seed: int) -> T5EncoderModel:
        with seeded(seed):
            return tiny_t5_encoder(tokenizer, d_model)

    return build


def _glm_encoder(tokenizer: PreTrainedTokenizerFast, seed: int) -> GlmModel:
    return tiny_module(
        GlmModel, "text_encoders", "glm", seed, **vocabulary(tokenizer, "pad", "eos")
    )


# --------------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------------


def tiny_vae(
    latent_channels: int,
    seed: int = 0,
    *,
    scaling_factor: float | None = None,
    shift_factor: float | None = None,
    use_quant_conv: bool | None = None,
    mid_block_add_attention: bool = True,
) -> AutoencoderKL:
    """A tiny random ``AutoencoderKL`` with a real 8x spatial factor.

    Four ``DownEncoderBlock2D`` / ``UpDecoderBlock2D`` blocks of 8 channels (GroupNorm with 4
    groups, one resnet per encoder block), so ``2 ** (4 - 1) == 8``.

    Args:
        latent_channels: 4 (SD / SDXL) or 16 (FLUX / SD3 / CogView4).
        seed: Weight-initialisation seed.
        scaling_factor: ``vae.config.scaling_factor``; by default SD's 0.18215 for 4 channels and
            SD3's 1.5305 for 16.
        shift_factor: ``vae.config.shift_factor``; by default ``None`` for 4 channels and SD3's
            0.0609 for 16.
        use_quant_conv: Whether the 1x1 (post-)quant convs exist; by default ``True`` for 4
            channels (SD / SDXL VAEs have them) and ``False`` for 16 (FLUX / SD3 / CogView4).
        mid_block_add_attention: Whether the mid blocks have self-attention (``False`` only in
            CogView4's VAE).
    """
    if latent_channels <= 0:
        raise ValueError(f"latent_channels must be positive, got {latent_channels}")
    # SD's normalisation and quant convs for 4 channels, SD3's for any other count.
    config = "kl_sd" if latent_channels == 4 else "kl_sd3"
    given = {"scaling_factor": scaling_factor, "shift_factor": shift_factor}
    if use_quant_conv is not None:
        given |= {"use_quant_conv": use_quant_conv, "use_post_quant_conv": use_quant_conv}
    return tiny_module(
        AutoencoderKL,
        "autoencoders",
        config,
        stream_seed(seed, "vae"),
        latent_channels=latent_channels,
        mid_block_add_attention=mid_block_add_attention,
        **{field: value for field, value in given.items() if value is not None},
    )


# --------------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------------


def flux_scheduler(**overrides: Any) -> FlowMatchEulerDiscreteScheduler:
    """FLUX.1-dev's shipped ``FlowMatchEulerDiscreteScheduler`` config, with ``overrides``."""
    return configured(FlowMatchEulerDiscreteScheduler, "schedulers", "flux", **overrides)


def tiny_flux_pipeline(seed: int = 0) -> FluxPipeline:
    """A tiny random FLUX.1-dev-shaped ``FluxPipeline``.

    * VAE: 16 latent channels, scaling 0.3611, shift 0.1159, no quant convs.
    * Transformer: ``FluxTransformer2DModel`` with ``in_channels=64`` (16 latent channels packed
      2x2), patch size 1, two double-stream blocks and one single-stream block, 2 heads x 16
      dims, RoPE axes (4, 4, 8), ``joint_attention_dim=32`` (T5 width),
      ``pooled_projection_dim=32`` (CLIP width), ``guidance_embeds=True`` (distilled guidance,
      as FLUX.1-dev).
    * Text: ``CLIPTextModel`` (pooled) + ``T5EncoderModel`` (d_model 32), byte-level CLIP and
      character-level T5 tokenizers (``model_max_length`` 77 / 512).
    * Scheduler: FLUX.1-dev's ``FlowMatchEulerDiscreteScheduler`` (shift 3.0,
      ``use_dynamic_shifting=True``, base_shift 0.5, max_shift 1.15, base_image_seq_len 256,
      max_image_seq_len 4096).

    ``default_sample_size`` is hard-coded to 128 by ``FluxPipeline`` (1024 px); height and width
    must be multiples of 16. Latents are packed: ``output_type="latent"`` gives
    ``(B, (H/16) * (W/16), 64)``.
    """
    text = text_components(
        seed, (tiny_clip_tokenizer(), _clip_text_model), (tiny_t5_tokenizer(), t5_encoder(32))
    )
    return tiny_stock_pipeline(
        FluxPipeline,
        "flux",
        seed,
        text,
        joint_attention_dim=text["text_encoder_2"].config.d_model,
        pooled_projection_dim=text["text_encoder"].config.hidden_size,
    )


def tiny_chroma_pipeline(seed: int = 0) -> ChromaPipeline:
    """A tiny random Chroma-shaped ``ChromaPipeline``.

    * VAE: FLUX.1's (16 latent channels, scaling 0.3611, shift 0.1159, no quant convs).
    * Transformer: ``ChromaTransformer2DModel`` with ``in_channels=64`` (16 channels packed
      2x2), one double-stream and one single-stream block, 2 heads x 16 dims, RoPE axes
      (4, 4, 8), ``joint_attention_dim=32`` (T5 width), a one-layer modulation approximator.
    * Text: ``T5EncoderModel`` (d_model 32) with a character-level T5 tokenizer; Chroma masks
      the padding and passes the mask to the transformer.
    * Scheduler: FLUX.1-dev's ``FlowMatchEulerDiscreteScheduler`` (the stock call computes ``mu``
      from the token count as FLUX does).

    Height and width must be multiples of 16; latents are packed as FLUX's.
    """
    text = text_components(seed, (tiny_t5_tokenizer(), t5_encoder(32)))
    width = text["text_encoder"].config.d_model
    return tiny_stock_pipeline(ChromaPipeline, "chroma", seed, text, joint_attention_dim=width)


def tiny_sd3_pipeline(seed: int = 0) -> StableDiffusion3Pipeline:
    """A tiny random SD3-shaped ``StableDiffusion3Pipeline``.

    * VAE: 16 latent channels, scaling 1.5305, shift 0.0609, no quant convs.
    * Transformer: ``SD3Transformer2DModel`` with patch size 2, 16 in/out channels, one block,
      4 heads x 8 dims, ``sample_size=16`` (default 128 px), ``pos_embed_max_size=96`` (up to
      1536 px), ``joint_attention_dim=64`` (T5 width, = the two CLIP widths concatenated),
      ``pooled_projection_dim=64`` (two CLIP projections concatenated).
    * Text: two ``CLIPTextModelWithProjection`` (32 wide, projection 32) + ``T5EncoderModel``
      (d_model 64), byte-level CLIP and character-level T5 tokenizers.
    * Scheduler: SD3's ``FlowMatchEulerDiscreteScheduler`` (shift 3.0, no dynamic shifting).

    Height and width must be multiples of 16.
    """
    clip = (tiny_clip_tokenizer(), clip_with_projection)
    clip_2 = (tiny_clip_tokenizer(), clip_with_projection)
    text = text_components(seed, clip, clip_2, (tiny_t5_tokenizer(), t5_encoder(64)))
    pooled = [text[name].config for name in ("text_encoder", "text_encoder_2")]
    return tiny_stock_pipeline(
        StableDiffusion3Pipeline,
        "sd3",
        seed,
        text,
        # T5 width, = the two CLIP widths concatenated; the two CLIP projections concatenated.
        joint_attention_dim=sum(config.hidden_size for config in pooled),
        pooled_projection_dim=sum(config.projection_dim for config in pooled),
    )


def tiny_unet(cross_attention_dim: int, seed: int = 0, **extra: Any) -> UNet2DConditionModel:
    """The tiny SD / SDXL ``UNet2DConditionModel``: 4 channels in and out, blocks (16, 32)
    (``DownBlock2D``, ``CrossAttnDownBlock2D``), ``sample_size=16``, attending to text
    ``cross_attention_dim`` wide; ``extra`` adds config fields (SDXL's text-time embedding)."""
    return tiny_module(
        UNet2DConditionModel,
        "denoisers",
        "unet",
        stream_seed(seed, "denoiser"),
        cross_attention_dim=cross_attention_dim,
        **extra,
    )


def tiny_sdxl_pipeline(seed: int = 0) -> StableDiffusionXLPipeline:
    """A tiny random SDXL-shaped ``StableDiffusionXLPipeline``.

    * VAE: 4 latent channels, scaling 0.13025, quant convs.
    * UNet: ``UNet2DConditionModel`` with blocks (16, 32) (``DownBlock2D``,
      ``CrossAttnDownBlock2D``), ``sample_size=16`` (default 128 px),
      ``cross_attention_dim=64`` (the two CLIP widths concatenated), linear projections,
      ``addition_embed_type="text_time"``, ``addition_time_embed_dim=8`` and
      ``projection_class_embeddings_input_dim = 6 * 8 + 32 = 80``.
    * Text: ``CLIPTextModel`` + ``CLIPTextModelWithProjection`` (32 wide, projection 32),
      byte-level CLIP tokenizers.
    * Scheduler: SDXL's ``EulerDiscreteScheduler`` (scaled_linear 0.00085..0.012,
      ``steps_offset=1``, ``timestep_spacing="leading"``, epsilon prediction).

    Height and width must be multiples of 8 (16 keeps the UNet's skip connections aligned).
    """
    text = text_components(
        seed,
        (tiny_clip_tokenizer(), _clip_text_model),
        (tiny_clip_tokenizer(), clip_with_projection),
    )
    widths = [text[name].config.hidden_size for name in ("text_encoder", "text_encoder_2")]
    time_ids = 6 * tiny_config("denoisers", "sdxl_unet")["addition_time_embed_dim"]
    return tiny_stock_pipeline(
        StableDiffusionXLPipeline,
        "sdxl",
        seed,
        text,
        cross_attention_dim=sum(widths),
        # Six time ids (original size, crop corner, target size), then the pooled text.
        projection_class_embeddings_input_dim=time_ids
        + text["text_encoder_2"].config.projection_dim,
    )


_SD_SCHEDULER_CLASSES: dict[str, type[DDIMScheduler | EulerDiscreteScheduler | PNDMScheduler]] = {
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "pndm": PNDMScheduler,
}


def _sd_scheduler(name: str) -> DDIMScheduler | EulerDiscreteScheduler | PNDMScheduler:
    if name not in _SD_SCHEDULER_CLASSES:
        raise ValueError(f"unknown SD scheduler {name!r}; expected one of {SD_SCHEDULERS}")
    return configured(_SD_SCHEDULER_CLASSES[name], "schedulers", name)


def tiny_sd_pipeline(seed: int = 0, scheduler: str = "ddim") -> StableDiffusionPipeline:
    """A tiny random SD-1.5-shaped ``StableDiffusionPipeline`` (no safety checker).

    * VAE: 4 latent channels, scaling 0.18215, quant convs.
    * UNet: ``UNet2DConditionModel`` with blocks (16, 32), ``sample_size=16`` (default 128 px),
      ``cross_attention_dim=32`` (the CLIP width).
    * Text: ``CLIPTextModel`` (32 wide), byte-level CLIP tokenizer.
    * Scheduler (SD 1.5's betas: scaled_linear 0.00085..0.012, ``steps_offset=1``,
      ``timestep_spacing="leading"``, epsilon prediction):

      - ``"ddim"``: ``DDIMScheduler`` (``clip_sample=False``, ``set_alpha_to_one=False``);
      - ``"euler"``: ``EulerDiscreteScheduler``;
      - ``"pndm"``: ``PNDMScheduler`` (``skip_prk_steps=True``, SD 1.5's shipped scheduler).

    Height and width must be multiples of 8 (16 keeps the UNet's skip connections aligned).
    """
    components = {
        "scheduler": _sd_scheduler(scheduler),
        **text_components(seed, (tiny_clip_tokenizer(), _clip_text_model)),
    }
    width = components["text_encoder"].config.hidden_size
    return tiny_stock_pipeline(
        StableDiffusionPipeline, "sd", seed, components, cross_attention_dim=width
    )


def tiny_cogview4_pipeline(seed: int = 0) -> CogView4Pipeline:
    """A tiny random CogView4-shaped ``CogView4Pipeline``.

    * VAE: 16 latent channels, scaling 1.0, shift 0.0, no quant convs, no mid-block attention
      (as CogView4's VAE).
    * Transformer: ``CogView4Transformer2DModel`` with patch size 2, 16 in/out channels, one
      block, 2 heads x 16 dims, ``text_embed_dim=32`` (GLM width), ``time_embed_dim=16``,
      ``condition_dim=8``, ``sample_size=16`` (default 128 px), RoPE axes (256, 256).
    * Text: ``GlmModel`` (32 wide, 2 layers) and a byte-level ``PreTrainedTokenizerFast`` that
      prefixes ``[gMASK]<sop>`` (so the empty negative prompt is not zero tokens).
    * Scheduler: CogView4's ``FlowMatchEulerDiscreteScheduler`` (``use_dynamic_shifting=True``,
      ``time_shift_type="linear"``, base_shift 0.25, max_shift 0.75, base_image_seq_len 256;
      the pipeline computes ``mu`` itself and passes its own sigmas).

    Height and width must be multiples of 16.
    """
    text = text_components(seed, (tiny_glm_tokenizer(), _glm_encoder))
    width = text["text_encoder"].config.hidden_size
    return tiny_stock_pipeline(CogView4Pipeline, "cogview4", seed, text, text_embed_dim=width)


def tiny_pixart_sigma_pipeline(seed: int = 0) -> PixArtSigmaPipeline:
    """A tiny random PixArt-Sigma-shaped ``PixArtSigmaPipeline``.

    * VAE: SDXL's (4 latent channels, scaling 0.13025, quant convs), as PixArt-Sigma uses.
    * Transformer: ``PixArtTransformer2DModel`` with patch size 2, 4 in and 8 out channels
      (learned sigma, which the stock call drops), one block, 2 heads x 16 dims,
      ``caption_channels=32`` (T5 width), ``sample_size=32``: default 256 px, and resolution
      binning (on by default) uses the 256-px aspect-ratio bins.
    * Text: ``T5EncoderModel`` (d_model 32), character-level T5 tokenizer; prompts are padded to
      ``max_sequence_length`` with an attention mask.
    * Scheduler: ``DPMSolverMultistepScheduler`` as PixArt-Sigma's: DPM-Solver++ of order 2 on
      linear betas 0.0001..0.02, epsilon prediction.

    Height and width must be multiples of 16.
    """
    text = text_components(seed, (tiny_t5_tokenizer(model_max_length=512), t5_encoder(32)))
    width = text["text_encoder"].config.d_model
    return tiny_stock_pipeline(
        PixArtSigmaPipeline, "pixart-sigma", seed, text, caption_channels=width
    )


# --------------------------------------------------------------------------------------------
# SANA (self-contained: Gemma-2 text encoder, 32x DC-AE, flow DPM-Solver)
# --------------------------------------------------------------------------------------------


def tiny_gemma_tokenizer(model_max_length: int = 8192) -> PreTrainedTokenizerFast:
    """A byte-level Gemma-style tokenizer built in memory (260 tokens).

    Gemma's special ids (``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3) then the 256
    byte-level symbols; like Gemma's tokenizer it prefixes every sequence with ``<bos>``.
    """
    return tiny_tokenizer("gemma", model_max_length)


def gemma2_encoder(tokenizer: PreTrainedTokenizerFast, seed: int) -> Gemma2Model:
    """A random two-layer, 32-wide ``Gemma2Model`` (2 heads, one key/value head) over
    ``tokenizer``, drawn from ``seed``."""
    vocab = vocabulary(tokenizer, "pad", "eos", "bos")
    return tiny_module(Gemma2Model, "text_encoders", "gemma2", seed, **vocab)


def tiny_gemma2_encoder(tokenizer: PreTrainedTokenizerFast, seed: int) -> Gemma2Model:
    """SANA's and Lumina 2's tiny text encoder: a random two-layer, 32-wide ``Gemma2Model`` (2
    heads, one key/value head) over :func:`tiny_gemma_tokenizer`'s vocabulary."""
    return gemma2_encoder(tokenizer, stream_seed(seed, "text_encoder"))


def tiny_sana_pipeline(seed: int = 0) -> SanaPipeline:
    """A tiny random SANA-shaped ``SanaPipeline``.

    * VAE: ``AutoencoderDC`` with SANA's layout (six stages: ``vae_scale_factor == 32``, 32
      latent channels, scaling 0.41407), 8-32 channels wide (the last stages at least the 32 latent
      channels, which its shortcuts group).
    * Transformer: ``SanaTransformer2DModel`` with patch size 1, 32 in/out channels, one block,
      2 heads x 8 dims (self and cross attention), ``caption_channels=32`` (Gemma width),
      ``sample_size=16``: default 512 px, and resolution binning (on by default) uses the
      512-px aspect-ratio bins.
    * Text: ``Gemma2Model`` (32 wide, 2 layers) and a byte-level Gemma-style tokenizer; the
      stock call prepends its ``complex_human_instruction`` and pads with an attention mask.
    * Scheduler: SANA's flow DPM-Solver: ``DPMSolverMultistepScheduler`` (DPM-Solver++ of
      order 2) with ``use_flow_sigmas=True``, ``flow_prediction`` and the static
      ``flow_shift=3.0`` of the 1024-px models.

    Height and width must be multiples of 32.
    """
    text = text_components(seed, (tiny_gemma_tokenizer(), gemma2_encoder))
    width = text["text_encoder"].config.hidden_size
    return tiny_stock_pipeline(SanaPipeline, "sana", seed, text, caption_channels=width)


@attrs.frozen
class TinyFamily:
    """A family's tiny pipeline and what the shared tests need to know about its stock call."""

    build: Callable[[int], Any]
    #: Stock arguments that turn a negative prompt on (FLUX needs true CFG for it).
    negative: Mapping[str, Any] = attrs.field(factory=lambda: {"negative_prompt": "blurry"})
    #: Denoiser calls per step under guidance (2: the two branches run separately).
    calls_per_step: int = 1
    #: Stock arguments the shared tests add to every call so that a call makes the size it asks
    #: for (PixArt-Sigma: resolution binning off; its binning has tests of its own).
    call: Mapping[str, Any] = attrs.field(factory=dict)
    #: ``sized(pipe, height, width)``: a context in which a stock call makes the size it asks for
    #: where no argument does (HiDream scales every size to the area of its
    #: ``default_sample_size``); the shared tests run stock calls at other sizes than the
    #: pipeline's default inside it.
    sized: Callable[[Any, int, int], AbstractContextManager[Any]] = attrs.field(
        default=lambda pipe, height, width: nullcontext()
    )


#: One entry per family of the registry (a test keeps them equal).
TINY_FAMILIES: dict[str, TinyFamily] = {
    "flux": TinyFamily(
        tiny_flux_pipeline, negative={"negative_prompt": "blurry", "true_cfg_scale": 2.0}
    ),
    "sd3": TinyFamily(tiny_sd3_pipeline),
    "sdxl": TinyFamily(tiny_sdxl_pipeline),
    "sd": TinyFamily(tiny_sd_pipeline),
    "cogview4": TinyFamily(tiny_cogview4_pipeline, calls_per_step=2),
    "pixart-sigma": TinyFamily(tiny_pixart_sigma_pipeline, call={"use_resolution_binning": False}),
    "chroma": TinyFamily(tiny_chroma_pipeline, calls_per_step=2),
    "sana": TinyFamily(tiny_sana_pipeline, call={"use_resolution_binning": False}),
    # True CFG: a negative prompt turns the second branch on (stock true_cfg_scale 4.0).
    "qwen-image": TinyFamily(tiny_qwen_image_pipeline),
    # Guidance is on by default (guidance_scale 4.5 > 0, an empty negative prompt).
    "krea2": TinyFamily(tiny_krea2_pipeline, calls_per_step=2),
    "hidream": TinyFamily(tiny_hidream_pipeline, sized=generating_as_asked),
    "z-image": TinyFamily(tiny_z_image_pipeline),
    "lumina2": TinyFamily(tiny_lumina2_pipeline, calls_per_step=2),
    # The stock call's negative prompt is always the empty one, under guidance (on by default).
    "flux2-klein": TinyFamily(tiny_flux2_klein_pipeline, negative={}, calls_per_step=2),
    # Guidance-distilled: no negative prompt, one denoiser call per step.
    "flux2": TinyFamily(tiny_flux2_pipeline, negative={}),
}


def tiny_pipeline(kind: str, seed: int = 0) -> Any:
    """Build the tiny pipeline of ``kind`` (one of :data:`PIPELINE_KINDS`) with ``seed``.

    ``"sd"`` uses its default DDIM scheduler; call :func:`tiny_sd_pipeline` for another one.
    """
    try:
        builder = TINY_FAMILIES[kind].build
    except KeyError:
        raise ValueError(
            f"unknown pipeline kind {kind!r}; expected one of {PIPELINE_KINDS}"
        ) from None
    return builder(seed)


# --------------------------------------------------------------------------------------------
# Saving with aligned tensors
# --------------------------------------------------------------------------------------------


def save_tiny_pipeline(pipe: Any, folder: str | os.PathLike[str], **kwargs: Any) -> Path:
    """``pipe.save_pretrained(folder, **kwargs)`` followed by :func:`align_safetensors`.

    A pipeline saved this way and loaded with the stock ``from_pretrained`` reproduces the
    in-memory pipeline bit for bit on CPU. Plain ``save_pretrained`` round-trips the same
    weights, configs and tokenizers, and with the pinned library versions the builders' sizes
    happen to give aligned denoiser weights too, but that depends on header lengths.
    """
    pipe.save_pretrained(folder, **kwargs)
    align_safetensors(folder)
    return Path(folder)
