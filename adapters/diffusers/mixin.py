"""The LSS stage loop, once for every pipeline: plan, encode the prompt once, run each stage.

Each stage is one call of the stock pipeline's own ``__call__`` at the stage's size and step count,
so every stock argument keeps its meaning. Between stages the finished latent is brought to
spatial form, scaled 2x (``lssgen_core`` scalers), re-noised to the next stage's entry level with
the core parameterisation and handed over as ``latents``; the stock loop enters its schedule
part-way through a :class:`~lssgen_diffusers.scheduler_view.SchedulerView`. Per-model subclasses
supply only what differs: packing, how the stock ``__call__`` sets its timesteps, how it encodes
prompts, and their defaults.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch

from lssgen_core.noise import randn
from lssgen_core.parameterization import Parameterization
from lssgen_core.plan import (
    Stage,
    StagePlan,
    count_extra_stages,
    plan_stages,
    resolve_stage_count,
    warn_plan_notes,
)
from lssgen_core.sampling import enter_stage
from lssgen_core.schedules import StageSize
from lssgen_core.upsample import LatentScaler, make_latent_scaler
from lssgen_diffusers import call_checks, placement
from lssgen_diffusers.auto_entry import resolve_start_sigma
from lssgen_diffusers.cache_hooks import check_cache_across_stages
from lssgen_diffusers.call_args import bind_call
from lssgen_diffusers.component import (
    COMPONENT_NAME,
    load_saved_upsampler,
    lss_init,
    save_upsampler,
)
from lssgen_diffusers.held_state import HeldAcrossStages
from lssgen_diffusers.options import LSSDefaults, LSSOptions, resolve_options
from lssgen_diffusers.progress import StageProgress
from lssgen_diffusers.scheduler_levels import (
    check_supported,
    parameterization_of,
    scheduler_levels,
)
from lssgen_diffusers.scheduler_view import entered_scheduler
from lssgen_diffusers.signature import lss_call
from lssgen_diffusers.vae import VaeCodec

# Relative tolerance between the levels planned on a scheduler copy and those the stock __call__
# produced (both float32 computations of the same formula).
_SCHEDULE_TOLERANCE = 1e-5

LSS_ARGUMENTS_DOC = """
    LSS arguments (keyword only, on top of every argument of the stock ``__call__``; ``None``
    means this pipeline's default):

    - ``start_sigma`` (float in (0, 1], default 0.75): flow noise level at which each later stage
      re-enters its schedule; 1 disables LSS (one stage, identical to the stock pipeline).
      ``"auto"``: the lowest level whose noise covers the scaler's measured error, from the
      calibration in the ``latent_upsampler``'s config.json (refused without one).
    - ``min_size`` (alias ``min_resolution``; int): size of the first, smallest stage; stages
      double up to the target. ``min_size >= min(height, width)`` gives one stage.
    - ``shorten_intermediate_steps`` (bool): smaller stages run proportionally fewer steps
      (N / log2(area ratio)).
    - ``scaling_mode``: ``"resnet"`` (default, the pipeline's ``latent_upsampler``),
      ``"latent"`` (bicubic interpolation of the latent), ``"pixel"`` (VAE decode, bicubic
      resize, VAE encode), or ``"bicubic"`` / ``"bilinear"`` / ``"nearest"`` latent interpolation.
    - ``entry_rule``: ``"sigma"`` (default: enter where the noise level matches ``start_sigma``
      by signal-to-noise ratio) or ``"strength"`` (the original's img2img rule for SD / SDXL).
    - ``stage_steps`` (tuple of ints, smallest stage first; default None: the paper's rules):
      the denoising steps each stage runs; its length is the number of stages (``min_size``, if
      given, must plan as many). A later stage enters the longest schedule whose entry still
      leaves that many steps at or above its entry level. With one entry it must equal
      ``num_inference_steps`` (one stage is the stock pipeline).
    - ``stage_entries`` (tuple, one per later stage, of floats in (0, 1) or None for
      ``start_sigma``): each later stage's entry level, read as ``start_sigma`` is.
    - ``final_steps`` (int): the steps the full-size stage runs; the smaller stages follow the
      paper's rules. ``final_steps <= 2 * num_inference_steps // 3`` never costs more than plain.

    The plan of the last call is ``pipe.lss_plan`` (``print(pipe.lss_plan.describe())``);
    ``pipe.lss_plan_for(height=..., width=..., ...)`` plans without generating. With several
    stages, ``latents`` is the first (smallest) stage's starting noise, ``callback_on_step_end``
    runs once per denoising step of every stage (its step index restarts at 0 in each stage;
    ``pipe.lss_stage`` is the running stage), and ``sigmas`` / ``timesteps`` cannot be given.

    Stages a pure-noise entry would throw away (one-step schedules) are dropped, and plans that
    cost at least plain generation or have many stages say so: an ``LSSPlanWarning`` once per
    call. A latent holding NaN or inf at a stage hand-over or before decoding raises
    ``NonFiniteLatentError`` naming the stage, instead of returning a black image.
    A ``min_size`` equal to the pipeline's default acts as the default.

    Stock contracts with several stages: a callback setting ``pipe._interrupt = True`` stops the
    whole call, which returns the running stage's latent decoded as asked (``output_type``,
    ``return_dict``) at that stage's size; a callback's change of ``pipe._guidance_scale``
    (Diffusers' CFG-cutoff callbacks) holds for the rest of the call, later stages included;
    ``pipe.num_timesteps`` is the running stage's step count during a stage (as its step index)
    and the call's total afterwards (per stage: ``pipe.lss_plan.stages``); caches enabled with
    ``enable_cache`` restart at every stage, and the two that cannot (MagCache, FasterCache
    skipping at a stage's entry) are refused before any work; FLUX sizes are rounded down to a
    multiple of 16 with the stock warning before planning.
"""


@attrs.frozen
class _Request:
    """One call's resolved LSS options and bound stock arguments."""

    options: LSSOptions
    call: Mapping[str, Any]
    height: int
    width: int
    min_size: int | None  # None: the explicit stage count sets it
    start_sigma_note: str | None = None  # how start_sigma="auto" was resolved

    @property
    def single_stage(self) -> bool:
        options = self.options
        if options.is_explicit or self.min_size is None:
            # Refuses contradictory explicit arguments, before any model runs.
            _, extra = resolve_stage_count(
                self.height,
                self.width,
                num_steps=self.call["num_inference_steps"],
                min_size=self.min_size,
                start_sigma=options.start_sigma,
                shorten_steps=options.shorten_steps,
                stage_steps=options.stage_steps,
                stage_entries=options.stage_entries,
                final_steps=options.final_steps,
            )
            return extra == 0
        assert self.min_size is not None
        return (
            count_extra_stages(self.height, self.width, self.min_size, self.options.start_sigma)
            == 0
        )


@attrs.define
class _Run:
    """State of one multi-stage call, read by the overridden pipeline hooks."""

    plan: StagePlan
    bar: Any
    stage: Stage | None = None
    final: bool = False
    interrupted: bool = False
    # Loop lengths the stock __call__ reported per stage (its num_timesteps).
    stage_timesteps: list[int] = attrs.field(factory=list)
    # Set before each later stock call: its first `_guidance_scale = ...` is a reset to ignore.
    pending_reset: bool = False

    def ignores_stock_reset(self) -> bool:
        """True once per later stock call, for its own reset (see ``held_state``)."""
        pending, self.pending_reset = self.pending_reset, False
        return pending


def _repeat_to(tensor: Any, total: int, argument: str) -> Any:
    """Embeddings for ``total`` images from one per prompt (repeated as the stock encoders do)."""
    if not isinstance(tensor, torch.Tensor) or tensor.shape[0] == total:
        return tensor
    if total % tensor.shape[0]:
        raise ValueError(
            f"{argument} has batch size {tensor.shape[0]}, which does not divide the "
            f"{total} images requested"
        )
    return tensor.repeat_interleave(total // tensor.shape[0], dim=0)


def _images(result: Any) -> Any:
    """The images (or latents) of a stock ``__call__`` result, with or without ``return_dict``."""
    return result[0] if isinstance(result, tuple) else result.images


class LSSPipelineMixin:
    """Adds latent space scaling to a stock Diffusers text-to-image pipeline (put it first)."""

    lss_defaults: ClassVar[LSSDefaults]
    # Latent multiple of the denoiser: 2 for FLUX packing and SD3 / CogView4 patches, 1 for UNets.
    lss_patch_size: int = 1
    # Stock arguments that fix one schedule for the whole call (rejected with several stages).
    lss_schedule_arguments: ClassVar[tuple[str, ...]] = ("sigmas",)
    # Stock arguments that only make sense for the last stage (cleared for the others).
    lss_final_stage_arguments: ClassVar[tuple[str, ...]] = ()
    # Whether the stock prepare_latents casts given latents to the denoiser's dtype.
    lss_casts_latents: ClassVar[bool] = False
    # Embeddings that must have prompt_embeds' batch size (the stock call fails deep otherwise);
    # the negative ones only count with classifier-free guidance.
    lss_batched_embeds: ClassVar[tuple[str, ...]] = ()

    lss_plan: StagePlan | None = None
    _lss_run: _Run | None = None
    # Guidance a callback changes holds for the rest of the call, over every stage.
    _guidance_scale = HeldAcrossStages()

    # --- what each model supplies -------------------------------------------------------------

    @property
    def _lss_denoiser_name(self) -> str:
        """The component that denoises: ``transformer`` (DiT families) or ``unet``."""
        return "transformer" if hasattr(self, "transformer") else "unet"

    def _lss_default_size(self) -> tuple[int, int]:
        """(height, width) the stock ``__call__`` uses when none is given."""
        raise NotImplementedError

    @property
    def _lss_latent_channels(self) -> int:
        """Channels of the spatial (unpacked) latent the denoiser works on."""
        raise NotImplementedError

    def _lss_set_timesteps(
        self, scheduler: Any, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> None:
        """Configure ``scheduler`` as the stock ``__call__`` does for a stage of ``size``."""
        raise NotImplementedError

    def _lss_encode_prompts(self, call: Mapping[str, Any]) -> dict[str, Any]:
        """Run the stock ``encode_prompt`` once; the stage arguments that replace the prompts."""
        raise NotImplementedError

    def _lss_stock_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the stock ``__call__`` generates when asked for ``height`` x ``width``."""
        return height, width

    def _lss_warn_stock_size(self, call: Mapping[str, Any], height: int, width: int) -> None:
        """Give the stock warning for a size :meth:`_lss_stock_size` changes (the stages, called
        at the changed size, no longer give it)."""

    def _lss_latent_shape(self, batch: int, stage: Stage) -> tuple[int, ...]:
        """Shape of the ``latents`` the stock ``__call__`` takes at ``stage``."""
        return (batch, self._lss_latent_channels, stage.latent_height, stage.latent_width)

    def _lss_to_spatial(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        """The stock ``output_type="latent"`` result of ``stage`` as (B, C, h, w)."""
        return latents

    def _lss_from_spatial(self, latents: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Inverse of :meth:`_lss_to_spatial`: what the stock ``latents`` argument takes."""
        return latents

    # --- the component -----------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if issubclass(cls.__bases__[-1], LSSPipelineMixin):
            return  # a subclass of an LSS pipeline inherits its __init__ and __call__
        stock = next(base for base in cls.__mro__ if not issubclass(base, LSSPipelineMixin))
        if "__call__" not in cls.__dict__:
            cls.__call__ = lss_call(  # type: ignore[method-assign]
                stock, LSSPipelineMixin.__call__, cls.lss_defaults, LSS_ARGUMENTS_DOC
            )
        if "__init__" not in cls.__dict__:
            cls.__init__ = lss_init(stock)  # type: ignore[misc]

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any
    ) -> Any:
        """The stock ``from_pretrained``; also loads a saved ``latent_upsampler/`` subfolder.

        ``latent_upsampler=`` (a ``LatentUpsampler``) takes precedence over the subfolder. The
        subfolder is cast like the other models: ``dtype`` (or the deprecated ``torch_dtype``).
        """
        if COMPONENT_NAME not in kwargs and pretrained_model_name_or_path is not None:
            dtype = kwargs.get("dtype")
            saved = load_saved_upsampler(
                pretrained_model_name_or_path,
                subfolder=kwargs.get("subfolder"),
                torch_dtype=kwargs.get("torch_dtype") if dtype is None else dtype,
                variant=kwargs.get("variant"),
            )
            if saved is not None:
                kwargs[COMPONENT_NAME] = saved
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)  # type: ignore[misc]

    def save_pretrained(
        self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any
    ) -> None:
        """The stock ``save_pretrained`` plus the upsampler in ``latent_upsampler/``."""
        # Written first so that push_to_hub (done inside the stock method) uploads it too.
        stock_save = super().save_pretrained  # type: ignore[misc]
        variant = bind_call(stock_save, (save_directory, *args), kwargs).get("variant")
        save_upsampler(getattr(self, COMPONENT_NAME, None), save_directory, variant)
        config = self.config  # type: ignore[attr-defined]
        entry = config.get(COMPONENT_NAME, (None, None))
        # The stock method would warn that it cannot save the component and record it as absent
        # in the pipeline's own config; record it as absent only in the written model_index.json.
        self.register_to_config(**{COMPONENT_NAME: (None, None)})  # type: ignore[attr-defined]
        try:
            super().save_pretrained(save_directory, *args, **kwargs)  # type: ignore[misc]
        finally:
            self.register_to_config(**{COMPONENT_NAME: entry})  # type: ignore[attr-defined]

    # --- pipeline hooks the stock __call__ uses -------------------------------------------------

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any:
        run = self._lss_run
        if run is None or iterable is not None:
            return super().progress_bar(iterable=iterable, total=total)  # type: ignore[misc]
        return StageProgress(run.bar)

    def maybe_free_model_hooks(self) -> None:
        run = self._lss_run
        if run is None or run.final:
            super().maybe_free_model_hooks()  # type: ignore[misc]
            return
        # Between stages: stateful caches must go (the next stage has another token count), but
        # offloading every model only to load the denoiser straight back would waste transfers.
        for component in self.components.values():  # type: ignore[attr-defined]
            if hasattr(component, "_reset_stateful_cache"):
                component._reset_stateful_cache()

    @property
    def interrupt(self) -> bool:
        # Each stock call resets `_interrupt`; an interrupt in one stage must stop the later ones.
        run = self._lss_run
        return bool(getattr(self, "_interrupt", False)) or (run is not None and run.interrupted)

    @property
    def device(self) -> torch.device:
        """The stock ``device``, leaving out the latent upsampler (it sorts first by name, so the
        stock property would report the upsampler's device for the whole pipeline)."""
        with placement.upsampler_hidden(self):
            return super().device  # type: ignore[misc,no-any-return]

    @property
    def dtype(self) -> torch.dtype:
        """The stock ``dtype``, leaving out the latent upsampler (as :attr:`device`)."""
        with placement.upsampler_hidden(self):
            return super().dtype  # type: ignore[misc,no-any-return]

    @property
    def lss_stage(self) -> Stage | None:
        """The stage running now (for callbacks: their step index restarts in every stage)."""
        run = self._lss_run
        return None if run is None else run.stage

    # --- the call ------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        *args: Any,
        start_sigma: float | str | None = None,
        min_size: int | None = None,
        min_resolution: int | None = None,
        shorten_intermediate_steps: bool | None = None,
        scaling_mode: str | None = None,
        entry_rule: str | None = None,
        stage_steps: tuple[int, ...] | None = None,
        stage_entries: tuple[float | None, ...] | None = None,
        final_steps: int | None = None,
        **kwargs: Any,
    ) -> Any:
        self.lss_plan = None
        request = self._lss_request(
            args,
            kwargs,
            start_sigma=start_sigma,
            min_size=min_size,
            min_resolution=min_resolution,
            shorten_intermediate_steps=shorten_intermediate_steps,
            scaling_mode=scaling_mode,
            entry_rule=entry_rule,
            stage_steps=stage_steps,
            stage_entries=stage_entries,
            final_steps=final_steps,
        )
        call = request.call
        if request.single_stage:
            self.lss_plan = self._lss_single_stage_plan(request)
            return self._lss_stock_call(args, kwargs, request)

        # Everything that can be wrong is checked before the first model runs.
        call_checks.run_stock_check_inputs(self, call, request.height, request.width)
        total = self._lss_prompt_batch(call) * (call["num_images_per_prompt"] or 1)
        self._lss_check_arguments(call, total)
        scaler = self._lss_scaler(request.options.scaling_mode)
        plan = self._lss_plan_stock_size(request)
        self.lss_plan = plan
        # The caller: above torch.no_grad's wrapper and the generated signature (signature.py).
        warn_plan_notes(plan, stacklevel=4)
        latents = call.get("latents")
        expected = self._lss_latent_shape(total, plan.stages[0])
        if latents is not None and tuple(latents.shape) != expected:
            raise ValueError(
                f"latents has shape {tuple(latents.shape)}; with several stages it is the first "
                f"stage's starting noise ({plan.stages[0].width}x{plan.stages[0].height} px) "
                f"and must have shape {expected}"
            )
        if plan.is_single_stage:  # smaller stages dropped (a pure-noise entry; warned above)
            return self._lss_stock_call(args, kwargs, request)
        check_cache_across_stages(
            getattr(self, self._lss_denoiser_name),
            plan,
            lambda stage: self._lss_configured_scheduler(stage.num_steps, stage.size, call),
        )

        call = self._lss_prepared_prompts(call, total)
        return self._lss_generate(plan, call, scaler)

    __call__.__doc__ = (
        "Generate with latent space scaling; see the stock ``__call__`` for its arguments.\n"
        + LSS_ARGUMENTS_DOC
    )

    def lss_plan_for(
        self,
        *,
        start_sigma: float | str | None = None,
        min_size: int | None = None,
        min_resolution: int | None = None,
        shorten_intermediate_steps: bool | None = None,
        scaling_mode: str | None = None,
        entry_rule: str | None = None,
        stage_steps: tuple[int, ...] | None = None,
        stage_entries: tuple[float | None, ...] | None = None,
        final_steps: int | None = None,
        **kwargs: Any,
    ) -> StagePlan:
        """The plan a call with these arguments would run, without running anything.

        Takes a call's own arguments: ``kwargs`` are stock ``__call__`` arguments (``height``,
        ``width``, ``num_inference_steps``, ``mu`` ...; unset ones take the stock defaults), and
        ``scaling_mode`` is checked but does not change the plan.
        """
        request = self._lss_request(
            (),
            kwargs,
            start_sigma=start_sigma,
            min_size=min_size,
            min_resolution=min_resolution,
            shorten_intermediate_steps=shorten_intermediate_steps,
            scaling_mode=scaling_mode,
            entry_rule=entry_rule,
            stage_steps=stage_steps,
            stage_entries=stage_entries,
            final_steps=final_steps,
        )
        return self._lss_plan(request, check=not request.single_stage)

    # --- checks and planning -------------------------------------------------------------------

    def _lss_request(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], **lss_arguments: Any
    ) -> _Request:
        # "auto" becomes the level the scaler's calibration gives (auto_entry.py), or an error.
        start = resolve_start_sigma(
            self, lss_arguments["start_sigma"], lss_arguments["scaling_mode"]
        )
        options = resolve_options(
            self.lss_defaults, **{**lss_arguments, "start_sigma": start.start_sigma}
        )
        call = bind_call(super().__call__, args, kwargs)  # type: ignore[misc]
        # Checked as the caller asked, before the stock rounding (FLUX: 8 px would round to 0).
        self._lss_check_call(call, *self._lss_requested_size(call))
        height, width = self._lss_target_size(call)
        return _Request(
            options, call, height, width, options.min_size_for(height, width), start.note
        )

    def _lss_check_call(self, call: Mapping[str, Any], height: int, width: int) -> None:
        """Stock arguments the stock call would fail on deep inside, or silently misread; the
        same for one stage and several (:mod:`lssgen_diffusers.call_checks`)."""
        smallest = self.vae_scale_factor * self.lss_patch_size  # type: ignore[attr-defined]
        call_checks.check_size(height, "height", smallest)
        call_checks.check_size(width, "width", smallest)
        if all(call.get(name) is None for name in call_checks.SCHEDULE_ARGUMENTS):
            call_checks.check_count(call.get("num_inference_steps"), "num_inference_steps")
        call_checks.check_count(call.get("num_images_per_prompt"), "num_images_per_prompt")
        for name in call_checks.GUIDANCE_ARGUMENTS:
            if name in call:
                call_checks.check_finite_real(call[name], name)
        call_checks.check_prompt(call.get("prompt"))
        call_checks.check_generator(call.get("generator"))
        denoiser = self._lss_denoiser_name
        call_checks.check_latents(
            call.get("latents"),
            dtype=None if self.lss_casts_latents else getattr(self, denoiser).dtype,
            denoiser=denoiser,
        )
        if self.lss_batched_embeds:
            guided = self._lss_do_classifier_free_guidance(call["guidance_scale"])
            names = [n for n in self.lss_batched_embeds if guided or not n.startswith("negative")]
            call_checks.check_embeds_batch(call, tuple(names))

    def _lss_stock_call(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], request: _Request
    ) -> Any:
        """One stage: the stock call as it is, with its final latent checked before decoding."""
        what = call_checks.stage_produced(0, request.width, request.height)
        with call_checks.checked_decode(self.vae, what):  # type: ignore[attr-defined]
            result = super().__call__(*args, **kwargs)  # type: ignore[misc]
        if request.call.get("output_type") == "latent":
            call_checks.check_finite_latent(_images(result), what)
        return result

    def _lss_requested_size(self, call: Mapping[str, Any]) -> tuple[int, int]:
        default_height, default_width = self._lss_default_size()
        return call.get("height") or default_height, call.get("width") or default_width

    def _lss_target_size(self, call: Mapping[str, Any]) -> tuple[int, int]:
        return self._lss_stock_size(*self._lss_requested_size(call))

    def _lss_plan_stock_size(self, request: _Request) -> StagePlan:
        """The checked plan for the size the stock call would make (FLUX rounds down, with a
        warning, given here); a rounded size no plan takes is refused, saying so."""
        requested = dict(zip(("height", "width"), self._lss_requested_size(request.call)))
        rounded = {"height": request.height, "width": request.width}
        changed = {name: value for name, value in requested.items() if value != rounded[name]}
        if not changed:
            return self._lss_plan(request, check=True)
        self._lss_warn_stock_size(request.call, requested["height"], requested["width"])
        try:
            return self._lss_plan(request, check=True)
        except ValueError as exc:
            note = " and ".join(f"{n}={v} rounds down to {rounded[n]}" for n, v in changed.items())
            raise ValueError(
                f"{note}, as the stock pipeline rounds it, and that size does not split into "
                f"these stages: {exc}"
            ) from exc

    def _lss_prompt_batch(self, call: Mapping[str, Any]) -> int:
        prompt = call.get("prompt")
        if isinstance(prompt, str):
            return 1
        if isinstance(prompt, list):
            return len(prompt)
        embeds = call.get("prompt_embeds")
        if embeds is None:
            raise ValueError("pass prompt or prompt_embeds")
        return int(embeds.shape[0])

    def _lss_check_arguments(self, call: Mapping[str, Any], total: int) -> None:
        for argument in self.lss_schedule_arguments:
            if call.get(argument) is not None:
                raise ValueError(
                    f"{argument} fixes one schedule for the whole call, but LSS builds a schedule "
                    f"for every stage size; leave {argument} unset, or use one stage "
                    "(start_sigma=1)"
                )
        generator = call.get("generator")
        if isinstance(generator, list) and len(generator) != total:
            raise ValueError(
                f"generator is a list of {len(generator)} generators but {total} images are "
                "requested (batch size x num_images_per_prompt); pass one generator per image"
            )

    def _lss_scaler(self, scaling_mode: str) -> LatentScaler:
        upsampler = getattr(self, COMPONENT_NAME, None)
        vae = self.vae  # type: ignore[attr-defined]
        if scaling_mode == "resnet":
            if upsampler is None:
                raise ValueError(
                    "scaling_mode='resnet' (the default) uses the pipeline's latent_upsampler, "
                    "which is None; pass latent_upsampler=LatentUpsampler.from_pretrained(folder) "
                    "to from_pretrained or the constructor, or choose scaling_mode='latent' or "
                    "'pixel'"
                )
            upsampler.check_latent_channels(vae.config.latent_channels)
            runs_on = torch.device(self._execution_device)  # type: ignore[attr-defined]
            placement.check_upsampler_device(upsampler, runs_on)
        if scaling_mode == "pixel":
            codec = VaeCodec.from_vae(vae)
            return make_latent_scaler("pixel", decode=codec.decode, encode=codec.encode)
        return make_latent_scaler(scaling_mode, upsampler=upsampler)

    def _lss_configured_scheduler(
        self, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> Any:
        scheduler = copy.deepcopy(self.scheduler)  # type: ignore[attr-defined]
        self._lss_set_timesteps(scheduler, num_steps, size, call)
        return scheduler

    def _lss_plan(self, request: _Request, *, check: bool) -> StagePlan:
        height, width, options, call = request.height, request.width, request.options, request.call
        num_steps = call["num_inference_steps"]
        vae_scale = self.vae_scale_factor  # type: ignore[attr-defined]
        latent_height, latent_width = height // vae_scale, width // vae_scale
        patch = self.lss_patch_size
        target = StageSize(
            height,
            width,
            latent_height,
            latent_width,
            (latent_height // patch) * (latent_width // patch),
        )
        probe = self._lss_configured_scheduler(num_steps, target, call)
        if check:
            check_supported(probe)
        parameterization = parameterization_of(probe)

        def schedule(steps: int, size: StageSize) -> list[float]:
            configured = self._lss_configured_scheduler(steps, size, call)
            return scheduler_levels(configured, parameterization)

        plan = plan_stages(
            height,
            width,
            num_steps=num_steps,
            min_size=request.min_size,
            start_sigma=options.start_sigma,
            shorten_steps=options.shorten_steps,
            vae_scale_factor=vae_scale,
            patch_size=patch,
            schedule=schedule,
            parameterization=parameterization,
            entry_rule=options.entry_rule,
            stage_steps=options.stage_steps,
            stage_entries=options.stage_entries,
            final_steps=options.final_steps,
        )
        return attrs.evolve(plan, start_sigma_note=request.start_sigma_note)

    def _lss_single_stage_plan(self, request: _Request) -> StagePlan | None:
        """The one-stage plan for ``lss_plan``; None where the stock call goes beyond the planner
        (custom sigmas / timesteps, sizes the stock pipeline rounds itself)."""
        if any(request.call.get(a) is not None for a in self.lss_schedule_arguments):
            return None
        try:
            return self._lss_plan(request, check=False)
        except Exception:  # informational only: never let it break a stock call
            return None

    def _lss_prepared_prompts(self, call: Mapping[str, Any], total: int) -> dict[str, Any]:
        """The call with prompts replaced by embeddings for all ``total`` images.

        Text encoders are the most expensive models to run (and often offloaded), so they run once;
        the stages get the embeddings with ``num_images_per_prompt=1``, which the stock encoders
        leave as they are.
        """
        updates = self._lss_encode_prompts(call)
        for name, value in updates.items():
            if name.endswith("embeds"):
                updates[name] = _repeat_to(value, total, name)
        return {**call, **updates, "num_images_per_prompt": 1}

    def _lss_do_classifier_free_guidance(self, guidance_scale: float) -> bool:
        """The stock ``do_classifier_free_guidance`` for this scale (before the stock call)."""
        self._guidance_scale = guidance_scale
        return bool(self.do_classifier_free_guidance)  # type: ignore[attr-defined]

    # --- running the stages --------------------------------------------------------------------

    def _lss_generate(self, plan: StagePlan, call: Mapping[str, Any], scaler: LatentScaler) -> Any:
        latents = call.get("latents")
        result: Any = None
        bar = super().progress_bar(total=plan.num_denoising_steps)  # type: ignore[misc]
        with bar:
            run = _Run(plan, bar)
            self._lss_run = run
            try:
                for stage in plan.stages:
                    if stage.index > 0:
                        latents = self._lss_enter(latents, plan, stage, scaler, call["generator"])
                        call_checks.check_finite_latent(
                            latents,
                            call_checks.stage_entry(stage.index, stage.width, stage.height),
                            call_checks.UPSAMPLER_HINT,
                        )
                    run.stage = stage
                    run.final = stage is plan.target
                    produced = call_checks.stage_produced(stage.index, stage.width, stage.height)
                    vae = self.vae  # type: ignore[attr-defined]
                    with call_checks.checked_decode(vae, produced):
                        result = self._lss_run_stage(plan, stage, latents, call)
                    run.stage_timesteps.append(self._num_timesteps)  # type: ignore[attr-defined]
                    run.interrupted = run.interrupted or bool(getattr(self, "_interrupt", False))
                    if run.interrupted and not run.final:
                        # As stock: stop and return the current latent, decoded as asked.
                        run.final = True
                        with call_checks.checked_decode(vae, produced):
                            result = self._lss_run_stage(plan, stage, result[0], call, decode=True)
                    if not run.final or call.get("output_type") == "latent":
                        call_checks.check_finite_latent(_images(result), produced)
                    if run.interrupted:
                        break
                    if not run.final:
                        latents = result[0]
            finally:
                self._lss_run = None
        # The call's total, as stock reports its one loop; per stage: lss_plan.stages.
        self._num_timesteps = sum(run.stage_timesteps)
        if run.interrupted:
            self._interrupt = True  # the stock decode call cleared it
        return result

    def _lss_enter(
        self,
        latents: torch.Tensor,
        plan: StagePlan,
        stage: Stage,
        scaler: LatentScaler,
        generator: Any,
    ) -> torch.Tensor:
        """Upsample the previous stage's result and re-noise it to ``stage``'s entry level."""
        spatial = self._lss_to_spatial(latents, plan.stages[stage.index - 1])
        shape = (*spatial.shape[:2], stage.latent_height, stage.latent_width)
        # One noise tensor per image (batch x num_images_per_prompt), drawn from the image's own
        # generator when a list is given, so an image does not depend on its batch.
        noise = randn(shape, generator, device=spatial.device, dtype=spatial.dtype)
        # Named so the LSS machinery shows up in any profiler trace (free when none runs).
        with torch.profiler.record_function(f"lss.enter_stage[{stage.index}]"):
            entered = enter_stage(spatial, stage, scaler, noise, plan.parameterization)
        return self._lss_from_spatial(entered, stage)

    def _lss_run_stage(
        self,
        plan: StagePlan,
        stage: Stage,
        latents: torch.Tensor | None,
        call: Mapping[str, Any],
        *,
        decode: bool = False,
    ) -> Any:
        """One stock call for ``stage``; ``decode``: none of its steps, only the stock decode of
        ``latents`` (the result of an interrupted earlier stage, at that stage's size)."""
        stage_call = {
            **call,
            "height": stage.height,
            "width": stage.width,
            "num_inference_steps": stage.num_steps,
            "latents": latents,
        }
        if stage is not plan.target:
            stage_call.update(dict.fromkeys(self.lss_final_stage_arguments))
            if not decode:
                stage_call.update(output_type="latent", return_dict=False)
        check: Any = None
        if decode:
            start = stage.num_steps  # past the last step: the stock loop is empty
        else:
            start = stage.start_index
            check = functools.partial(_check_stage_schedule, stage, plan.parameterization)
        run = self._lss_run
        if run is not None:
            run.pending_reset = stage.index > 0 or decode
        with (
            torch.profiler.record_function(f"lss.stage[{stage.index}]"),
            # Later stages and a decode-only call get latents that must not be scaled again.
            entered_scheduler(self, start, check, renoised=stage.index > 0 or decode),
        ):
            result = super().__call__(**stage_call)  # type: ignore[misc]
        if run is not None:
            run.pending_reset = False
        return result


def _check_stage_schedule(stage: Stage, parameterization: Parameterization, scheduler: Any) -> None:
    """Fail loudly if the stock ``__call__`` set up another schedule than the one planned.

    The plan is made on scheduler copies configured like the stock ``__call__`` does; a Diffusers
    release that changes those arguments would otherwise make stages enter at the wrong level.
    """
    levels = scheduler_levels(scheduler, parameterization)
    planned = stage.sigmas
    if len(levels) == len(planned) and all(
        abs(a - b) <= _SCHEDULE_TOLERANCE * max(1.0, abs(b)) for a, b in zip(levels, planned)
    ):
        return
    raise RuntimeError(
        f"stage {stage.index} ({stage.width}x{stage.height}): the stock __call__ set up the "
        f"schedule {levels}, but the LSS plan expected {list(planned)}; the adapter no longer "
        "reproduces how this Diffusers version calls set_timesteps"
    )
