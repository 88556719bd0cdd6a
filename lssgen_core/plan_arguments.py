"""A plan's arguments, each checked once, before any schedule is built.

Two steps, so that a caller checks every argument at its earliest point and never again:

- :func:`check_plan_values`: the arguments that need no image size (``start_sigma``,
  ``shorten_steps``, ``entry_rule``, the explicit plan inputs and how they combine). The pipelines
  run it when they resolve their options, before binding the stock call.
- :func:`check_plan_arguments`: with the size and step count, the stage count they give
  (:func:`count_extra_stages`) and everything that depends on it.

:func:`~lssgen_core.plan.plan_stages` runs both, then plans from the result
(:func:`~lssgen_core.plan.plan_from_arguments`). Every error is an
:class:`~lssgen_core.errors.LSSArgumentError` naming the argument and its allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from lssgen_core.errors import LSSArgumentError, LSSArgumentTypeError
from lssgen_core.explicit_plan import (
    check_final_steps,
    check_one_stage_steps,
    check_stage_entries,
    check_stage_steps,
    is_explicit_plan,
    min_size_for_stages,
)
from lssgen_core.parameterization import check_start_sigma
from lssgen_core.validation import check_positive_int

ENTRY_RULES = ("sigma", "strength")
# The planner's min_size when none is given and the explicit inputs do not set the stage count.
DEFAULT_MIN_SIZE = 512


@attrs.frozen
class PlanValues:
    """The size-independent plan arguments, checked (tuples normalised, ``start_sigma`` a float)."""

    start_sigma: float
    shorten_steps: bool
    entry_rule: str
    stage_steps: tuple[int, ...] | None = None
    stage_entries: tuple[float | None, ...] | None = None
    final_steps: int | None = None

    @property
    def is_explicit(self) -> bool:
        return is_explicit_plan(self.stage_steps, self.stage_entries, self.final_steps)

    @property
    def asked_stages(self) -> int | None:
        """The number of stages the explicit inputs ask for (None: they do not say)."""
        if self.stage_steps is not None:
            return len(self.stage_steps)
        return None if self.stage_entries is None else len(self.stage_entries) + 1


@attrs.frozen
class PlanArguments:
    """Every argument of one plan, checked, with the number of stages they give."""

    height: int
    width: int
    num_steps: int
    min_size: int
    values: PlanValues
    extra_stages: int  # stages before the target one

    @property
    def is_single_stage(self) -> bool:
        return self.extra_stages == 0


def check_bool(value: object, argument: str) -> bool:
    # bool("no") is True: a string or number here is a mistake, not a flag.
    if not isinstance(value, bool):
        raise LSSArgumentTypeError(
            argument, f"{argument} must be a bool (True or False), got {value!r}"
        )
    return value


def check_entry_rule(entry_rule: object) -> str:
    if entry_rule not in ENTRY_RULES:
        raise LSSArgumentError(
            "entry_rule", f"entry_rule={entry_rule!r} must be one of {ENTRY_RULES}"
        )
    return str(entry_rule)


def check_plan_values(
    *,
    start_sigma: float = 0.75,
    shorten_steps: bool = False,
    entry_rule: str = "sigma",
    stage_steps: Sequence[int] | None = None,
    stage_entries: Sequence[float | None] | None = None,
    final_steps: int | None = None,
    shorten_argument: str = "shorten_steps",
) -> PlanValues:
    """Check the arguments that need no size; ``shorten_argument`` names ``shorten_steps`` as
    the caller calls it (``shorten_intermediate_steps`` in the pipelines)."""
    check_start_sigma(start_sigma)
    check_bool(shorten_steps, shorten_argument)
    values = PlanValues(
        start_sigma=float(start_sigma),
        shorten_steps=shorten_steps,
        entry_rule=check_entry_rule(entry_rule),
        stage_steps=check_stage_steps(stage_steps),
        stage_entries=check_stage_entries(stage_entries),
        final_steps=check_final_steps(final_steps),
    )
    check_explicit_combination(values, shorten_argument)
    return values


def check_explicit_combination(values: PlanValues, shorten_argument: str = "shorten_steps") -> None:
    """Refuse explicit inputs that contradict each other or the paper's arguments
    (``shorten_argument``: ``shorten_steps`` as the caller names it)."""
    steps, entries, final = values.stage_steps, values.stage_entries, values.final_steps
    if steps is not None and final is not None:
        raise LSSArgumentError(
            "final_steps",
            f"pass stage_steps or final_steps, not both: stage_steps={steps} already fixes "
            f"the target stage's steps (final_steps={final})",
        )
    if steps is not None and values.shorten_steps:
        raise LSSArgumentError(
            shorten_argument,
            f"stage_steps={steps} fixes every stage's steps, so {shorten_argument}=True "
            "has nothing to shorten; leave it unset or False",
        )
    if values.is_explicit and values.start_sigma >= 1:
        raise LSSArgumentError(
            "start_sigma",
            f"start_sigma={values.start_sigma} means one stage (plain generation), but "
            "stage_steps / stage_entries / final_steps plan several; pass start_sigma in (0, 1)",
        )
    if steps is not None and entries is not None and len(entries) != len(steps) - 1:
        raise LSSArgumentError(
            "stage_entries",
            f"stage_steps={steps} plans {len(steps)} stages but stage_entries={entries} gives "
            f"{len(entries)} later stages; stage_entries needs one entry per later stage "
            f"({len(steps) - 1})",
        )


def count_extra_stages(height: int, width: int, min_size: int, start_sigma: float) -> int:
    """How many stages come before the target one (the original's ``stage_count``)."""
    if start_sigma >= 1:
        return 0
    ratio = min(height, width) // min_size
    return math.floor(math.log2(ratio)) if ratio >= 1 else 0


def check_plan_arguments(
    height: int,
    width: int,
    values: PlanValues,
    *,
    num_steps: int,
    min_size: int | None = None,
    min_size_argument: str = "min_size",
    steps_argument: str = "num_steps",
) -> PlanArguments:
    """Check the size, step count and ``min_size`` against ``values``; the stage count they give.

    ``min_size`` defaults to :data:`DEFAULT_MIN_SIZE`, or, with ``stage_steps`` /
    ``stage_entries``, to the size that gives their number of stages (a ``min_size`` passed with
    them must give that number). ``min_size_argument`` and ``steps_argument`` name those
    arguments as the caller calls them (``min_resolution``, ``num_inference_steps``).
    """
    check_positive_int(height, "height")
    check_positive_int(width, "width")
    check_positive_int(num_steps, steps_argument)
    check_one_stage_steps(values.stage_steps, num_steps)
    smallest = min(height, width)
    asked = values.asked_stages
    min_size_given = min_size is not None
    if min_size is None:
        min_size = DEFAULT_MIN_SIZE if asked is None else min_size_for_stages(height, width, asked)
    else:
        check_positive_int(min_size, min_size_argument)
    if min_size > smallest:
        raise LSSArgumentError(
            min_size_argument,
            f"{min_size_argument}={min_size} must be <= min(height, width) = {smallest}; "
            f"use {min_size_argument}={smallest} for a single stage",
        )
    extra = count_extra_stages(height, width, min_size, values.start_sigma)
    if asked is not None and extra + 1 != asked:
        raise LSSArgumentError(
            min_size_argument,
            f"{min_size_argument}={min_size} plans {extra + 1} stage(s) at {width}x{height}, but "
            f"stage_steps / stage_entries ask for {asked}; leave {min_size_argument} unset or "
            f"pass {min_size_argument}={min_size_for_stages(height, width, asked)}",
        )
    if values.final_steps is not None and extra == 0:
        raise LSSArgumentError(
            "final_steps",
            f"final_steps={values.final_steps} sets the steps of the last of several stages, but "
            f"{min_size_argument}={min_size} plans one stage at {width}x{height} (plain "
            f"generation, num_steps={num_steps}); pass {min_size_argument} <= {smallest // 2}"
            + ("" if min_size_given else f" ({min_size_argument} defaults to {DEFAULT_MIN_SIZE})"),
        )
    return PlanArguments(height, width, num_steps, min_size, values, extra)
