"""A tiny random-weight *stock* ``Lumina2Pipeline``, built offline from configs (see
:mod:`lssgen_diffusers.testing`, whose ``TINY_FAMILIES`` lists it)."""

from __future__ import annotations

from diffusers import Lumina2Pipeline

from lssgen_diffusers.testing_build import text_components, tiny_stock_pipeline

__all__ = ["tiny_lumina2_pipeline"]

# FLUX.1's VAE, which Lumina Image 2.0 uses (scaling_factor, shift_factor).
_FLUX_VAE_FACTORS = (0.3611, 0.1159)


def tiny_lumina2_pipeline(seed: int = 0) -> Lumina2Pipeline:
    """A tiny random Lumina-Image-2.0-shaped ``Lumina2Pipeline``.

    * VAE: FLUX.1's (16 latent channels, scaling 0.3611, shift 0.1159, no quant convs).
    * Transformer: ``Lumina2Transformer2DModel`` with patch size 2, 16 channels, one main and
      one refiner layer, 2 heads x 16 dims (one key/value head), RoPE axes (4, 6, 6),
      ``cap_feat_dim=32`` (Gemma width), ``sample_size=16``: default 128 px.
    * Text: SANA's tiny ``Gemma2Model`` (32 wide, 2 layers) and byte-level Gemma tokenizer; the
      stock call prepends its system prompt and pads to ``max_sequence_length`` with a mask.
    * Scheduler: ``FlowMatchEulerDiscreteScheduler`` with a static shift of 6.0.

    Height and width must be multiples of 16.
    """
    # Imported here: lssgen_diffusers.testing imports this module for its TINY_FAMILIES.
    from lssgen_diffusers.testing import gemma2_encoder, tiny_gemma_tokenizer

    text = text_components(seed, (tiny_gemma_tokenizer(), gemma2_encoder))
    width = text["text_encoder"].config.hidden_size
    return tiny_stock_pipeline(Lumina2Pipeline, "lumina2", seed, text, cap_feat_dim=width)
