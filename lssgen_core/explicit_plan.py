"""Explicit plan inputs: per-stage step counts and entry levels, and a full-resolution step count.

The paper plans every stage from one step count and one entry level (``num_steps``,
``start_sigma``, optionally ``shorten_steps``). These inputs state a plan directly instead:

- ``stage_steps=(12, 6)``: the denoising steps each stage runs, smallest stage first. Its length is
  the number of stages. The first stage runs a ``stage_steps[0]``-step schedule from pure noise.
- ``stage_entries=(0.5, 0.3)``: the flow level each later stage enters at (one per later stage;
  ``None`` takes ``start_sigma``), read by the plan's ``entry_rule`` as ``start_sigma`` is.
- ``final_steps=N``: the full-resolution step count, the steps the target stage runs; the smaller
  stages are planned by the paper's rules. Its budget rule: the smaller stages of any paper plan
  cost less than ``num_steps / 3`` full-resolution steps (half size has a quarter of the tokens:
  1/4 + 1/16 + ... < 1/3, and each runs at most ``num_steps``), so ``final_steps <=
  2 * num_steps // 3`` (:func:`budget_final_steps`) never costs more token-steps than plain.

A later stage asked to run ``n`` steps needs a schedule whose entry leaves ``n`` steps: it gets the
longest one (up to :data:`MAX_SCHEDULE_STEPS`) whose entry rule still leaves at most ``n`` steps,
and enters it ``n`` steps before the end. That entry is at or above the asked level (the sigma rule
picks the last level still >= the asked one), the closest to it that this schedule family offers
with ``n`` steps, and never pure noise. With flow levels ``1 - i/L`` and level ``s`` this is
``L = floor(n / s)``: on unshifted flow levels ``stage_steps=(12, 6)`` at ``start_sigma=0.3``
enters a 20-step schedule at 0.3. Schedule lengths are an implementation detail: cost depends on
the steps run only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.validation import check_positive_int

# Diffusers' discrete schedulers refuse more steps than their training schedule's 1000 levels.
MAX_SCHEDULE_STEPS = 1000


def is_explicit_plan(
    stage_steps: object | None, stage_entries: object | None, final_steps: object | None
) -> bool:
    """Whether any explicit plan input is given (all None: the paper's rules)."""
    return stage_steps is not None or stage_entries is not None or final_steps is not None


def budget_final_steps(num_steps: int) -> int:
    """The largest ``final_steps`` that is never more expensive than plain with ``num_steps``
    (0 for one step: no plan of several stages undercuts one plain step)."""
    return 2 * num_steps // 3


def _check_per_stage(
    value: object, argument: str, what: str, example: str, one: str
) -> Sequence[object]:
    """``value`` if it is a non-empty sequence (not a string) of ``what``; ``one`` says what one
    stage's item is, for the message of an empty one."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise LSSArgumentTypeError(
            argument, f"{argument} must be a tuple of {what} (e.g. {example}), got {value!r}"
        )
    if not value:
        raise LSSArgumentError(argument, f"{argument}=() must have {one}")
    return value


def check_stage_steps(stage_steps: object) -> tuple[int, ...] | None:
    """``stage_steps`` as a tuple of step counts >= 1 (None stays None)."""
    if stage_steps is None:
        return None
    stage_steps = _check_per_stage(
        stage_steps,
        "stage_steps",
        "step counts, one per stage, smallest stage first",
        "(12, 6)",
        "one step count (an integer >= 1) per stage",
    )
    return tuple(
        check_positive_int(steps, "stage_steps", shown=f"stage_steps[{k}]")
        for k, steps in enumerate(stage_steps)
    )


def check_stage_entries(stage_entries: object) -> tuple[float | None, ...] | None:
    """``stage_entries`` as a tuple of levels in (0, 1) or None (None stays None)."""
    if stage_entries is None:
        return None
    stage_entries = _check_per_stage(
        stage_entries,
        "stage_entries",
        "entry levels, one per later stage",
        "(0.3,)",
        "one entry level per later stage (a float in (0, 1), or None for start_sigma)",
    )
    levels: list[float | None] = []
    for k, level in enumerate(stage_entries):
        if level is None:
            levels.append(None)
            continue
        if (
            isinstance(level, bool)
            or not isinstance(level, (int, float))
            or not math.isfinite(level)
            or not 0 < level < 1
        ):
            # 1 would be pure noise: the stage would throw away every stage before it.
            raise LSSArgumentError(
                "stage_entries",
                f"stage_entries[{k}]={level!r} must be a float in (0, 1) (the flow level stage "
                f"{k + 1} enters at) or None for start_sigma (stage_entries={stage_entries!r})",
            )
        levels.append(float(level))
    return tuple(levels)


def check_final_steps(final_steps: object) -> int | None:
    if final_steps is None:
        return None
    return check_positive_int(final_steps, "final_steps")


def min_size_for_stages(height: int, width: int, stages: int) -> int:
    """The ``min_size`` that gives ``stages`` stages at ``height`` x ``width``."""
    smallest = min(height, width)
    if smallest < 2 ** (stages - 1):
        raise LSSArgumentError(
            "stage_steps",
            f"{stages} stages need min(height, width) >= {2 ** (stages - 1)}, got {smallest}; "
            "pass fewer stage_steps / stage_entries",
        )
    return smallest // 2 ** (stages - 1)


def check_one_stage_steps(stage_steps: tuple[int, ...] | None, num_steps: int) -> None:
    """One stage is plain generation: its step count is ``num_steps``."""
    if stage_steps is not None and len(stage_steps) == 1 and stage_steps[0] != num_steps:
        raise LSSArgumentError(
            "stage_steps",
            f"stage_steps={stage_steps} is one stage, which is plain generation with num_steps="
            f"{num_steps} (num_inference_steps in the pipelines); pass stage_steps=({num_steps},) "
            "or that step count as num_steps",
        )


def schedule_for_steps(
    steps: int,
    schedule_of: Callable[[int], tuple[float, ...]],
    entry_of: Callable[[Sequence[float]], int],
    is_pure_noise: Callable[[float], bool],
) -> tuple[int, tuple[float, ...], int]:
    """Schedule length, levels and entry index for a later stage that runs exactly ``steps``.

    ``schedule_of(length)`` gives a schedule's levels, ``entry_of(levels)`` the entry rule's
    index in it. The chosen length is the longest (up to :data:`MAX_SCHEDULE_STEPS`) whose rule
    entry leaves at most ``steps`` steps, so that entering ``steps`` from the end is at or above the
    asked level; a pure-noise entry is never chosen. Lengths are searched by doubling and then
    bisection (a few schedules, not hundreds); the result holds whatever the search finds.
    """
    cache: dict[int, tuple[float, ...]] = {}

    def levels(length: int) -> tuple[float, ...]:
        if length not in cache:
            cache[length] = schedule_of(length)
        return cache[length]

    def fits(length: int) -> bool:
        return length - entry_of(levels(length)) <= steps

    cap = max(MAX_SCHEDULE_STEPS, steps + 1)
    good = steps  # entering at index 0 of a `steps` schedule always leaves `steps` steps
    bad: int | None = None
    probe = steps + 1
    while probe <= cap:
        if not fits(probe):
            bad = probe
            break
        good = probe
        if probe == cap:
            break
        probe = min(2 * probe, cap)
    if bad is not None:
        while bad - good > 1:
            middle = (good + bad) // 2
            if fits(middle):
                good = middle
            else:
                bad = middle
    start = good - steps
    if start == 0 and is_pure_noise(levels(good)[0]):
        good, start = steps + 1, 1
    return good, levels(good), start
