"""The family contract: everything an LSS pipeline supplies for its model family, in one place.

An LSS pipeline is ``class LSSXPipeline(LSSPipelineMixin, XPipeline)``. The mixin
(:mod:`lssgen_diffusers.mixin`) owns the shared machinery: checking a call, planning it, encoding
the prompt once, running the core's stage loop with one stock ``__call__`` per stage, callbacks,
interrupts, caches, saving and loading the ``latent_upsampler``. It reads a family only through
the public names of :class:`LSSFamily`; a family module sets the attributes and overrides the
methods where its stock pipeline differs from the defaults here, and nothing else. The
``__init__``, ``__call__`` (with the stock signature plus the LSS arguments),
``model_cpu_offload_seq`` and ``_optional_components`` are generated for every subclass.

What a family differs in:

- **Defaults**: :attr:`LSSFamily.lss_defaults` (the original's ``min_size``,
  ``shorten_intermediate_steps``, steps and guidance), :meth:`LSSFamily.lss_default_size` (the
  stock size when none is given), :attr:`LSSFamily.lss_denoiser_name`.
- **Latent geometry**: the *spatial view* ``(B, C, h, w)`` in which latents are scaled 2x (the
  space the upsampler is trained in: :attr:`LSSFamily.lss_latent_channels` channels) and the
  *packed view* the stock ``latents`` argument and ``output_type="latent"`` use
  (:meth:`LSSFamily.lss_packed_shape`), with :meth:`LSSFamily.lss_unpack` and
  :meth:`LSSFamily.lss_pack` between them; :attr:`LSSFamily.lss_patch_size` is the latent
  multiple of the denoiser, so stage sizes are multiples of ``vae_scale_factor * patch``;
  :meth:`LSSFamily.lss_pixel_codec` is the VAE round trip into that view (``scaling_mode=
  "pixel"``).
  Where the stock ``output_type="latent"`` result is in another view than the ``latents``
  argument (FLUX.2 [klein] returns the raw VAE latent), :meth:`LSSFamily.lss_output_shape` is its
  shape and :meth:`LSSFamily.lss_latents_from_output` turns it back into a ``latents`` argument.
- **Schedule arguments**: :meth:`LSSFamily.lss_set_timesteps` configures a scheduler copy for one
  stage as the stock ``__call__`` does (sigmas, timesteps, ``mu``, shift), so the plan's levels
  are the stock ones; :attr:`LSSFamily.lss_schedule_arguments` are the stock arguments that fix
  one schedule for the whole call (refused with several stages).
- **Prompt encoding once per call**: :meth:`LSSFamily.lss_encode_prompts` runs the stock encoder
  once and returns the stage arguments that replace the prompts;
  :attr:`LSSFamily.lss_per_image_arguments` are those of its outputs that need one row per image
  (embeddings and attention masks alike); :attr:`LSSFamily.lss_batched_embeds` are those that
  must have ``prompt_embeds``' batch size. Whether the call is guided is
  :meth:`LSSFamily.lss_classifier_free_guidance` (not every stock pipeline has a
  ``do_classifier_free_guidance`` property).
- **Final-stage-only arguments**: :attr:`LSSFamily.lss_final_stage_arguments` (cleared for the
  earlier stages, e.g. SDXL's ``denoising_end``); arguments restated per stage:
  :meth:`LSSFamily.lss_stage_arguments` (e.g. Lumina 2's ``cfg_trunc_ratio``, a fraction of the
  steps a stock call runs); stock arguments that no stage split can honour (FLUX.2's reference
  ``image``): :attr:`LSSFamily.lss_single_stage_arguments`, refused with several stages before
  any model runs.
- **Sizes**: :meth:`LSSFamily.lss_stock_size` (a size the stock pipeline rounds, as FLUX does)
  with its warning :meth:`LSSFamily.lss_warn_stock_size`; resolution binning
  (:attr:`LSSFamily.lss_resolution_binning`, :meth:`LSSFamily.lss_binned_size`): the plan's
  target is the bin the stock call would generate, the earlier stages run with binning off at
  their planned sizes, and the last stage gets the size the user asked for, so the stock code
  resizes the image back to it as it does in one stage.

- **Video**: :meth:`LSSFamily.lss_frames` (the frame axis every stage keeps; ``None`` for an
  image), :attr:`LSSFamily.lss_per_prompt_argument` (``num_videos_per_prompt``) and
  :attr:`LSSFamily.lss_vae_scale_factor` (spatial compression, where the stock pipeline names it
  otherwise). The video families share :class:`~lssgen_diffusers.video.LSSVideoPipelineMixin`,
  which reads both compressions from the stock attributes a family names
  (``lss_compression_attributes``) and adds the frame rule and the video VAE.

Helpers here serve the families: :func:`encode_from_call` (a stock ``encode_prompt`` called
with the call's own arguments), :func:`dynamic_mu` (the flow families' resolution shift) and
:func:`set_shifted_timesteps` (sigmas shifted by it, the stock schedule of several of them).

The family's registry line is in :mod:`lssgen_diffusers.registry`; CONTRIBUTING.md shows how to
add one, with the tests to copy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

import numpy as np
import torch
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps

from lssgen_core.frames import FrameAxis
from lssgen_core.plan import Stage, StagePlan
from lssgen_core.schedules import StageSize
from lssgen_diffusers.options import LSSDefaults
from lssgen_diffusers.vae import PixelCodec, VaeCodec

#: What the UNet and SD3-type families pass per image: the prompt and negative embeddings.
PROMPT_EMBEDS = ("prompt_embeds", "negative_prompt_embeds")
#: The pooled embeddings of the CLIP-conditioned families (FLUX, SD3, SDXL).
POOLED_EMBEDS = ("pooled_prompt_embeds", "negative_pooled_prompt_embeds")


class LSSFamily:
    """The public contract of a model family (see the module docstring); the defaults fit a
    stock pipeline with spatial latents, no packing, a scheduler set by ``num_inference_steps``
    alone and a ``do_classifier_free_guidance`` property or ``guidance_scale > 1``."""

    #: The original's LSS defaults for this family (``lssgen generate`` uses its steps/guidance).
    lss_defaults: ClassVar[LSSDefaults]
    #: Whether the stock ``prepare_latents`` casts given ``latents`` to the denoiser's dtype
    #: (else a call's ``latents`` must have it).
    lss_casts_latents: ClassVar[bool] = False
    #: Stock arguments that fix one schedule for the whole call (refused with several stages).
    lss_schedule_arguments: ClassVar[tuple[str, ...]] = ("sigmas",)
    #: Stock arguments that only make sense for the last stage (``None`` for the others).
    lss_final_stage_arguments: ClassVar[tuple[str, ...]] = ()
    #: Stock arguments refused with several stages (allowed with one), each with the reason the
    #: error gives: what no split into stages can honour.
    lss_single_stage_arguments: ClassVar[Mapping[str, str]] = {}
    #: The call arguments the one text encoding replaces (set to ``None`` for the stages).
    lss_prompt_arguments: ClassVar[tuple[str, ...]] = ("prompt", "negative_prompt")
    #: What the stock ``encode_prompt`` returns, in order, as the call arguments they are
    #: (``None`` for a result that is no call argument, e.g. text ids the stock call remakes).
    lss_encode_outputs: ClassVar[tuple[str | None, ...]] = PROMPT_EMBEDS
    #: The stock argument whose ``"scale"`` entry is the LoRA scale ``encode_prompt`` takes.
    lss_lora_argument: ClassVar[str] = "joint_attention_kwargs"
    #: Outputs of :meth:`lss_encode_prompts` given one row per image (repeated from one per
    #: prompt where they have fewer): embeddings and attention masks alike; ``None``: all of
    #: :attr:`lss_encode_outputs`.
    lss_per_image_arguments: ClassVar[tuple[str, ...] | None] = None
    #: The embeddings whose batch is the number of prompts when a call gives embeddings instead
    #: of a prompt (the stock call counts them there too; HiDream: ``pooled_prompt_embeds``).
    lss_batch_argument: ClassVar[str] = "prompt_embeds"
    #: Embeddings that must have ``prompt_embeds``' batch size (stock fails deep otherwise); the
    #: negative ones only count with classifier-free guidance.
    lss_batched_embeds: ClassVar[tuple[str, ...]] = ()
    #: The stock argument that turns resolution binning on (``None``: the family has none).
    lss_resolution_binning: ClassVar[str | None] = None
    #: The stock argument counting outputs per prompt (video pipelines: ``num_videos_per_prompt``).
    lss_per_prompt_argument: ClassVar[str] = "num_images_per_prompt"

    @property
    def _lss_pipe(self) -> Any:
        """This object as the stock pipeline it is mixed into (for its components)."""
        return cast(Any, self)

    # --- defaults ----------------------------------------------------------------------------

    @property
    def lss_denoiser_name(self) -> str:
        """The component that denoises: ``transformer`` (DiT families) or ``unet``."""
        return "transformer" if hasattr(self, "transformer") else "unet"

    @property
    def lss_denoiser(self) -> Any:
        return getattr(self, self.lss_denoiser_name)

    def lss_default_size(self) -> tuple[int, int]:
        """(height, width) the stock ``__call__`` uses when none is given: its
        ``default_sample_size`` (else the denoiser's ``sample_size``) latent pixels.

        Reads only stock attributes: ``lssgen generate --plain`` applies it to a stock pipeline.
        """
        pipe: Any = self
        size = getattr(pipe, "default_sample_size", None)
        if not size:
            denoiser = pipe.transformer if hasattr(pipe, "transformer") else pipe.unet
            size = denoiser.config.sample_size
        height, width = (size, size) if isinstance(size, int) else size
        return height * pipe.vae_scale_factor, width * pipe.vae_scale_factor

    # --- latent geometry ---------------------------------------------------------------------

    @property
    def lss_vae_scale_factor(self) -> int:
        """Pixels per latent pixel along height and width (video pipelines name it otherwise)."""
        return int(self._lss_pipe.vae_scale_factor)

    def lss_frames(self, call: Mapping[str, Any]) -> FrameAxis | None:
        """The frames of the call's video, kept in every stage (``None``: an image family)."""
        return None

    @property
    def lss_patch_size(self) -> int:
        """Latent multiple of the denoiser: the ``patch_size`` of its config (the transformers
        that patchify latents themselves: SD3, CogView4, PixArt-Sigma, SANA, HiDream), 1 where
        the config has none (UNets).

        A family whose pipeline packs latents itself sets it: the FLUX.1 layout's 2x2 packing is
        not in its transformer's config (``patch_size=1`` there); Wan's config holds a ``(t, h, w)``
        tuple. LTX-Video's pipeline packs by its transformer's ``patch_size``, this default.

        Reads only stock attributes: ``lssgen generate --plain`` applies it to a stock pipeline.
        """
        pipe: Any = self
        denoiser = pipe.transformer if hasattr(pipe, "transformer") else pipe.unet
        patch = denoiser.config.get("patch_size")
        return 1 if patch is None else int(patch)

    @property
    def lss_latent_channels(self) -> int:
        """Channels of the spatial view (the space latents are scaled in)."""
        return int(self.lss_denoiser.config.in_channels)

    def lss_packed_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        """Shape of the ``latents`` the stock ``__call__`` takes at ``stage``."""
        return (batch, self.lss_latent_channels, stage.latent_height, stage.latent_width)

    def lss_unpack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        """The stock ``output_type="latent"`` result of ``stage`` in the spatial view."""
        return latents

    def lss_output_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        """Shape of the stock ``output_type="latent"`` result at ``stage`` (by default the
        ``latents`` argument's, :meth:`lss_packed_shape`)."""
        return self.lss_packed_shape(batch, stage)

    def lss_latents_from_output(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        """A stock ``output_type="latent"`` result of ``stage`` as the ``latents`` argument that
        continues from it (an interrupted stage is decoded by a stock call given it); by default
        the result itself, as both are the packed view."""
        return latents

    def lss_pack(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Inverse of :meth:`lss_unpack`: what the stock ``latents`` argument takes."""
        return latents

    def lss_pixel_codec(self) -> PixelCodec:
        """The VAE round trip of ``scaling_mode="pixel"`` in the spatial view: ``encode`` images
        ``(B, 3, H, W)`` in [-1, 1] to latents as the denoiser sees them, ``decode`` back. The
        default is the VAE's own normalisation (:class:`~lssgen_diffusers.vae.VaeCodec`); a
        family whose VAE is no ``(B, C, h, w)`` image VAE (Qwen-Image's, 5-D) returns its own."""
        return VaeCodec.from_vae(self._lss_pipe.vae)

    # --- sizes -------------------------------------------------------------------------------

    def lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the stock ``__call__`` generates when asked for ``height`` x ``width``
        (binning aside: :meth:`lss_binned_size`)."""
        return height, width

    def lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        """Give the stock warning for a size :meth:`lss_stock_size` changes (the stages, called
        at the changed size, no longer give it)."""

    def lss_binned_size(self, height: int, width: int) -> tuple[int, int]:
        """The bin the stock call generates for ``height`` x ``width`` with binning on."""
        raise NotImplementedError(f"{type(self).__name__} has no resolution binning")

    # --- schedule ----------------------------------------------------------------------------

    def lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        """Configure ``scheduler`` as the stock ``__call__`` does for a stage of ``size``."""
        set_stock_timesteps(scheduler, num_steps)

    def lss_stage_arguments(
        self, call: Mapping[str, Any], plan: StagePlan, stage: Stage
    ) -> dict[str, Any]:
        """Stock arguments ``stage``'s call gets in place of the call's own: for an argument
        whose meaning depends on the steps one stock call runs (a guidance cutoff given as a
        fraction of them), its value for this stage. None by default."""
        return {}

    # --- prompts and guidance ----------------------------------------------------------------

    def lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        """Run the stock ``encode_prompt`` once; the stage arguments that replace the prompts.

        By default ``encode_prompt`` gets the call's arguments of its parameters' names (see
        :func:`encode_from_call`) with the device, the guidance decision and the LoRA scale, and
        its results become :attr:`lss_encode_outputs`; :attr:`lss_prompt_arguments` are cleared.
        """
        pipe = self._lss_pipe
        values = encode_from_call(
            pipe.encode_prompt,
            call,
            do_classifier_free_guidance=self.lss_classifier_free_guidance(call),
            device=pipe._execution_device,
            lora_scale=lora_scale(call, self.lss_lora_argument),
        )
        if len(values) != len(self.lss_encode_outputs):
            raise RuntimeError(
                f"{type(pipe).__name__}.encode_prompt returned {len(values)} values, but the "
                f"family expects {self.lss_encode_outputs}"
            )
        encoded = {n: v for n, v in zip(self.lss_encode_outputs, values) if n is not None}
        return {**dict.fromkeys(self.lss_prompt_arguments), **encoded}

    @property
    def lss_repeated_arguments(self) -> tuple[str, ...]:
        """The encoding's outputs that get one row per image (:attr:`lss_per_image_arguments`)."""
        names = self.lss_per_image_arguments
        if names is None:
            return tuple(name for name in self.lss_encode_outputs if name is not None)
        return names

    def lss_classifier_free_guidance(self, call: Mapping[str, Any]) -> bool:
        """Whether the stock ``__call__`` runs classifier-free guidance for this call: its
        ``do_classifier_free_guidance`` property where it has one, else ``guidance_scale > 1``."""
        scale = call["guidance_scale"]
        if isinstance(
            inspect.getattr_static(type(self), "do_classifier_free_guidance", None), property
        ):
            self._lss_pipe._guidance_scale = scale  # what the stock property reads
            return bool(self._lss_pipe.do_classifier_free_guidance)
        return bool(scale > 1)


def binned_by_sample_size(
    pipe: Any, bins: Mapping[int, Any], height: int, width: int
) -> tuple[int, int]:
    """The bin of a PixArt-style stock call (PixArt-Sigma, SANA): the aspect-ratio table that the
    transformer's ``sample_size`` picks, then the nearest ratio in it."""
    table = bins.get(pipe.transformer.config.sample_size)
    if table is None:
        return height, width  # the stock call refuses it ("Invalid sample size")
    return pipe.image_processor.classify_height_width_bin(height, width, ratios=table)


def linear_sigmas(num_steps: int) -> np.ndarray:
    """The flow pipelines' stock sigmas before the shift: ``num_steps`` levels evenly from 1 down
    to ``1 / num_steps`` (FLUX.1, FLUX.2, Qwen-Image, Krea 2, Lumina 2 and LTX pass these)."""
    return np.linspace(1.0, 1 / num_steps, num_steps)


def set_stock_timesteps(scheduler: Any, num_steps: int, **kwargs: Any) -> None:
    """FLUX's ``retrieve_timesteps`` (copied unchanged into most pipeline modules; CogView4's
    differs) on the CPU: ``timesteps=`` / ``sigmas=`` replace the step count, as in a stock call."""
    retrieve_timesteps(scheduler, num_steps, "cpu", **kwargs)


def set_shifted_timesteps(
    scheduler: Any, num_steps: int, sigmas: Any, num_tokens: int, max_shift: float = 1.15
) -> None:
    """A flow pipeline's stock schedule: ``sigmas`` shifted by the :func:`dynamic_mu` of
    ``num_tokens`` (the sequence length the stock call counts; Lumina 2 counts channels), as
    LTX-Video, Lumina 2 and Z-Image set it (all fall back to ``max_shift=1.15``)."""
    mu = dynamic_mu(scheduler.config, num_tokens, max_shift=max_shift)
    set_stock_timesteps(scheduler, num_steps, sigmas=sigmas, mu=mu)


def encode_from_call(
    encode: Callable[..., Any],
    call: Mapping[str, Any],
    renamed: Mapping[str, str] | None = None,
    **fixed: Any,
) -> Any:
    """``encode(...)`` (a stock ``encode_prompt``) with each of its parameters taken from the call
    argument of the same name, or of the name ``renamed`` maps it to (``{"prompt":
    "negative_prompt"}`` encodes the negative prompt), and ``fixed`` values (``device``,
    ``lora_scale`` ...) for the parameters it has."""
    names = renamed or {}
    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(encode).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if name in fixed:
            kwargs[name] = fixed[name]
        elif names.get(name, name) in call:
            kwargs[name] = call[names.get(name, name)]
    return encode(**kwargs)


def lora_scale(call: Mapping[str, Any], argument: str = "joint_attention_kwargs") -> Any:
    """The LoRA scale the stock ``__call__`` reads from its attention kwargs."""
    return (call.get(argument) or {}).get("scale")


def dynamic_mu(
    config: Mapping[str, Any], num_tokens: int, max_shift: float, max_seq_len: int = 4096
) -> float:
    """FLUX's resolution shift ``mu`` (the stock ``calculate_shift``, which the flow pipelines
    share): linear in the token count between the scheduler config's ``base_image_seq_len`` /
    ``base_shift`` and ``max_image_seq_len`` / ``max_shift``; the defaults for a config without
    them differ per pipeline (``max_shift`` 1.15 or 1.16, ``max_image_seq_len`` 4096, or 6400 for
    Krea 2)."""
    return float(
        calculate_shift(
            num_tokens,
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", max_seq_len),
            config.get("base_shift", 0.5),
            config.get("max_shift", max_shift),
        )
    )
