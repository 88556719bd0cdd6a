"""What the PixArt-style families (PixArt-Sigma, SANA) share: masked prompts and binning.

Both stock calls encode prompts with attention masks, take ``timesteps`` / ``sigmas`` that fix
one schedule, and with ``use_resolution_binning`` (their default) generate the nearest size of
an aspect-ratio table that the transformer's ``sample_size`` picks, then resize the image back.
:class:`PixArtLayout` supplies those parts of the :class:`~lssgen_diffusers.family.LSSFamily`
contract from the family's :attr:`PixArtLayout.lss_aspect_bins`; a family on it is
``class LSSXPipeline(LSSPipelineMixin, PixArtLayout, XPipeline)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import (
    ASPECT_RATIO_256_BIN,
    ASPECT_RATIO_512_BIN,
    ASPECT_RATIO_1024_BIN,
)
from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN
from diffusers.pipelines.sana.pipeline_sana import ASPECT_RATIO_4096_BIN

from lssgen_diffusers.family import LSSFamily, binned_by_sample_size

#: The aspect-ratio bins ``PixArtSigmaPipeline.__call__`` picks by the transformer's
#: ``sample_size``.
PIXART_SIGMA_BINS: Mapping[int, Any] = {
    256: ASPECT_RATIO_2048_BIN,
    128: ASPECT_RATIO_1024_BIN,
    64: ASPECT_RATIO_512_BIN,
    32: ASPECT_RATIO_256_BIN,
}
#: The aspect-ratio bins ``SanaPipeline.__call__`` picks by the transformer's ``sample_size``.
SANA_BINS: Mapping[int, Any] = {
    128: ASPECT_RATIO_4096_BIN,
    64: ASPECT_RATIO_2048_BIN,
    32: ASPECT_RATIO_1024_BIN,
    16: ASPECT_RATIO_512_BIN,
}


class PixArtLayout(LSSFamily):
    """Masked prompt embeddings, schedule-fixing ``timesteps`` / ``sigmas`` and the stock
    aspect-ratio binning of :attr:`lss_aspect_bins`."""

    #: The family's aspect-ratio tables by the transformer's ``sample_size``.
    lss_aspect_bins: ClassVar[Mapping[int, Any]]
    lss_schedule_arguments = ("timesteps", "sigmas")
    lss_encode_outputs = (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    )
    lss_resolution_binning = "use_resolution_binning"

    def lss_binned_size(self, height: int, width: int) -> tuple[int, int]:
        return binned_by_sample_size(self._lss_pipe, self.lss_aspect_bins, height, width)
