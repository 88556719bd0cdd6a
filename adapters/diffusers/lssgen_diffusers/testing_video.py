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

from contextlib import AbstractContextManager
from typing import TypeVar

import torch
from diffusers import (
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
from transformers import T5EncoderModel, T5Tokenizer, UMT5EncoderModel

from lssgen_diffusers.testing import seeded_fork, tiny_t5_encoder, tiny_t5_tokenizer

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
_OFFSETS = {"vae": 1, "transformer": 2, "transformer_2": 3, "text_encoder": 4, "upsampler": 5}


def _seeded(seed: int, component: str) -> AbstractContextManager[None]:
    return seeded_fork(seed, _OFFSETS[component])


def wan_scheduler(flow_shift: float = WAN_FLOW_SHIFT) -> UniPCMultistepScheduler:
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=flow_shift,
    )


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
    with _seeded(seed, component):
        model = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=heads,
            attention_head_dim=head_dim,
            in_channels=16,
            out_channels=16,
            text_dim=_TEXT_WIDTH,
            freq_dim=32,
            ffn_dim=ffn_dim,
            num_layers=layers,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        )
    return model.eval()


_Encoder = TypeVar("_Encoder", T5EncoderModel, UMT5EncoderModel)


def _text_encoder(tokenizer: T5Tokenizer, seed: int, model_class: type[_Encoder]) -> _Encoder:
    with _seeded(seed, "text_encoder"):
        return tiny_t5_encoder(tokenizer, _TEXT_WIDTH, model_class)


def tiny_wan_vae(seed: int = 0) -> AutoencoderKLWan:
    """Wan's VAE layout (8x space, 4x time, 16 channels) at base width 4."""
    with _seeded(seed, "vae"):
        vae = AutoencoderKLWan(
            base_dim=4,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        )
    return vae.eval()


def tiny_wan_pipeline(
    seed: int = 0,
    *,
    two_experts: bool = False,
    boundary_ratio: float = 0.875,
    flow_shift: float = WAN_FLOW_SHIFT,
    transformer: WanTransformer3DModel | None = None,
) -> WanPipeline:
    """A tiny Wan 2.1 pipeline; ``two_experts``: Wan 2.2's ``transformer`` (high noise) and
    ``transformer_2`` (low noise), switching at ``boundary_ratio``."""
    tokenizer = tiny_t5_tokenizer(model_max_length=512)
    encoder = _text_encoder(tokenizer, seed, UMT5EncoderModel)
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=encoder,
        vae=tiny_wan_vae(seed),
        scheduler=wan_scheduler(flow_shift),
        transformer=transformer if transformer is not None else tiny_wan_transformer(seed),
        transformer_2=tiny_wan_transformer(seed, "transformer_2") if two_experts else None,
        boundary_ratio=boundary_ratio if two_experts else None,
    )


def tiny_ltx_vae(seed: int = 0) -> AutoencoderKLLTXVideo:
    """LTX-Video's VAE geometry (128 channels, patch 4, 3 scaling blocks: 32x space, 8x time)."""
    with _seeded(seed, "vae"):
        vae = AutoencoderKLLTXVideo(
            latent_channels=128,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, True, False),
            decoder_spatio_temporal_scaling=(True, True, True, False),
            decoder_inject_noise=(False, False, False, False, False),
            upsample_residual=(False, False, False, False),
            upsample_factor=(1, 1, 1, 1),
            timestep_conditioning=False,
            patch_size=4,
            patch_size_t=1,
            encoder_causal=True,
            decoder_causal=False,
        )
    # The released VAE normalises by per-channel statistics; zeros and ones (the class's
    # initial buffers) would hide a missing (de)normalisation.
    with torch.no_grad():
        vae.latents_mean.copy_(torch.linspace(-0.5, 0.5, 128))
        vae.latents_std.copy_(torch.linspace(0.5, 1.5, 128))
    return vae.eval()


def tiny_ltx_pipeline(seed: int = 0) -> LTXPipeline:
    """A tiny LTX-Video pipeline on the shipped scheduler's dynamic shifting."""
    tokenizer = tiny_t5_tokenizer(model_max_length=128)
    encoder = _text_encoder(tokenizer, seed, T5EncoderModel)
    with _seeded(seed, "transformer"):
        transformer = LTXVideoTransformer3DModel(
            in_channels=128,
            out_channels=128,
            patch_size=1,
            patch_size_t=1,
            num_attention_heads=2,
            attention_head_dim=8,
            cross_attention_dim=16,
            num_layers=1,
            caption_channels=_TEXT_WIDTH,
        ).eval()
    # LTX-Video's shipped scheduler config (Lightricks/LTX-Video scheduler_config.json).
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        base_shift=0.95,
        max_shift=2.05,
        shift_terminal=0.1,
    )
    return LTXPipeline(
        scheduler=scheduler,
        vae=tiny_ltx_vae(seed),
        text_encoder=encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def tiny_ltx_upsampler(seed: int = 0, *, dims: int = 3) -> LTXLatentUpsamplerModel:
    """LTX's own latent upsampler class (2x in space), tiny: 128 channels in, 32 wide."""
    with _seeded(seed, "upsampler"):
        model = LTXLatentUpsamplerModel(
            in_channels=128, mid_channels=32, num_blocks_per_stage=1, dims=dims
        )
    return model.eval()
