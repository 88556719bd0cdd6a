"""What every LSS video pipeline shares: spatial stages over ``[B, C, F, H, W]`` latents.

Each stage is one stock ``__call__`` at the stage's height and width and the call's own
``num_frames``, so frames are kept and only height and width double per stage
(:mod:`lssgen_core.frames`); the plan counts tokens over every frame. Latents are scaled frame
by frame (the 2-D ``LatentUpsampler`` over the ``B * F`` frames), or through the family's video
VAE for ``scaling_mode="pixel"``. A family module (``wan.py``, ``ltx.py``) supplies the rest: the
names of its VAE's compression attributes, its frame rule, latent layout, scheduler call and VAE
normalisation (and what its ``encode_prompt`` returns, where that is more than the embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from lssgen_core.frames import FrameAxis, check_num_frames, video_frame_axis
from lssgen_core.plan import Stage
from lssgen_core.upsample import LatentScaler, LatentUpsampler, make_video_latent_scaler
from lssgen_diffusers import placement
from lssgen_diffusers.component import COMPONENT_NAME
from lssgen_diffusers.mixin import LSSPipelineMixin
from lssgen_diffusers.video_vae import VideoVaeCodec


class LSSVideoPipelineMixin(LSSPipelineMixin):
    """:class:`LSSPipelineMixin` for text-to-video pipelines (put the family's class first)."""

    lss_per_prompt_argument: ClassVar[str] = "num_videos_per_prompt"
    # Both stock video pipelines cast given latents to float32 in prepare_latents.
    lss_casts_latents: ClassVar[bool] = True
    # True: refuse a num_frames the VAE does not decode (the stock call would silently make
    # another count); False: the stock call rounds it, with its own warning.
    lss_exact_frames: ClassVar[bool] = False

    # --- what each video family supplies ----------------------------------------------------

    #: The stock pipeline's attributes holding its VAE's spatial and temporal compression (each
    #: video pipeline names them its own way).
    lss_compression_attributes: ClassVar[tuple[str, str]]

    @property
    def lss_vae_scale_factor(self) -> int:
        return int(getattr(self, self.lss_compression_attributes[0]))

    @property
    def lss_temporal_compression(self) -> int:
        """Frames per latent frame of the VAE (after the first, causal frame)."""
        return int(getattr(self, self.lss_compression_attributes[1]))

    @property
    def lss_temporal_patch_size(self) -> int:
        """Latent frames per token: the denoiser config's ``patch_size_t`` (LTX-Video's), else 1."""
        return int(self.lss_denoiser.config.get("patch_size_t") or 1)

    def lss_stock_num_frames(self, num_frames: int) -> int:
        """The frame count the stock ``__call__`` makes when asked for ``num_frames``."""
        return num_frames

    def lss_video_codec(self) -> VideoVaeCodec:
        """The family's VAE with its latent normalisation (``scaling_mode="pixel"``)."""
        raise NotImplementedError

    # --- the mixin's hooks, for a frame axis ----------------------------------------------------

    def lss_frames(self, call: Mapping[str, Any]) -> FrameAxis | None:
        frames = self.lss_stock_num_frames(int(call["num_frames"]))
        return video_frame_axis(frames, self.lss_temporal_compression, self.lss_temporal_patch_size)

    def _lss_check_call(self, call: Mapping[str, Any], height: int, width: int) -> None:
        super()._lss_check_call(call, height, width)
        check_num_frames(
            call.get("num_frames"), self.lss_temporal_compression, exact=self.lss_exact_frames
        )

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        return (
            batch,
            self.lss_latent_channels,
            stage.size.latent_frames,
            stage.latent_height,
            stage.latent_width,
        )

    def _lss_scaler(self, scaling_mode: str) -> LatentScaler:
        if scaling_mode == "pixel":
            codec = self.lss_video_codec()
            return make_video_latent_scaler("pixel", decode=codec.decode, encode=codec.encode)
        upsampler: LatentUpsampler | None = getattr(self, COMPONENT_NAME, None)
        # Refuses "resnet" without an upsampler (the core's one check of it).
        scaler = make_video_latent_scaler(scaling_mode, upsampler=upsampler)
        if scaling_mode == "resnet":
            assert upsampler is not None
            upsampler.check_latent_channels(self.lss_latent_channels)
            runs_on = torch.device(self._lss_host._execution_device)
            placement.check_upsampler_device(upsampler, runs_on)
        return scaler
