"""The LSS call arguments every pipeline adds, their per-pipeline defaults and their validation.

Defaults follow the original implementation. ``None`` for any argument means "this pipeline's
default". A default ``min_size`` larger than the image gives one stage (SDXL at 1024 runs as the
stock pipeline); a ``min_size`` the caller sets larger than the image is an error.

Each family's defaults are in the registry (:mod:`lssgen_diffusers.registry`, which the README's
table is made from); at SDXL's default ``min_size=1024`` LSS acts from 2048 px, elsewhere from
twice the ``min_size``.

Common defaults: ``start_sigma=0.75``, ``scaling_mode="resnet"``, ``entry_rule="sigma"``.

``entry_rule="sigma"`` (default everywhere) enters a later stage at the last scheduled level whose
signal-to-noise ratio is still at least that of flow level ``start_sigma``; one value of
``start_sigma`` then destroys the same amount of signal on every model family, scheduler and step
count. ``entry_rule="strength"`` is the img2img rule ``start = N - int(N * start_sigma)`` that the
original used for SD and SDXL; pass it to reproduce those runs.

Explicit plans (``stage_steps``, ``stage_entries``, ``final_steps``; all ``None`` by default, which
plans as the paper) go to :func:`~lssgen_core.plan.plan_stages` unchanged, where
:mod:`lssgen_core.explicit_plan` explains them. Two pipeline rules: an explicit stage count with
``min_size`` left unset sets ``min_size`` (SDXL's default 1024 does not turn ``stage_steps=(12, 6)``
into one stage), and FLUX's default ``shorten_intermediate_steps=True`` gives way to
``stage_steps`` (set to True by the caller, it is refused with them).
"""

from __future__ import annotations

import attrs

from lssgen_core.errors import LSSArgumentError
from lssgen_core.plan_arguments import PlanValues, check_plan_values
from lssgen_core.upsample import SCALING_MODES
from lssgen_diffusers.registry import LSSDefaults, family_of

DEFAULT_START_SIGMA = 0.75
DEFAULT_SCALING_MODE = "resnet"
DEFAULT_ENTRY_RULE = "sigma"


# The LSS call arguments every pipeline adds, in the order its signature shows them, with their
# annotations: the one list the generated signature, ``__call__`` and ``lss_plan_for`` read.
LSS_ARGUMENTS: dict[str, object] = {
    "start_sigma": float | str,
    "min_size": int,
    "min_resolution": int | None,
    "shorten_intermediate_steps": bool,
    "scaling_mode": str,
    "entry_rule": str,
    "stage_steps": tuple[int, ...] | None,
    "stage_entries": tuple[float | None, ...] | None,
    "final_steps": int | None,
}


def shown_defaults(defaults: LSSDefaults) -> dict[str, object]:
    """The value each of :data:`LSS_ARGUMENTS` takes when unset, as a signature shows it."""
    return {
        "start_sigma": DEFAULT_START_SIGMA,
        "min_size": defaults.min_size,
        "min_resolution": None,
        "shorten_intermediate_steps": defaults.shorten_intermediate_steps,
        "scaling_mode": DEFAULT_SCALING_MODE,
        "entry_rule": DEFAULT_ENTRY_RULE,
        "stage_steps": None,
        "stage_entries": None,
        "final_steps": None,
    }


# The paper's five families' defaults under their own names (the registry's lines).
FLUX_DEFAULTS = family_of("flux").defaults
SD3_DEFAULTS = family_of("sd3").defaults
SDXL_DEFAULTS = family_of("sdxl").defaults
SD_DEFAULTS = family_of("sd").defaults
COGVIEW4_DEFAULTS = family_of("cogview4").defaults


@attrs.frozen
class LSSOptions:
    """The LSS arguments of one call, resolved against the pipeline's defaults and checked."""

    values: PlanValues  # the size-independent plan arguments, checked by the core
    min_size: int
    min_size_argument: str | None  # the argument the user set min_size with; None if defaulted
    scaling_mode: str

    def min_size_for(self, height: int, width: int) -> int | None:
        """The min_size to plan with (None: the one the explicit stage count gives).

        A default larger than the image (SDXL's 1024 for a 768 image) means "no extra stage"; a
        min_size the user chose is planned as given (the planner refuses one larger than the
        image, naming the argument it was set with).
        """
        if self.min_size_argument is not None:
            return self.min_size
        if self.values.asked_stages is not None:
            return None
        return min(self.min_size, height, width)


def resolve_options(
    defaults: LSSDefaults,
    *,
    start_sigma: float | None,
    min_size: int | None,
    min_resolution: int | None,
    shorten_intermediate_steps: bool | None,
    scaling_mode: str | None,
    entry_rule: str | None,
    stage_steps: tuple[int, ...] | None = None,
    stage_entries: tuple[float | None, ...] | None = None,
    final_steps: int | None = None,
) -> LSSOptions:
    """Fill in defaults and reject bad values, naming the argument; no model work happens here.

    The plan arguments are checked by the core (:func:`~lssgen_core.plan_arguments.
    check_plan_values`), once; ``min_size`` with the image size, when the call is planned.
    """
    if min_size is not None and min_resolution is not None:
        raise LSSArgumentError(
            "min_resolution",
            f"pass min_size or its alias min_resolution, not both (got min_size={min_size}, "
            f"min_resolution={min_resolution})",
        )
    argument = "min_size" if min_size is not None else "min_resolution"
    chosen = min_size if min_size is not None else min_resolution
    scaling_mode = DEFAULT_SCALING_MODE if scaling_mode is None else scaling_mode
    if scaling_mode not in SCALING_MODES:
        raise LSSArgumentError(
            "scaling_mode", f"scaling_mode={scaling_mode!r} must be one of {SCALING_MODES}"
        )
    shorten = shorten_intermediate_steps
    if shorten is None:
        # FLUX's default True gives way to stage_steps (set to True by the caller, it is refused).
        shorten = defaults.shorten_intermediate_steps and stage_steps is None
    values = check_plan_values(
        start_sigma=DEFAULT_START_SIGMA if start_sigma is None else start_sigma,
        shorten_steps=shorten,
        entry_rule=DEFAULT_ENTRY_RULE if entry_rule is None else entry_rule,
        stage_steps=stage_steps,
        stage_entries=stage_entries,
        final_steps=final_steps,
        shorten_argument="shorten_intermediate_steps",
    )
    return LSSOptions(
        values=values,
        min_size=defaults.min_size if chosen is None else chosen,
        min_size_argument=None if chosen is None else argument,
        scaling_mode=scaling_mode,
    )
