"""Tiny random FLUX.2 pipelines (stock ``Flux2KleinPipeline``, ``Flux2Pipeline``), built offline
from configs.

As :mod:`lssgen_diffusers.testing`: random weights, tokenizers built in code, nothing downloaded,
deterministic given ``seed``, modules in ``eval()`` mode in float32 on the CPU.
"""

from __future__ import annotations

from functools import partial
from typing import Any, TypeVar

import torch
from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Pipeline

from lssgen_diffusers.testing_build import (
    seeded,
    stream_seed,
    text_components,
    tiny_module,
    tiny_stock_pipeline,
)
from lssgen_diffusers.testing_text import (
    tiny_mistral3_encoder,
    tiny_mistral3_tokenizer,
    tiny_qwen3_causal_lm,
    tiny_qwen3_tokenizer,
)

#: The Qwen3 hidden-state layers Flux2KleinPipeline reads by default (text_encoder_out_layers).
KLEIN_TEXT_LAYERS = (9, 18, 27)
#: The Mistral Small 3 hidden-state layers Flux2Pipeline reads by default.
FLUX2_TEXT_LAYERS = (10, 20, 30)


def tiny_flux2_vae(seed: int = 0) -> AutoencoderKLFlux2:
    """A tiny random ``AutoencoderKLFlux2``: four blocks of 8 channels (so 8x, as FLUX.2's VAE),
    32 latent channels, 2x2 patches, and batch-norm running statistics over the 128 patch
    channels that are not the identity (means about 0.3, variances 0.5 to 2: a real VAE's are
    not, so a conversion that forgot them would show)."""
    vae = tiny_module(AutoencoderKLFlux2, "autoencoders", "flux2", stream_seed(seed, "vae"))
    with seeded(stream_seed(seed, "vae_statistics")), torch.no_grad():
        channels = vae.bn.running_mean.shape[0]
        vae.bn.running_mean.copy_(0.3 * torch.randn(channels))
        vae.bn.running_var.copy_(0.5 + 1.5 * torch.rand(channels))
    return vae.eval()


_Flux2 = TypeVar("_Flux2", Flux2KleinPipeline, Flux2Pipeline)


def _flux2_pipeline(
    pipeline_class: type[_Flux2],
    family: str,
    seed: int,
    text: dict[str, Any],
    text_width: int,
    guidance: bool,
) -> _Flux2:
    """A FLUX.2 pipeline of ``text``, :func:`tiny_flux2_vae` and a transformer reading the stacked
    text layers (``text_width`` wide), with the guidance embedding where ``guidance``."""
    components = {"vae": tiny_flux2_vae(seed), **text}
    return tiny_stock_pipeline(
        pipeline_class,
        family,
        seed,
        components,
        joint_attention_dim=text_width,
        guidance_embeds=guidance,
    )


def tiny_flux2_klein_pipeline(seed: int = 0) -> Flux2KleinPipeline:
    """A tiny random FLUX.2 [klein]-shaped ``Flux2KleinPipeline`` (a base model: not distilled,
    so ``guidance_scale > 1`` runs classifier-free guidance, two denoiser calls per step).

    * VAE: :func:`tiny_flux2_vae` (32 channels at 8x, patchified to 128, batch-normalised).
    * Transformer: ``Flux2Transformer2DModel`` with ``in_channels=128`` (the patches), one double-
      and one single-stream block, 2 heads x 16 dims, RoPE axes (4, 4, 4, 4), no guidance
      embedding (as Klein's), ``joint_attention_dim`` 48 (three Qwen3 layers of 16 stacked).
    * Text: ``Qwen3ForCausalLM`` (16 wide, 27 layers: the stock call stacks hidden states 9, 18
      and 27) with a byte-level Qwen tokenizer and chat template.
    * Scheduler: FLUX.2's ``FlowMatchEulerDiscreteScheduler`` (dynamic shifting; the stock call
      passes ``mu = compute_empirical_mu(tokens, steps)`` and linear sigmas).

    ``default_sample_size`` is 128 (1024 px); height and width must be multiples of 16. The
    ``latents`` argument is ``(B, 128, H/16, W/16)``; ``output_type="latent"`` gives the raw
    VAE latent ``(B, 32, H/8, W/8)``.
    """
    encoder = partial(tiny_qwen3_causal_lm, num_hidden_layers=max(KLEIN_TEXT_LAYERS))
    text = text_components(seed, (tiny_qwen3_tokenizer(), encoder))
    width = len(KLEIN_TEXT_LAYERS) * text["text_encoder"].config.hidden_size
    return _flux2_pipeline(Flux2KleinPipeline, "flux2-klein", seed, text, width, guidance=False)


def tiny_flux2_pipeline(seed: int = 0) -> Flux2Pipeline:
    """A tiny random FLUX.2 [dev]-shaped ``Flux2Pipeline`` (guidance-distilled: ``guidance_scale``
    is an input of the transformer, one denoiser call per step, no negative prompt).

    * VAE: :func:`tiny_flux2_vae` (32 channels at 8x, patchified to 128, batch-normalised).
    * Transformer: as Klein's tiny one but with the guidance embedding (as FLUX.2 [dev]'s).
    * Text: ``Mistral3ForConditionalGeneration`` (a Mistral text model 16 wide of 30 layers: the
      stock call stacks hidden states 10, 20 and 30; a one-layer Pixtral vision tower) with a
      byte-level Mistral-style tokenizer and chat template standing in for the stock processor.
    * Scheduler: FLUX.2's (as Klein's).

    ``output_type="latent"`` gives the denoiser's normalised tokens ``(B, (H/16) * (W/16), 128)``.
    """
    encoder = partial(tiny_mistral3_encoder, num_hidden_layers=max(FLUX2_TEXT_LAYERS))
    text = text_components(seed, (tiny_mistral3_tokenizer(), encoder))
    width = len(FLUX2_TEXT_LAYERS) * text["text_encoder"].config.text_config.hidden_size
    return _flux2_pipeline(Flux2Pipeline, "flux2", seed, text, width, guidance=True)
