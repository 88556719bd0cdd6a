"""LSS for Wan 2.1 / 2.2 text-to-video: ``LSSWanPipeline``.

Everything Wan differs in is here: its latents are unpacked ``[B, 16, F, h, w]`` (the
transformer patchifies ``(1, 2, 2)`` itself), its VAE compresses 8x in space and 4x in time
(``F = (num_frames - 1) // 4 + 1``), its ``__call__`` sets the scheduler with
``set_timesteps(num_inference_steps)`` alone (neither ``sigmas`` nor ``timesteps``; the shipped
scheduler is UniPC with a static ``flow_shift``, so every stage size has the same levels for the
same step count), and it rounds ``height`` / ``width`` down to multiples of 16 and ``num_frames``
to ``4k + 1``, with warnings.

Wan 2.2's two experts: the stock loop denoises a step with ``transformer`` when its timestep
``t >= boundary_ratio * num_train_timesteps`` and with ``transformer_2`` below. Each LSS stage is
one stock call on its own schedule, so the switch stays where it is on the noise-level axis in
every stage: a later stage that enters above the boundary starts on the high-noise
``transformer`` and switches to ``transformer_2`` when its levels cross the boundary, as a stock
call does; one that enters at or below it runs ``transformer_2`` only (the high-noise expert
never sees a latent at a level it was not trained for). The first stage runs from pure noise
through both. Tested in ``tests/video/test_wan.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from diffusers import WanPipeline
from diffusers.pipelines.wan import pipeline_wan

from lssgen_core.schedules import StageSize
from lssgen_diffusers.component import COMPONENT_NAME, offload_sequence
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC
from lssgen_diffusers.options import LSSDefaults
from lssgen_diffusers.video import LSSVideoPipelineMixin
from lssgen_diffusers.video_vae import VideoVaeCodec

# Wan 2.1's 480p setting (832x480) halves once to 416x240; 50 steps and guidance 5 are the
# stock __call__'s defaults. 720p (1280x720) cannot halve: 720 / 2 = 360 px is 22.5 patches.
WAN_DEFAULTS = LSSDefaults(240, False, num_inference_steps=50, guidance_scale=5.0)


class LSSWanPipeline(LSSVideoPipelineMixin, WanPipeline):
    __doc__ = (
        """``WanPipeline`` (Wan 2.1 / 2.2 text-to-video) with latent space scaling (LSSGen).

    Spatial stages over ``[B, C, F, H, W]`` latents: every stage makes the call's
    ``num_frames``; height and width double per stage. Defaults: ``min_size=240`` (the 480p
    setting runs 416x240, then 832x480), ``shorten_intermediate_steps=False``,
    ``start_sigma=0.75``, ``scaling_mode="resnet"`` (a 16-channel ``LatentUpsampler`` for Wan's
    VAE, applied per frame). Wan 2.2's ``transformer`` -> ``transformer_2`` switch at
    ``boundary_ratio`` stays at the same noise level in every stage (module docstring).
    Extra component: ``latent_upsampler`` (optional).
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = WAN_DEFAULTS
    lss_compression_attributes = ("vae_scale_factor_spatial", "vae_scale_factor_temporal")
    lss_schedule_arguments: ClassVar[tuple[str, ...]] = ()  # the stock call takes neither
    model_cpu_offload_seq = offload_sequence(WanPipeline.model_cpu_offload_seq)
    _optional_components: ClassVar[list[str]] = [*WanPipeline._optional_components, COMPONENT_NAME]

    @property
    def lss_denoiser_name(self) -> str:
        # Wan 2.2 pipelines may ship only one of the two experts.
        return "transformer" if self.transformer is not None else "transformer_2"

    @property
    def lss_patch_size(self) -> int:
        return int(self.lss_denoiser.config.patch_size[1])

    @property
    def lss_temporal_patch_size(self) -> int:
        return int(self.lss_denoiser.config.patch_size[0])

    def lss_default_size(self) -> tuple[int, int]:
        return 480, 832  # the stock __call__'s defaults

    def lss_stock_num_frames(self, num_frames: int) -> int:
        # As WanPipeline.__call__: down to 4k + 1 (it warns), at least 1.
        compression = self.lss_temporal_compression
        if num_frames % compression != 1:
            num_frames = num_frames // compression * compression + 1
        return max(num_frames, 1)

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        # As WanPipeline.__call__: down to multiples of vae_scale_factor_spatial x patch.
        multiple = self.lss_vae_scale_factor * self.lss_patch_size
        return height // multiple * multiple, width // multiple * multiple

    def lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        # The stock warning, once; the stages are then called at the rounded size.
        multiple = self.lss_vae_scale_factor * self.lss_patch_size
        rounded = self.lss_stock_size(height, width)
        pipeline_wan.logger.warning(
            f"`height` and `width` must be multiples of ({multiple}, {multiple}) for proper "
            f"patchification. Adjusting ({height}, {width}) -> {rounded}."
        )

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As WanPipeline.__call__: the scheduler's own levels (UniPC's static flow_shift).
        scheduler.set_timesteps(num_steps, device="cpu")

    def lss_video_codec(self) -> VideoVaeCodec:
        return wan_video_codec(self.vae)


def wan_video_codec(vae: Any) -> VideoVaeCodec:
    """Wan's VAE in model space, as WanPipeline.__call__ decodes: raw = latents * std + mean."""
    return VideoVaeCodec(vae, vae.config.latents_mean, vae.config.latents_std)
