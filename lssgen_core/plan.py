"""Stage planning: which sizes LSS denoises at, how many steps each, and where each stage enters.

The rules are the original implementation's, so plans match its behaviour:

- ``extra stages = floor(log2(min(height, width) // min_size))`` (none when ``start_sigma == 1``);
  stage ``k`` from the end runs at the target size divided by ``2**k``.
- With ``shorten_steps`` a stage whose area is ``1/r`` of the base area runs
  ``int(num_steps // log2(max(2, r)))`` steps: half size gives N/2, quarter size N/4.
- Every stage builds its own full schedule (shift recomputed for its token count). The first stage
  runs all of it from pure noise; a later stage enters at the last scheduled level that is still
  >= ``start_sigma`` (flow terms, matched through the signal-to-noise ratio for VP and VE models),
  so FLUX at 1024 with 50 steps and ``start_sigma=0.75`` enters at 0.7595 and runs 25 steps.
  ``entry_rule="strength"`` uses the img2img rule instead (``start = N - int(N * start_sigma)``),
  which the original used for its SD and SDXL pipelines.
- A later stage that could only enter at pure noise (a one-step schedule) would throw away every
  stage before it, which then costs time for nothing; those stages are dropped, so the plan starts
  at that stage (two stages at one step give plain one-stage generation). This rule is ours, not
  the original's; :func:`plan_notes` says when it applied, and when a plan of several stages costs
  at least plain's token-steps or has many stages.
- ``stage_steps``, ``stage_entries`` and ``final_steps`` state a plan's step counts and entry levels
  directly (:mod:`lssgen_core.explicit_plan` gives their semantics); without them a plan is the
  paper's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import attrs

from lssgen_core.delegation import Delegated
from lssgen_core.errors import LSSArgumentError
from lssgen_core.explicit_plan import schedule_for_steps
from lssgen_core.frames import FrameAxis, stage_tokens
from lssgen_core.parameterization import FLOW, Parameterization, convert_sigma
from lssgen_core.plan_arguments import (
    ENTRY_RULES as ENTRY_RULES,
)
from lssgen_core.plan_arguments import (
    PlanArguments,
    check_entry_rule,
    check_plan_arguments,
    check_plan_values,
)
from lssgen_core.plan_arguments import count_extra_stages as count_extra_stages
from lssgen_core.schedules import FlowSchedule, Schedule, StageSize
from lssgen_core.validation import check_positive_int

# A scheduled level within this distance of start_sigma counts as equal (float round-off).
_LEVEL_TOLERANCE = 1e-9
# Flow levels this close to 1 are pure noise for entry purposes (VE schedules of flow models clamp
# t = 1 to a finite sigma, e.g. t = 1 - 1e-4).
PURE_NOISE_LEVEL = 1 - 1e-3
# More stages than this get a note: the defaults plan 2 (FLUX 512 -> 1024, SDXL 1024 -> 2048)
# and 3 at twice that size; each stage adds an upsampling of a finished latent.
MAX_QUIET_STAGES = 4


class LSSPlanWarning(UserWarning):
    """A plan that wastes work, or was changed so as not to (the message says which)."""


@attrs.frozen
class Stage:
    """One resolution stage of a plan."""

    index: int  # 0 is the first (smallest) stage
    size: StageSize
    num_steps: int  # length of the stage's full schedule
    sigmas: tuple[float, ...]  # the full schedule: num_steps + 1 levels ending in 0
    start_index: int  # where the stage enters its schedule (0 for the first stage)

    height = Delegated[int]("size.height")
    width = Delegated[int]("size.width")
    latent_height = Delegated[int]("size.latent_height")
    latent_width = Delegated[int]("size.latent_width")
    num_tokens = Delegated[int]("size.num_tokens")

    @property
    def entry_level(self) -> float:
        """The level this stage actually enters at, in the plan's parameterisation.

        Not `StagePlan.start_sigma` (the level asked for): a stage can only enter at a level of
        its own schedule (our measurement: 0.7595 for FLUX's 1024 px stage of a 50-step plan
        asked for 0.75).
        """
        return self.sigmas[self.start_index]

    @property
    def run_sigmas(self) -> tuple[float, ...]:
        """The part of the schedule this stage runs: ``num_denoising_steps + 1`` levels."""
        return self.sigmas[self.start_index :]

    @property
    def num_denoising_steps(self) -> int:
        """Steps this stage runs (denoiser calls for a first-order sampler)."""
        return self.num_steps - self.start_index


@attrs.frozen
class StagePlan:
    """The stages of one LSS generation, smallest first; the last is at the target size.

    ``arguments`` are the checked arguments it was planned from; their fields read as the plan's
    own (``plan.start_sigma``, ``plan.min_size``, ``plan.stage_steps`` ...).
    """

    arguments: PlanArguments
    parameterization: Parameterization
    stages: tuple[Stage, ...]
    # Smaller stages left out because the stage after them could only enter at pure noise.
    dropped_stages: int = 0
    # Where start_sigma came from when it was not given as a number (``start_sigma="auto"``
    # resolved from a scaler's calibration, :mod:`lssgen_core.auto_entry`); shown by describe().
    start_sigma_note: str | None = None
    # The frames of a video plan (None: an image); every stage keeps them, and its tokens count
    # them (:mod:`lssgen_core.frames`).
    frames: FrameAxis | None = None

    # What the plan shows of its arguments.
    height = Delegated[int]("arguments.height")
    width = Delegated[int]("arguments.width")
    num_steps = Delegated[int]("arguments.num_steps", "Plain generation's steps (cost reference).")
    min_size = Delegated[int]("arguments.min_size")
    start_sigma = Delegated[float](
        "arguments.values.start_sigma",
        "The entry level asked for (each stage's `Stage.entry_level` is the one entered).",
    )
    shorten_steps = Delegated[bool]("arguments.values.shorten_steps")
    entry_rule = Delegated[str]("arguments.values.entry_rule")
    # The explicit inputs the plan was made with (None: the paper's rules).
    stage_steps = Delegated[tuple[int, ...] | None]("arguments.values.stage_steps")
    stage_entries = Delegated[tuple[float | None, ...] | None]("arguments.values.stage_entries")
    final_steps = Delegated[int | None]("arguments.values.final_steps")
    is_explicit = Delegated[bool]("arguments.values.is_explicit")

    @property
    def target(self) -> Stage:
        return self.stages[-1]

    @property
    def is_single_stage(self) -> bool:
        return len(self.stages) == 1

    @property
    def num_denoising_steps(self) -> int:
        return sum(stage.num_denoising_steps for stage in self.stages)

    def token_steps_ratio(self) -> float:
        """Token x step work relative to plain generation at the target with ``num_steps``.

        A first cost estimate that ignores attention's quadratic term (which favours LSS).
        """
        work = sum(stage.num_tokens * stage.num_denoising_steps for stage in self.stages)
        return work / (self.target.num_tokens * self.num_steps)

    def describe(self) -> str:
        """The plan as a text table (``plan_cost(plan, cost_model).describe()`` adds the
        predicted cost and speed-up)."""
        frames = "" if self.frames is None else f", {self.frames.describe()}"
        header = (
            f"LSS plan: {self.width}x{self.height}{frames}, {self.num_steps} steps, "
            f"start_sigma={self.start_sigma}"
            + ("" if self.start_sigma_note is None else f" ({self.start_sigma_note})")
            + f", min_size={self.min_size}, "
            f"shorten_steps={self.shorten_steps}, {self.parameterization.name} sigmas, "
            f"entry rule {self.entry_rule!r}"
        )
        if self.is_explicit:
            header += (
                f", stage_steps={self.stage_steps}, stage_entries={self.stage_entries}, "
                f"final_steps={self.final_steps}"
            )
        columns = ("stage", "pixels", "latent", "tokens", "schedule", "enters at", "sigma", "steps")
        rows = [
            (
                str(stage.index),
                f"{stage.width}x{stage.height}",
                _latent_cell(stage, self.frames),
                str(stage.num_tokens),
                str(stage.num_steps),
                str(stage.start_index),
                f"{stage.entry_level:.4f}",
                str(stage.num_denoising_steps),
            )
            for stage in self.stages
        ]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths))

        footer = (
            f"total steps {self.num_denoising_steps}; token-steps vs plain "
            f"{self.token_steps_ratio():.1%}"
        )
        text = [header, line(columns), *(line(r) for r in rows), footer, *plan_notes(self)]
        return "\n".join(text)

    def __str__(self) -> str:
        return self.describe()


def _latent_cell(stage: Stage, frames: FrameAxis | None) -> str:
    """A stage's latent size: ``WxH``, or ``FxWxH`` (latent frames first) for a video."""
    spatial = f"{stage.latent_width}x{stage.latent_height}"
    return spatial if frames is None else f"{frames.latent_frames}x{spatial}"


def plan_notes(plan: StagePlan) -> tuple[str, ...]:
    """What a caller should be told about ``plan`` (the pipelines warn with these, once a call).

    - stages were dropped because a later stage would have entered at pure noise;
    - several stages cost at least plain generation's token-steps (LSS gains nothing);
    - more than :data:`MAX_QUIET_STAGES` stages.
    """
    notes = []
    if plan.dropped_stages:
        first = plan.stages[0]
        dropped = ", ".join(
            f"{first.width // 2**k}x{first.height // 2**k}"
            for k in range(plan.dropped_stages, 0, -1)
        )
        kept = "one stage (plain generation)" if plan.is_single_stage else "fewer stages"
        notes.append(
            f"the {first.width}x{first.height} stage's {first.num_steps}-step schedule has no "
            "level below pure noise to enter at, so re-entering there would throw away the "
            f"{dropped} stage before it; running {kept} from {first.width}x{first.height} "
            "instead. Use more num_inference_steps for LSS to take effect"
        )
    ratio = plan.token_steps_ratio()
    if not plan.is_single_stage and ratio >= 1:
        notes.append(
            f"this LSS plan costs {ratio:.1%} of plain's token-steps (stages run "
            f"{[s.num_denoising_steps for s in plan.stages]} steps), so it is no faster than one "
            "stage; use more num_inference_steps, a lower start_sigma, shorten_intermediate_steps="
            "True, or one stage (start_sigma=1)"
        )
    if len(plan.stages) > MAX_QUIET_STAGES:
        sizes = " -> ".join(str(min(s.height, s.width)) for s in plan.stages)
        notes.append(
            f"{len(plan.stages)} stages ({sizes} px): each upsamples a finished latent 2x and "
            f"adds its own error; the defaults plan 2. Raise min_size (now {plan.min_size}) to "
            "use fewer stages"
        )
    return tuple(notes)


def warn_plan_notes(plan: StagePlan, stacklevel: int = 2) -> None:
    """Each of :func:`plan_notes` as an :class:`LSSPlanWarning` (call once per generation)."""
    for note in plan_notes(plan):
        warnings.warn(note, LSSPlanWarning, stacklevel=stacklevel + 1)


def shortened_steps(num_steps: int, area_ratio: float) -> int:
    """Steps for a stage whose area is ``1/area_ratio`` of the base: N, N/2 at half size, N/4 ..."""
    return max(1, int(num_steps // math.log2(max(2.0, area_ratio))))


def entry_index(
    sigmas: Sequence[float],
    start_sigma: float,
    parameterization: Parameterization = FLOW,
    entry_rule: str = "sigma",
) -> int:
    """Where a later stage enters its schedule ``sigmas`` (``num_steps + 1`` levels ending in 0).

    "sigma": the last step whose level (converted to flow terms) is still >= ``start_sigma``,
    but never the pure-noise level itself when the schedule has a later one.
    "strength": the img2img rule ``N - int(N * start_sigma)``.
    Always leaves at least one step.
    """
    num_steps = len(sigmas) - 1
    if entry_rule == "strength":
        return min(max(num_steps - int(num_steps * start_sigma), 0), num_steps - 1)
    if entry_rule != "sigma":
        check_entry_rule(entry_rule)  # raises: neither rule
    levels = [convert_sigma(sigma, parameterization, FLOW) for sigma in sigmas[:-1]]
    index = 0
    for i, level in enumerate(levels):
        if level >= start_sigma - _LEVEL_TOLERANCE:
            index = i
    if index == 0 and num_steps > 1 and levels[0] >= PURE_NOISE_LEVEL:
        # A short schedule can jump from pure noise straight below start_sigma; entering at pure
        # noise would throw the previous stage away, so take the first level below instead.
        index = 1
    return index


def _check_sizes(
    height: int, width: int, extra_stages: int, pixel_multiple: int, min_size: int
) -> None:
    needed = pixel_multiple * 2**extra_stages
    for argument, value in (("height", height), ("width", width)):
        if value % needed == 0:
            continue
        if not extra_stages:
            raise LSSArgumentError(
                argument,
                f"{argument}={value} must be a multiple of "
                f"vae_scale_factor * patch_size = {pixel_multiple}",
            )
        sizes = " -> ".join(str(value // 2**k) for k in range(extra_stages, -1, -1))
        raise LSSArgumentError(
            argument,
            f"{argument}={value} must be a multiple of {needed}: each of the "
            f"{extra_stages + 1} stages ({sizes}) must be a multiple of "
            f"vae_scale_factor * patch_size = {pixel_multiple}; or raise min_size "
            f"(now {min_size}) to use fewer stages",
        )


def plan_stages(
    height: int,
    width: int,
    *,
    num_steps: int,
    min_size: int | None = None,
    start_sigma: float = 0.75,
    shorten_steps: bool = False,
    vae_scale_factor: int = 8,
    patch_size: int = 1,
    schedule: Schedule | None = None,
    parameterization: Parameterization = FLOW,
    entry_rule: str = "sigma",
    stage_steps: Sequence[int] | None = None,
    stage_entries: Sequence[float | None] | None = None,
    final_steps: int | None = None,
    frames: FrameAxis | None = None,
) -> StagePlan:
    """Plan the stages of an LSS generation at ``height`` x ``width`` pixels (of a video of
    ``frames``: every stage keeps them and its tokens count them, :mod:`lssgen_core.frames`).

    ``patch_size`` is the model's latent multiple: 2 for FLUX (2x2 packing), SD3 and CogView4
    (transformer patches), 1 for UNets. ``schedule`` gives each stage its levels in
    ``parameterization``'s sigmas (default: unshifted flow).

    ``min_size`` defaults to 512, or, with ``stage_steps`` / ``stage_entries``, to the size that
    gives their number of stages (a ``min_size`` passed with them must give that number).
    ``stage_steps`` (steps each stage runs, smallest first), ``stage_entries`` (each later stage's
    entry level, None for ``start_sigma``) and ``final_steps`` (steps the target stage runs) are
    explained in :mod:`lssgen_core.explicit_plan`; contradictory combinations raise
    :class:`~lssgen_core.errors.LSSArgumentError` before any schedule is built
    (:mod:`lssgen_core.plan_arguments` checks every argument).
    """
    values = check_plan_values(
        start_sigma=start_sigma,
        shorten_steps=shorten_steps,
        entry_rule=entry_rule,
        stage_steps=stage_steps,
        stage_entries=stage_entries,
        final_steps=final_steps,
    )
    arguments = check_plan_arguments(height, width, values, num_steps=num_steps, min_size=min_size)
    return plan_from_arguments(
        arguments,
        vae_scale_factor=vae_scale_factor,
        patch_size=patch_size,
        schedule=schedule,
        parameterization=parameterization,
        frames=frames,
    )


def plan_from_arguments(
    arguments: PlanArguments,
    *,
    vae_scale_factor: int = 8,
    patch_size: int = 1,
    schedule: Schedule | None = None,
    parameterization: Parameterization = FLOW,
    frames: FrameAxis | None = None,
) -> StagePlan:
    """The plan of arguments checked by :func:`~lssgen_core.plan_arguments.check_plan_arguments`
    (see :func:`plan_stages`); only the model's latent geometry and the schedule are checked here.
    """
    check_positive_int(vae_scale_factor, "vae_scale_factor")
    check_positive_int(patch_size, "patch_size")
    height, width, num_steps = arguments.height, arguments.width, arguments.num_steps
    values, extra, min_size = arguments.values, arguments.extra_stages, arguments.min_size
    stage_steps, stage_entries, final_steps = (
        values.stage_steps,
        values.stage_entries,
        values.final_steps,
    )
    pixel_multiple = vae_scale_factor * patch_size
    _check_sizes(height, width, extra, pixel_multiple, min_size)
    schedule = schedule or FlowSchedule()

    stages: list[Stage] = []
    for index, k in enumerate(range(extra, -1, -1)):
        stage_height, stage_width = height // 2**k, width // 2**k
        latent_height, latent_width = (
            stage_height // vae_scale_factor,
            stage_width // vae_scale_factor,
        )
        size = StageSize(
            height=stage_height,
            width=stage_width,
            latent_height=latent_height,
            latent_width=latent_width,
            num_tokens=stage_tokens(latent_height, latent_width, patch_size, frames),
            latent_frames=1 if frames is None else frames.latent_frames,
        )
        area_ratio = (height * width) / (stage_height * stage_width)
        steps = shortened_steps(num_steps, area_ratio) if values.shorten_steps else num_steps
        run = _asked_steps(index, extra, stage_steps, final_steps)
        if index == 0 and run is not None:
            steps = run

        def levels(length: int, size: StageSize = size) -> tuple[float, ...]:
            sigmas = tuple(float(s) for s in schedule(length, size))
            _check_schedule(sigmas, length, size)
            return sigmas

        if index == 0:
            stages.append(Stage(index, size, steps, levels(steps), 0))
            continue
        asked = None if stage_entries is None else stage_entries[index - 1]
        level = values.start_sigma if asked is None else asked

        def entry_of(sigmas: Sequence[float], level: float = level) -> int:
            return entry_index(sigmas, level, parameterization, values.entry_rule)

        if run is None:
            sigmas = levels(steps)
            stages.append(Stage(index, size, steps, sigmas, entry_of(sigmas)))
            continue
        length, sigmas, start = schedule_for_steps(
            run,
            levels,
            entry_of,
            lambda sigma: convert_sigma(sigma, parameterization, FLOW) >= PURE_NOISE_LEVEL,
        )
        stages.append(Stage(index, size, length, sigmas, start))

    dropped = _first_useful_stage(stages, parameterization)
    stages = [
        attrs.evolve(stage, index=i, start_index=0 if i == 0 else stage.start_index)
        for i, stage in enumerate(stages[dropped:])
    ]
    return StagePlan(
        arguments=arguments,
        parameterization=parameterization,
        stages=tuple(stages),
        dropped_stages=dropped,
        frames=frames,
    )


def _asked_steps(
    index: int, extra: int, stage_steps: tuple[int, ...] | None, final_steps: int | None
) -> int | None:
    """The steps the explicit inputs ask stage ``index`` (of ``extra + 1``) to run, if any."""
    if stage_steps is not None:
        return stage_steps[index]
    if final_steps is not None and index == extra:
        return final_steps
    return None


def _first_useful_stage(stages: Sequence[Stage], parameterization: Parameterization) -> int:
    """Index of the last stage that would enter at pure noise (0 if none): the stages before it
    would be thrown away, so the plan starts there."""
    first = 0
    for stage in stages[1:]:
        if convert_sigma(stage.entry_level, parameterization, FLOW) >= PURE_NOISE_LEVEL:
            first = stage.index
    return first


def _check_schedule(sigmas: Sequence[float], num_steps: int, size: StageSize) -> None:
    for step, sigma in enumerate(sigmas):
        if not math.isfinite(sigma):
            raise LSSArgumentError(
                "schedule",
                f"schedule returned a non-finite level ({sigma}) at step {step} of stage "
                f"{size.width}x{size.height}: {list(sigmas)}",
            )
    if len(sigmas) != num_steps + 1 or sigmas[-1] != 0:
        raise LSSArgumentError(
            "schedule",
            f"schedule returned {len(sigmas)} levels ending in {sigmas[-1] if sigmas else None}; "
            f"expected num_steps + 1 = {num_steps + 1} levels ending in 0",
        )
    if any(b > a for a, b in zip(sigmas, sigmas[1:])):
        raise LSSArgumentError("schedule", f"schedule must be non-increasing, got {list(sigmas)}")
