"""The latent multiple of a denoiser that patches the latent by its config's ``patch_size``.

SD3, CogView4, PixArt-Sigma and SANA cut the (unpacked) latent into ``patch_size`` x
``patch_size`` patches inside the transformer, so stage sizes must be multiples of
``vae_scale_factor * patch_size``; :class:`TransformerPatches` reads it from the loaded
transformer's config. A family on it is
``class LSSXPipeline(LSSPipelineMixin, TransformerPatches, XPipeline)``.
"""

from __future__ import annotations

from lssgen_diffusers.family import LSSFamily


class TransformerPatches(LSSFamily):
    """:attr:`~lssgen_diffusers.family.LSSFamily.lss_patch_size` from
    ``transformer.config.patch_size`` (an int)."""

    @property
    def lss_patch_size(self) -> int:  # type: ignore[override]
        return int(self._lss_pipe.transformer.config.patch_size)
