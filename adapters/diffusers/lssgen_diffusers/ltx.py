"""LSS for LTX-Video text-to-video: ``LSSLTXPipeline``, and LTX's own upsampler as a scaler.

Everything LTX differs in is here. Its latents are 128-channel ``[B, C, F, h, w]`` after a VAE
that compresses 32x in space and 8x in time, normalised by the VAE's ``latents_mean`` /
``latents_std`` and ``scaling_factor``, and packed by the pipeline into ``[B, F*h*w, 128]``
tokens (the transformer's patch is 1x1x1); the stock ``output_type="latent"`` result is packed
too, so a stage's latent is unpacked for scaling and packed again. The stock ``__call__`` sets
linear sigmas with a dynamic shift ``mu`` from the video's token count (latent frames x height x
width), which every stage recomputes for its own size. It refuses sizes that are not multiples
of 32, and makes ``(num_frames - 1) // 8 * 8 + 1`` frames for any ``num_frames``: LSS refuses a
count of another form (naming ``num_frames``) rather than return fewer frames than asked.

LTX-Video's official multi-scale recipe is already low resolution, a learned latent upsample,
then refine steps, through its own ``LTXLatentUpsamplerModel``; this pipeline runs it through the
LSS arguments. Its ``latent_upsampler`` is our ``LatentUpsampler`` (applied per frame in model
space), or LTX's model, given as the object or by name (a folder, or a Hub name as Diffusers
resolves it, holding the model or a ``latent_upsampler/`` subfolder with it; safetensors only).
LTX's model upsamples the whole clip in the VAE's raw latent space, as
``LTXLatentUpsamplePipeline`` runs it: the stage's latent is de-normalised, upsampled and
normalised again. ``scaling_mode="resnet"`` (the default) runs whichever upsampler it is.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from diffusers import LTXPipeline
from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.plan import Stage
from lssgen_core.schedules import StageSize
from lssgen_core.upsample import LatentScaler, LatentUpsampler
from lssgen_diffusers import placement
from lssgen_diffusers.component import COMPONENT_NAME, check_upsampler, lss_init, offload_sequence
from lssgen_diffusers.family import linear_sigmas, set_shifted_timesteps
from lssgen_diffusers.mixin import LSS_ARGUMENTS_DOC
from lssgen_diffusers.options import LSSDefaults
from lssgen_diffusers.video import LSSVideoPipelineMixin
from lssgen_diffusers.video_vae import VideoVaeCodec

# LTX-Video's stock size (704x512) halves once to 352x256; 50 steps and guidance 3 are the
# stock __call__'s defaults.
LTX_DEFAULTS = LSSDefaults(256, False, num_inference_steps=50, guidance_scale=3.0)


def load_ltx_upsampler(name: str | os.PathLike[str], **kwargs: Any) -> LTXLatentUpsamplerModel:
    """LTX's upsampler by name: a folder with its config and weights, or one with a
    ``latent_upsampler/`` subfolder (the layout of LTX's spatial upscaler pipelines); a name
    that is not a local folder goes to Diffusers' ``from_pretrained`` (the Hub) as it is."""
    folder = Path(name)
    if (folder / COMPONENT_NAME / "config.json").is_file():
        kwargs.setdefault("subfolder", COMPONENT_NAME)
    elif folder.is_dir() and not (folder / "config.json").is_file():
        raise LSSArgumentError(
            COMPONENT_NAME,
            f"latent_upsampler={str(name)!r} is a folder without an LTXLatentUpsamplerModel "
            f"(no config.json, no {COMPONENT_NAME}/config.json)",
        )
    model = LTXLatentUpsamplerModel.from_pretrained(name, use_safetensors=True, **kwargs)
    return model.eval()


def saved_ltx_upsampler(path: str | os.PathLike[str], subfolder: str | None = None) -> Path | None:
    """The ``latent_upsampler/`` folder of a saved local pipeline when it holds LTX's model."""
    folder = Path(path) / (subfolder or "") / COMPONENT_NAME
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        name = json.loads(config.read_text(encoding="utf-8")).get("_class_name")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return folder if name == LTXLatentUpsamplerModel.__name__ else None


def as_ltx_component(upsampler: Any) -> LatentUpsampler | LTXLatentUpsamplerModel | None:
    """The ``latent_upsampler`` an LTX pipeline holds: ours, LTX's (loaded when named), or None."""
    if isinstance(upsampler, (str, os.PathLike)):
        upsampler = load_ltx_upsampler(upsampler)
    if isinstance(upsampler, LTXLatentUpsamplerModel):
        check_ltx_upsampler(upsampler)
        return upsampler
    try:
        check_upsampler(upsampler)
    except TypeError as exc:
        raise LSSArgumentTypeError(
            COMPONENT_NAME,
            f"{exc}; LSSLTXPipeline also takes LTX's LTXLatentUpsamplerModel, or its folder's name",
        ) from exc
    return upsampler


def check_ltx_upsampler(model: LTXLatentUpsamplerModel, channels: int | None = None) -> None:
    """LSS stages keep the frames and double height and width: refuse other upsamplers."""
    config = model.config
    if not config.spatial_upsample or config.temporal_upsample:
        raise LSSArgumentError(
            COMPONENT_NAME,
            f"latent_upsampler is an LTXLatentUpsamplerModel with spatial_upsample="
            f"{config.spatial_upsample}, temporal_upsample={config.temporal_upsample}; LSS stages "
            "need spatial_upsample=True, temporal_upsample=False (2x height and width, the same "
            "frames)",
        )
    if channels is not None and config.in_channels != channels:
        raise LSSArgumentError(
            COMPONENT_NAME,
            f"latent_upsampler has in_channels={config.in_channels} but the VAE's latent has "
            f"{channels} channels; use the upsampler released for this VAE",
        )


@attrs.frozen(eq=False)
class LTXUpsamplerScaler:
    """LTX's ``LTXLatentUpsamplerModel`` as a latent scaler on model-space ``[B, C, F, h, w]``
    latents: de-normalised to the VAE's raw latent, upsampled, normalised again (as
    ``LTXLatentUpsamplePipeline`` runs it, without its optional AdaIN and tone mapping)."""

    model: LTXLatentUpsamplerModel
    codec: VideoVaeCodec

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim != 5:
            raise ValueError(
                f"latent must be a 5-D tensor (B, C, F, H, W), got shape {tuple(latent.shape)}"
            )
        raw = self.codec.to_raw(latent.float()).to(self.model.dtype)
        return self.codec.to_model(self.model(raw).float()).to(latent.dtype)


def _ltx_init(stock: type) -> Callable[..., None]:
    """The generated LSS ``__init__``, taking LTX's upsampler (or its name) too."""
    lss = lss_init(stock)

    def __init__(self: Any, *args: Any, latent_upsampler: Any = None, **kwargs: Any) -> None:
        lss(self, *args, **kwargs)
        self.register_modules(**{COMPONENT_NAME: as_ltx_component(latent_upsampler)})

    signature = inspect.signature(lss)
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__annotations__ = {
        **lss.__annotations__,
        COMPONENT_NAME: LatentUpsampler | LTXLatentUpsamplerModel | None,
    }
    __init__.__qualname__ = lss.__qualname__
    __init__.__doc__ = (
        f"``{stock.__name__}.__init__`` plus ``latent_upsampler`` (a ``LatentUpsampler``, an "
        "``LTXLatentUpsamplerModel``, or the name of its folder)."
    )
    return __init__


def ltx_video_codec(vae: Any) -> VideoVaeCodec:
    """LTX's VAE in model space, as LTXPipeline.__call__ decodes (its buffers' statistics and
    scaling_factor; at its default decode_timestep 0 when the VAE is timestep-conditioned)."""
    timestep = 0.0 if vae.config.timestep_conditioning else None
    return VideoVaeCodec(
        vae, vae.latents_mean, vae.latents_std, vae.config.scaling_factor, timestep
    )


class LSSLTXPipeline(LSSVideoPipelineMixin, LTXPipeline):
    __doc__ = (
        """``LTXPipeline`` (LTX-Video text-to-video) with latent space scaling (LSSGen).

    Spatial stages over packed ``[B, F*h*w, 128]`` latents (unpacked to ``[B, 128, F, h, w]``
    between stages): every stage makes the call's ``num_frames``; height and width double per
    stage. Defaults: ``min_size=256`` (704x512 runs 352x256, then 704x512),
    ``shorten_intermediate_steps=False``, ``start_sigma=0.75``, ``scaling_mode="resnet"``.
    Extra component: ``latent_upsampler``: a 128-channel ``LatentUpsampler``, or LTX's own
    ``LTXLatentUpsamplerModel`` (the object, or its folder's name), optional.
    """
        + LSS_ARGUMENTS_DOC
    )

    lss_defaults = LTX_DEFAULTS
    # The stock encode_prompt's results; the masks get one row per video as the embeddings do.
    lss_encode_outputs = (
        "prompt_embeds",
        "prompt_attention_mask",
        "negative_prompt_embeds",
        "negative_prompt_attention_mask",
    )
    lss_compression_attributes = ("vae_spatial_compression_ratio", "vae_temporal_compression_ratio")
    # The patch sizes are the defaults: the transformer config's patch_size and patch_size_t, which
    # the stock pipeline packs by.
    lss_schedule_arguments: ClassVar[tuple[str, ...]] = ("timesteps",)
    lss_exact_frames: ClassVar[bool] = True
    model_cpu_offload_seq = offload_sequence(LTXPipeline.model_cpu_offload_seq)
    _optional_components: ClassVar[list[str]] = [*LTXPipeline._optional_components, COMPONENT_NAME]

    __init__ = _ltx_init(LTXPipeline)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> Any:
        """The LSS ``from_pretrained``; a saved ``latent_upsampler/`` holding LTX's model loads
        as that model (cast like the other models)."""
        if COMPONENT_NAME not in kwargs and pretrained_model_name_or_path is not None:
            folder = saved_ltx_upsampler(pretrained_model_name_or_path, kwargs.get("subfolder"))
            if folder is not None:
                dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
                model = load_ltx_upsampler(folder)
                kwargs[COMPONENT_NAME] = model if dtype is None else model.to(dtype)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(
        self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any
    ) -> None:
        """The LSS ``save_pretrained``; LTX's model, a Diffusers model, is saved by the stock
        method as any other component (``latent_upsampler/`` with its own config)."""
        if isinstance(getattr(self, COMPONENT_NAME, None), LTXLatentUpsamplerModel):
            LTXPipeline.save_pretrained(self, save_directory, *args, **kwargs)
            return
        super().save_pretrained(save_directory, *args, **kwargs)

    def lss_default_size(self) -> tuple[int, int]:
        return 512, 704  # the stock __call__'s defaults

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        patch, patch_t = self.lss_patch_size, self.lss_temporal_patch_size
        return (batch, stage.num_tokens, self.lss_latent_channels * patch * patch * patch_t)

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        # As LTXPipeline.__call__ unpacks before decoding.
        return self._unpack_latents(
            latents,
            stage.size.latent_frames,
            stage.latent_height,
            stage.latent_width,
            self.lss_patch_size,
            self.lss_temporal_patch_size,
        )

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        return self._pack_latents(latents, self.lss_patch_size, self.lss_temporal_patch_size)

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        # As LTXPipeline.__call__: linear sigmas, mu from latent frames x height x width.
        tokens = size.latent_frames * size.latent_height * size.latent_width
        set_shifted_timesteps(scheduler, num_steps, linear_sigmas(num_steps), tokens)

    def lss_video_codec(self) -> VideoVaeCodec:
        return ltx_video_codec(self.vae)

    def _lss_scaler(self, scaling_mode: str) -> LatentScaler:
        upsampler = getattr(self, COMPONENT_NAME, None)
        if scaling_mode != "resnet" or not isinstance(upsampler, LTXLatentUpsamplerModel):
            return super()._lss_scaler(scaling_mode)
        check_ltx_upsampler(upsampler, self.lss_latent_channels)
        placement.check_upsampler_device(upsampler, torch.device(self._execution_device))
        return LTXUpsamplerScaler(upsampler, self.lss_video_codec())
