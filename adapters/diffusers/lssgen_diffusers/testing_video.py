"""Tiny random-weight *stock* Diffusers video pipelines (Wan, LTX-Video), built offline from
configs, for tests and benchmarks (as :mod:`lssgen_diffusers.testing` does for images).

The videos are noise, but every shape the LSS video pipelines rely on is the real family's:

* Wan: ``AutoencoderKLWan`` with 8x spatial / 4x temporal compression and 16 latent channels,
  ``WanTransformer3DModel`` with patch ``(1, 2, 2)``, a UMT5 text encoder, and Wan 2.1's shipped
  scheduler (UniPC, flow sigmas, static ``flow_shift``); ``boundary_ratio`` and a second
  transformer give a Wan 2.2 two-expert pipeline.
* LTX-Video: ``AutoencoderKLLTXVideo`` with 128 latent channels and 32x spatial / 8x temporal
  compression (patch 4, three scaling blocks, as the released VAE), ``LTXVideoTransformer3DModel``
  on the packed ``[B, F*h*w, 128]`` tokens, a T5 text encoder and FLUX-style dynamic shifting;
  :func:`tiny_ltx_upsampler` is a small ``LTXLatentUpsamplerModel``.

Everything is deterministic given ``seed``, built without touching torch's global random state,
in ``eval()`` mode, float32, on the CPU.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    LTXPipeline,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
from transformers import T5EncoderModel, T5Tokenizer, UMT5EncoderModel

from lssgen_diffusers.testing import tiny_t5_encoder, tiny_t5_tokenizer
from lssgen_diffusers.testing_build import (
    configured,
    seeded,
    stream_seed,
    tiny_module,
    tiny_stock_pipeline,
)

__all__ = [
    "WAN_FLOW_SHIFT",
    "tiny_ltx_pipeline",
    "tiny_ltx_upsampler",
    "tiny_wan_pipeline",
    "tiny_wan_transformer",
    "wan_scheduler",
]

# Wan 2.1's shipped scheduler for its 480p setting: UniPC on flow sigmas, flow_shift 3.0 (the
# Wan-AI/Wan2.1-T2V-1.3B-Diffusers scheduler config; 720p uses 5.0).
WAN_FLOW_SHIFT = 3.0
_TEXT_WIDTH = 32


def wan_scheduler(flow_shift: float = WAN_FLOW_SHIFT) -> UniPCMultistepScheduler:
    return configured(UniPCMultistepScheduler, "schedulers", "wan", flow_shift=flow_shift)


def tiny_wan_transformer(
    seed: int = 0,
    component: str = "transformer",
    *,
    heads: int = 2,
    head_dim: int = 12,
    layers: int = 2,
    ffn_dim: int = 32,
) -> WanTransformer3DModel:
    """A Wan transformer of Wan's architecture at a tiny width (the benchmark widens it)."""
    return tiny_module(
        WanTransformer3DModel,
        "denoisers",
        "wan",
        stream_seed(seed, component),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        text_dim=_TEXT_WIDTH,
        ffn_dim=ffn_dim,
        num_layers=layers,
    )


_Encoder = TypeVar("_Encoder", T5EncoderModel, UMT5EncoderModel)


def _text(tokenizer: T5Tokenizer, seed: int, model_class: type[_Encoder]) -> dict[str, Any]:
    """The ``tokenizer`` and a random ``text_encoder`` over it, of the video text stream."""
    with seeded(stream_seed(seed, "video_text_encoder")):
        encoder = tiny_t5_encoder(tokenizer, _TEXT_WIDTH, model_class)
    return {"tokenizer": tokenizer, "text_encoder": encoder}


def tiny_wan_vae(seed: int = 0) -> AutoencoderKLWan:
    """Wan's VAE layout (8x space, 4x time, 16 channels) at base width 4."""
    return tiny_module(AutoencoderKLWan, "autoencoders", "wan", stream_seed(seed, "vae"))


def tiny_wan_pipeline(
    seed: int = 0,
    *,
    two_experts: bool = False,
    boundary_ratio: float = 0.875,
    flow_shift: float = WAN_FLOW_SHIFT,
    transformer: WanTransformer3DModel | None = None,
) -> WanPipeline:
    """A tiny Wan 2.1 pipeline; ``two_experts``: Wan 2.2's ``transformer`` (high noise) and
    ``transformer_2`` (low noise), switching at ``boundary_ratio``; ``transformer``: a given one
    in place of :func:`tiny_wan_transformer`."""
    components = {
        **_text(tiny_t5_tokenizer(model_max_length=512), seed, UMT5EncoderModel),
        "scheduler": wan_scheduler(flow_shift),
        "transformer": transformer if transformer is not None else tiny_wan_transformer(seed),
        "transformer_2": tiny_wan_transformer(seed, "transformer_2") if two_experts else None,
        "boundary_ratio": boundary_ratio if two_experts else None,
    }
    return tiny_stock_pipeline(WanPipeline, "wan", seed, components)


def tiny_ltx_vae(seed: int = 0) -> AutoencoderKLLTXVideo:
    """LTX-Video's VAE geometry (128 channels, patch 4, 3 scaling blocks: 32x space, 8x time)."""
    vae = tiny_module(AutoencoderKLLTXVideo, "autoencoders", "ltx", stream_seed(seed, "vae"))
    # The released VAE normalises by per-channel statistics; zeros and ones (the class's
    # initial buffers) would hide a missing (de)normalisation.
    with torch.no_grad():
        vae.latents_mean.copy_(torch.linspace(-0.5, 0.5, 128))
        vae.latents_std.copy_(torch.linspace(0.5, 1.5, 128))
    return vae.eval()


def tiny_ltx_pipeline(seed: int = 0) -> LTXPipeline:
    """A tiny LTX-Video pipeline on the shipped scheduler's dynamic shifting."""
    components = {
        **_text(tiny_t5_tokenizer(model_max_length=128), seed, T5EncoderModel),
        "vae": tiny_ltx_vae(seed),
    }
    return tiny_stock_pipeline(LTXPipeline, "ltx", seed, components, caption_channels=_TEXT_WIDTH)


def tiny_ltx_upsampler(seed: int = 0, *, dims: int = 3) -> LTXLatentUpsamplerModel:
    """LTX's own latent upsampler class (2x in space), tiny: 128 channels in, 32 wide."""
    return tiny_module(
        LTXLatentUpsamplerModel,
        "denoisers",
        "ltx_upsampler",
        stream_seed(seed, "upsampler"),
        dims=dims,
    )
