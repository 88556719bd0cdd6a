"""LSS for every Diffusers pipeline: plan, encode the prompt once, run the core's stage loop.

The stage loop is the core's (:func:`~lssgen_core.sampling.run_stages`); here each stage is one
call of the stock pipeline's own ``__call__`` at the stage's size and step count, so every stock
argument keeps its meaning. Between stages the loop scales the finished latent 2x (brought to
spatial form here) and re-noises it to the next stage's entry level; it is handed over as
``latents`` and the stock loop enters its schedule part-way through a
:class:`~lssgen_diffusers.scheduler_view.SchedulerView`. Per-model subclasses supply only what
differs: packing, how the stock ``__call__`` sets its timesteps, how it encodes prompts, and their
defaults."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Mapping
from typing import Any, cast

import attrs
import torch

from lssgen_core.errors import LSSArgumentError
from lssgen_core.frames import stage_tokens
from lssgen_core.parameterization import Parameterization
from lssgen_core.plan import Stage, StagePlan, plan_from_arguments, warn_plan_notes
from lssgen_core.plan_arguments import PlanArguments, check_plan_arguments
from lssgen_core.sampling import StageOutcome, run_stages
from lssgen_core.schedules import StageSize
from lssgen_core.upsample import LatentScaler, LatentUpsampler, make_latent_scaler
from lssgen_diffusers import call_checks, placement
from lssgen_diffusers.auto_entry import resolve_start_sigma
from lssgen_diffusers.cache_hooks import check_cache_across_stages
from lssgen_diffusers.call_args import bind_call
from lssgen_diffusers.component import (
    COMPONENT_NAME,
    load_saved_upsampler,
    lss_init,
    offload_sequence,
    save_component,
)
from lssgen_diffusers.family import LSSFamily
from lssgen_diffusers.held_state import HeldAcrossStages
from lssgen_diffusers.host import StockPipeline
from lssgen_diffusers.options import LSS_ARGUMENTS, LSSOptions, resolve_options
from lssgen_diffusers.progress import StageProgress
from lssgen_diffusers.scheduler_levels import (
    check_supported,
    parameterization_of,
    scheduler_levels,
)
from lssgen_diffusers.scheduler_view import entered_scheduler
from lssgen_diffusers.signature import lss_call

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
    """One call's resolved LSS options, bound stock arguments and checked plan arguments."""

    options: LSSOptions
    call: Mapping[str, Any]
    arguments: PlanArguments
    # The stock arguments as given, for the stock call of one stage.
    stock_args: tuple[Any, ...]
    stock_kwargs: Mapping[str, Any]
    start_sigma_note: str | None = None  # how start_sigma="auto" was resolved


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
        raise LSSArgumentError(
            argument,
            f"{argument} has batch size {tensor.shape[0]}, which does not divide the "
            f"{total} images requested",
        )
    return tensor.repeat_interleave(total // tensor.shape[0], dim=0)


def _integral(size: Any) -> Any:
    """An integral float size as the int it is (stock accepts ``512.0``); others as given."""
    return int(size) if isinstance(size, float) and size.is_integer() else size


def _images(result: Any) -> Any:
    """The images (or latents; a video pipeline's ``frames``) of a stock ``__call__`` result,
    with or without ``return_dict``."""
    if isinstance(result, tuple):
        return result[0]
    return result.frames if hasattr(result, "frames") else result.images


class LSSPipelineMixin(LSSFamily):
    """Adds latent space scaling to a stock Diffusers text-to-image pipeline (put it first).

    A family supplies only the public contract of :class:`~lssgen_diffusers.family.LSSFamily`;
    everything here is shared."""

    lss_plan: StagePlan | None = None
    _lss_run: _Run | None = None
    # Guidance a callback changes holds for the rest of the call, over every stage.
    _guidance_scale = HeldAcrossStages()

    # --- the stock pipeline underneath ----------------------------------------------------------

    @property
    def _lss_host(self) -> StockPipeline:
        """This pipeline, typed as the stock pipeline it extends (for its attributes)."""
        return cast(StockPipeline, self)

    @property
    def _lss_stock(self) -> StockPipeline:
        """The stock pipeline's own methods, past the ones this mixin overrides."""
        return cast(StockPipeline, super())

    # --- the component -----------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if issubclass(cls.__bases__[-1], LSSPipelineMixin):
            return  # a subclass of an LSS pipeline inherits its __init__ and __call__
        stock = next(
            base for base in cls.__mro__ if not issubclass(base, (LSSPipelineMixin, LSSFamily))
        )
        if "__call__" not in cls.__dict__:
            cls.__call__ = lss_call(  # type: ignore[method-assign]
                stock, LSSPipelineMixin.__call__, cls.lss_defaults, LSS_ARGUMENTS_DOC
            )
        if "__init__" not in cls.__dict__:
            cls.__init__ = lss_init(stock)  # type: ignore[method-assign]
        # The upsampler runs between the denoiser and the VAE when models are offloaded, and may
        # be absent (latent / pixel scaling, one stage).
        family: Any = cls  # typed as Any: the stock pipeline's class attributes are not ours
        if "model_cpu_offload_seq" not in cls.__dict__:
            family.model_cpu_offload_seq = offload_sequence(family.model_cpu_offload_seq)
        if "_optional_components" not in cls.__dict__:
            family._optional_components = [*family._optional_components, COMPONENT_NAME]

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
        stock_save = self._lss_stock.save_pretrained
        variant = bind_call(stock_save, (save_directory, *args), kwargs).get("variant")
        save_component(getattr(self, COMPONENT_NAME, None), save_directory, variant)
        host = self._lss_host
        entry = host.config.get(COMPONENT_NAME, (None, None))
        # The stock method would warn that it cannot save the component and record it as absent
        # in the pipeline's own config; record it as absent only in the written model_index.json.
        host.register_to_config(**{COMPONENT_NAME: (None, None)})
        try:
            stock_save(save_directory, *args, **kwargs)
        finally:
            host.register_to_config(**{COMPONENT_NAME: entry})

    # --- pipeline hooks the stock __call__ uses -------------------------------------------------

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any:
        run = self._lss_run
        if run is None or iterable is not None:
            return self._lss_stock.progress_bar(iterable=iterable, total=total)
        return StageProgress(run.bar)

    def maybe_free_model_hooks(self) -> None:
        run = self._lss_run
        if run is None or run.final:
            self._lss_stock.maybe_free_model_hooks()
            return
        # Between stages: stateful caches must go (the next stage has another token count), but
        # offloading every model only to load the denoiser straight back would waste transfers.
        for component in self._lss_host.components.values():
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
            return self._lss_stock.device

    @property
    def dtype(self) -> torch.dtype:
        """The stock ``dtype``, leaving out the latent upsampler (as :attr:`device`)."""
        with placement.upsampler_hidden(self):
            return self._lss_stock.dtype

    @property
    def lss_stage(self) -> Stage | None:
        """The stage running now (for callbacks: their step index restarts in every stage)."""
        run = self._lss_run
        return None if run is None else run.stage

    # --- the call ------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.lss_plan = None
        request = self._lss_request(args, kwargs)
        call, arguments = request.call, request.arguments
        if arguments.is_single_stage:
            self.lss_plan = self._lss_single_stage_plan(request)
            return self._lss_stock_call(request)

        # Everything that can be wrong is checked before the first model runs.
        call_checks.run_stock_check_inputs(self, call, arguments.height, arguments.width)
        total = self._lss_prompt_batch(call) * (call[self.lss_per_prompt_argument] or 1)
        self._lss_check_arguments(call, total)
        scaler = self._lss_scaler(request.options.scaling_mode)
        plan = self._lss_plan_stock_size(request)
        self.lss_plan = plan
        # The caller: above torch.no_grad's wrapper and the generated signature (signature.py).
        warn_plan_notes(plan, stacklevel=4)
        latents = call.get("latents")
        expected = self.lss_packed_shape(total, plan.stages[0])
        if latents is not None and tuple(latents.shape) != expected:
            raise LSSArgumentError(
                "latents",
                f"latents has shape {tuple(latents.shape)}; with several stages it is the first "
                f"stage's starting noise ({plan.stages[0].width}x{plan.stages[0].height} px) "
                f"and must have shape {expected}",
            )
        if plan.is_single_stage:  # smaller stages dropped (a pure-noise entry; warned above)
            return self._lss_stock_call(request)
        check_cache_across_stages(
            getattr(self, self.lss_denoiser_name),
            plan,
            lambda stage: self._lss_configured_scheduler(stage.num_steps, stage.size, call),
        )

        call = self._lss_prepared_prompts(call, total)
        return self._lss_generate(plan, call, scaler)

    __call__.__doc__ = (
        "Generate with latent space scaling; see the stock ``__call__`` for its arguments.\n"
        + LSS_ARGUMENTS_DOC
    )

    def lss_plan_for(self, **kwargs: Any) -> StagePlan:
        """The plan a call with these arguments would run, without running anything.

        Takes a call's own keyword arguments: the LSS ones (``start_sigma``, ``min_size`` ...)
        and stock ``__call__`` ones (``height``, ``width``, ``num_inference_steps``, ``mu`` ...;
        unset ones take the stock defaults); ``scaling_mode`` is checked but does not change the
        plan.
        """
        request = self._lss_request((), kwargs)
        return self._lss_plan(request, check=not request.arguments.is_single_stage)

    # --- checks and planning -------------------------------------------------------------------

    def _lss_request(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Request:
        """Split a call's LSS arguments (:data:`~lssgen_diffusers.options.LSS_ARGUMENTS`) from its
        stock ones, resolve the first and bind the second, checking both before any work."""
        stock = {name: value for name, value in kwargs.items() if name not in LSS_ARGUMENTS}
        lss = {name: kwargs.get(name) for name in LSS_ARGUMENTS}
        # "auto" becomes the level the scaler's calibration gives (auto_entry.py), or an error.
        start = resolve_start_sigma(self, lss["start_sigma"], lss["scaling_mode"])
        lss["start_sigma"] = start.start_sigma
        options = resolve_options(self.lss_defaults, **lss)
        call = bind_call(self._lss_stock.__call__, args, stock)
        # Checked as the caller asked, before the stock rounding (FLUX: 8 px would round to 0).
        self._lss_check_call(call, *self._lss_requested_size(call))
        height, width = self._lss_target_size(call)
        arguments = check_plan_arguments(
            height,
            width,
            options.values,
            num_steps=self._lss_num_steps(call),
            min_size=options.min_size_for(height, width),
            min_size_argument=options.min_size_argument or "min_size",
            steps_argument="num_inference_steps",
        )
        return _Request(options, call, arguments, args, stock, start.note)

    def _lss_num_steps(self, call: Mapping[str, Any]) -> Any:
        """The call's step count: ``num_inference_steps``, or, as stock, the length of the
        ``sigmas`` / ``timesteps`` that replace it (those are refused with several stages)."""
        for name in call_checks.SCHEDULE_ARGUMENTS:
            if call.get(name) is not None:
                return len(call[name])
        return call.get("num_inference_steps")

    def _lss_check_call(self, call: Mapping[str, Any], height: int, width: int) -> None:
        """Stock arguments the stock call would fail on deep inside, or silently misread; the
        same for one stage and several (:mod:`lssgen_diffusers.call_checks`)."""
        smallest = self.lss_vae_scale_factor * self.lss_patch_size
        call_checks.check_size(height, "height", smallest)
        call_checks.check_size(width, "width", smallest)
        per_prompt = self.lss_per_prompt_argument
        call_checks.check_count(call.get(per_prompt), per_prompt)
        unset = call_checks.none_by_default(self._lss_stock.__call__)
        for name in call_checks.GUIDANCE_ARGUMENTS:
            # None where the stock default is None means "off" (Qwen-Image's guidance_scale).
            if name in call and not (call[name] is None and name in unset):
                call_checks.check_finite_real(call[name], name)
        call_checks.check_prompt(call.get("prompt"))
        call_checks.check_generator(call.get("generator"))
        denoiser = self.lss_denoiser_name
        call_checks.check_latents(
            call.get("latents"),
            dtype=None if self.lss_casts_latents else getattr(self, denoiser).dtype,
            denoiser=denoiser,
        )
        if self.lss_batched_embeds:
            guided = self.lss_classifier_free_guidance(call)
            names = [n for n in self.lss_batched_embeds if guided or not n.startswith("negative")]
            call_checks.check_embeds_batch(call, tuple(names))

    def _lss_stock_call(self, request: _Request) -> Any:
        """One stage: the stock call as it is, with its final latent checked before decoding."""
        what = call_checks.stage_produced(0, request.arguments.width, request.arguments.height)
        with call_checks.checked_decode(self._lss_host.vae, what):
            result = self._lss_stock.__call__(*request.stock_args, **request.stock_kwargs)
        if request.call.get("output_type") == "latent":
            call_checks.check_finite_latent(_images(result), what)
        return result

    def _lss_requested_size(self, call: Mapping[str, Any]) -> tuple[int, int]:
        default_height, default_width = self.lss_default_size()
        return call.get("height") or default_height, call.get("width") or default_width

    def _lss_target_size(self, call: Mapping[str, Any]) -> tuple[int, int]:
        height, width = self._lss_requested_size(call)
        if self._lss_binned(call):
            height, width = self.lss_binned_size(height, width)
        else:
            height, width = self.lss_stock_size(height, width)
        return _integral(height), _integral(width)

    def _lss_binned(self, call: Mapping[str, Any]) -> bool:
        """Whether this call runs the family's resolution binning (the stock argument's value)."""
        binning = self.lss_resolution_binning
        return binning is not None and bool(call.get(binning))

    def _lss_plan_stock_size(self, request: _Request) -> StagePlan:
        """The checked plan for the size the stock call would make (FLUX rounds down, with a
        warning, given here); a rounded size no plan takes is refused, saying so."""
        requested = dict(zip(("height", "width"), self._lss_requested_size(request.call)))
        rounded = {"height": request.arguments.height, "width": request.arguments.width}
        changed = {name: value for name, value in requested.items() if value != rounded[name]}
        if not changed:
            return self._lss_plan(request, check=True)
        self.lss_warn_stock_size(request.call, requested["height"], requested["width"])
        try:
            return self._lss_plan(request, check=True)
        except LSSArgumentError as exc:
            # Not only rounding down: HiDream scales a size up to its one area too.
            note = " and ".join(
                f"{n}={v} rounds (or scales) to {rounded[n]}" for n, v in changed.items()
            )
            raise LSSArgumentError(
                exc.argument,
                f"{note} in the stock pipeline (lss_stock_size), and that size does not split "
                f"into these stages: {exc}",
            ) from exc

    def _lss_prompt_batch(self, call: Mapping[str, Any]) -> int:
        prompt = call.get("prompt")
        if isinstance(prompt, str):
            return 1
        if isinstance(prompt, list):
            return len(prompt)
        embeds = call.get(self.lss_batch_argument)
        if embeds is None:
            raise LSSArgumentError("prompt", f"pass prompt or {self.lss_batch_argument}")
        return len(embeds)  # a batched tensor, or Z-Image's list of per-prompt tensors

    def _lss_check_arguments(self, call: Mapping[str, Any], total: int) -> None:
        for argument in self.lss_schedule_arguments:
            if call.get(argument) is not None:
                raise LSSArgumentError(
                    argument,
                    f"{argument} fixes one schedule for the whole call, but LSS builds a schedule "
                    f"for every stage size; leave {argument} unset, or use one stage "
                    "(start_sigma=1)",
                )
        for argument, reason in self.lss_single_stage_arguments.items():
            if call.get(argument) is not None:
                raise LSSArgumentError(
                    argument,
                    f"{argument} cannot be split over LSS stages: {reason}; leave {argument} "
                    "unset, or use one stage (start_sigma=1)",
                )
        generator = call.get("generator")
        if isinstance(generator, list) and len(generator) != total:
            raise LSSArgumentError(
                "generator",
                f"generator is a list of {len(generator)} generators but {total} images are "
                f"requested (batch size x {self.lss_per_prompt_argument}); pass one generator per "
                "image",
            )

    def _lss_scaler(self, scaling_mode: str) -> LatentScaler:
        upsampler: LatentUpsampler | None = getattr(self, COMPONENT_NAME, None)
        host = self._lss_host
        if scaling_mode == "pixel":
            codec = self.lss_pixel_codec()
            return make_latent_scaler("pixel", decode=codec.decode, encode=codec.encode)
        # Refuses "resnet" without an upsampler (the core's one check of it).
        scaler = make_latent_scaler(scaling_mode, upsampler=upsampler)
        if scaling_mode == "resnet":
            assert upsampler is not None
            upsampler.check_latent_channels(self.lss_latent_channels)
            runs_on = torch.device(host._execution_device)
            placement.check_upsampler_device(upsampler, runs_on)
        return scaler

    def _lss_configured_scheduler(
        self, num_steps: int, size: StageSize, call: Mapping[str, Any]
    ) -> Any:
        scheduler = copy.deepcopy(self._lss_host.scheduler)
        self.lss_set_timesteps(scheduler, num_steps, size, call)
        return scheduler

    def _lss_plan(self, request: _Request, *, check: bool) -> StagePlan:
        arguments, call = request.arguments, request.call
        height, width, num_steps = arguments.height, arguments.width, arguments.num_steps
        vae_scale = self.lss_vae_scale_factor
        latent_height, latent_width = height // vae_scale, width // vae_scale
        patch = self.lss_patch_size
        frames = self.lss_frames(call)
        target = StageSize(
            height,
            width,
            latent_height,
            latent_width,
            stage_tokens(latent_height, latent_width, patch, frames),
            1 if frames is None else frames.latent_frames,
        )
        probe = self._lss_configured_scheduler(num_steps, target, call)
        if check:
            check_supported(probe)
        parameterization = parameterization_of(probe)

        def schedule(steps: int, size: StageSize) -> list[float]:
            configured = self._lss_configured_scheduler(steps, size, call)
            return scheduler_levels(configured, parameterization)

        plan = plan_from_arguments(
            arguments,
            vae_scale_factor=vae_scale,
            patch_size=patch,
            schedule=schedule,
            parameterization=parameterization,
            frames=frames,
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
        updates = self.lss_encode_prompts(call)
        for name in self.lss_repeated_arguments:
            if name in updates:
                updates[name] = _repeat_to(updates[name], total, name)
        return {**call, **updates, self.lss_per_prompt_argument: 1}

    # --- running the stages --------------------------------------------------------------------

    def _lss_generate(self, plan: StagePlan, call: Mapping[str, Any], scaler: LatentScaler) -> Any:
        """Run the stages with the core's stage loop, each one a stock ``__call__``."""
        bar = self._lss_stock.progress_bar(total=plan.num_denoising_steps)
        with bar:
            run = _Run(plan, bar)
            self._lss_run = run
            try:
                runner = functools.partial(self._lss_stage, plan, call)
                outcome = run_stages(
                    plan, scaler, runner, first=call.get("latents"), generator=call["generator"]
                )
            finally:
                self._lss_run = None
        # The call's total, as stock reports its one loop; per stage: lss_plan.stages.
        self._num_timesteps = sum(run.stage_timesteps)
        if run.interrupted:
            self._interrupt = True  # the stock decode call cleared it
        return outcome.result

    def _lss_stage(
        self, plan: StagePlan, call: Mapping[str, Any], stage: Stage, latents: torch.Tensor | None
    ) -> StageOutcome:
        """The stage runner: one stock call, its latent checked at the hand-over; an interrupt
        returns this stage's latent decoded as asked, at this stage's size."""
        run = self._lss_run
        assert run is not None
        if stage.index > 0:
            assert latents is not None
            latents = self.lss_pack(latents, stage)
            call_checks.check_finite_latent(
                latents,
                call_checks.stage_entry(stage.index, stage.width, stage.height),
                call_checks.UPSAMPLER_HINT,
            )
        run.stage = stage
        run.final = stage is plan.target
        produced = call_checks.stage_produced(stage.index, stage.width, stage.height)
        vae = self._lss_host.vae
        # Pipelines without num_timesteps (PixArt) leave it unset: the stage ran its planned steps.
        vars(self).pop("_num_timesteps", None)
        with call_checks.checked_decode(vae, produced):
            result = self._lss_run_stage(plan, stage, latents, call)
        run.stage_timesteps.append(vars(self).get("_num_timesteps", stage.num_denoising_steps))
        run.interrupted = run.interrupted or bool(getattr(self, "_interrupt", False))
        if run.interrupted and not run.final:
            # As stock: stop and return the current latent, decoded as asked.
            run.final = True
            with call_checks.checked_decode(vae, produced):
                latents = self.lss_latents_from_output(result[0], stage)
                result = self._lss_run_stage(plan, stage, latents, call, decode=True)
        if not run.final or call.get("output_type") == "latent":
            call_checks.check_finite_latent(_images(result), produced)
        if run.final:
            return StageOutcome(None, result, stop=run.interrupted)
        return StageOutcome(self.lss_unpack(result[0], stage), result)

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
        binning = self.lss_resolution_binning
        if stage is plan.target and self._lss_binned(call):
            # The stock call bins the size the user asked for to this stage's size, and resizes
            # the image back to it.
            stage_call["height"], stage_call["width"] = self._lss_requested_size(call)
        elif binning is not None:
            stage_call[binning] = False  # an earlier stage runs at its planned size
        if stage is not plan.target:
            stage_call.update(dict.fromkeys(self.lss_final_stage_arguments))
            if not decode:
                stage_call.update(output_type="latent", return_dict=False)
        stage_call.update(self.lss_stage_arguments(call, plan, stage))
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
            result = self._lss_stock.__call__(**stage_call)
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
