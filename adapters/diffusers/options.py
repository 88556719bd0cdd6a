"""The LSS call arguments every pipeline adds, their per-pipeline defaults and their validation.

Defaults follow the original implementation. ``None`` for any argument means "this pipeline's
default". A default ``min_size`` larger than the image gives one stage (SDXL at 1024 runs as the
stock pipeline); a ``min_size`` the caller sets larger than the image is an error.

| pipeline                         | min_size | shorten_intermediate_steps | 2 stages from |
|----------------------------------|----------|----------------------------|---------------|
| ``LSSFluxPipeline``              | 512      | True                       | 1024 px       |
| ``LSSStableDiffusion3Pipeline``  | 512      | False                      | 1024 px       |
| ``LSSStableDiffusionXLPipeline`` | 1024     | False                      | 2048 px       |
| ``LSSStableDiffusionPipeline``   | 512      | False                      | 1024 px       |
| ``LSSCogView4Pipeline``          | 512      | False                      | 1024 px       |

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

from lssgen_core.explicit_plan import (
    check_final_steps,
    check_stage_entries,
    check_stage_steps,
    explicit_stage_count,
    is_explicit_plan,
)
from lssgen_core.parameterization import check_start_sigma
from lssgen_core.plan import ENTRY_RULES
from lssgen_core.upsample import SCALING_MODES

DEFAULT_START_SIGMA = 0.75
DEFAULT_SCALING_MODE = "resnet"
DEFAULT_ENTRY_RULE = "sigma"


@attrs.frozen
class LSSDefaults:
    """A model family's defaults in the original: the LSS arguments that differ between families,
    and the steps and guidance its batch script used (the pipelines' own call keeps the stock
    defaults for those; ``lssgen generate`` uses these)."""

    min_size: int
    shorten_intermediate_steps: bool
    num_inference_steps: int
    guidance_scale: float


FLUX_DEFAULTS = LSSDefaults(512, True, num_inference_steps=50, guidance_scale=3.5)
SD3_DEFAULTS = LSSDefaults(512, False, num_inference_steps=28, guidance_scale=7.0)
SDXL_DEFAULTS = LSSDefaults(1024, False, num_inference_steps=50, guidance_scale=5.0)
SD_DEFAULTS = LSSDefaults(512, False, num_inference_steps=50, guidance_scale=7.5)
COGVIEW4_DEFAULTS = LSSDefaults(512, False, num_inference_steps=50, guidance_scale=5.0)


@attrs.frozen
class LSSOptions:
    """The LSS arguments of one call, resolved against the pipeline's defaults and checked."""

    start_sigma: float
    min_size: int
    min_size_argument: str | None  # the argument the user set min_size with; None if defaulted
    shorten_steps: bool
    scaling_mode: str
    entry_rule: str
    stage_steps: tuple[int, ...] | None = None
    stage_entries: tuple[float | None, ...] | None = None
    final_steps: int | None = None

    @property
    def is_explicit(self) -> bool:
        return is_explicit_plan(self.stage_steps, self.stage_entries, self.final_steps)

    def min_size_for(self, height: int, width: int) -> int | None:
        """The min_size to plan with (None: the one the explicit stage count gives).

        A default larger than the image (SDXL's 1024 for a 768 image) means "no extra stage"; a
        min_size the user chose larger than the image is an error (raised here, before any work).
        """
        if self.min_size_argument is None and (
            explicit_stage_count(self.stage_steps, self.stage_entries) is not None
        ):
            return None
        smallest = min(height, width)
        if self.min_size <= smallest:
            return self.min_size
        if self.min_size_argument is None:
            return smallest
        raise ValueError(
            f"{self.min_size_argument}={self.min_size} must be <= min(height, width) = {smallest}; "
            f"use {self.min_size_argument}={smallest} for a single stage"
        )


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
    """Fill in defaults and reject bad values, naming the argument; no model work happens here."""
    if min_size is not None and min_resolution is not None:
        raise ValueError(
            f"pass min_size or its alias min_resolution, not both (got min_size={min_size}, "
            f"min_resolution={min_resolution})"
        )
    argument = "min_size" if min_size is not None else "min_resolution"
    chosen = min_size if min_size is not None else min_resolution
    if chosen is not None and (
        isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1
    ):
        raise ValueError(f"{argument}={chosen!r} must be an integer >= 1")
    start_sigma = DEFAULT_START_SIGMA if start_sigma is None else start_sigma
    check_start_sigma(start_sigma)
    scaling_mode = DEFAULT_SCALING_MODE if scaling_mode is None else scaling_mode
    if scaling_mode not in SCALING_MODES:
        raise ValueError(f"scaling_mode={scaling_mode!r} must be one of {SCALING_MODES}")
    entry_rule = DEFAULT_ENTRY_RULE if entry_rule is None else entry_rule
    if entry_rule not in ENTRY_RULES:
        raise ValueError(f"entry_rule={entry_rule!r} must be one of {ENTRY_RULES}")
    if shorten_intermediate_steps is not None and not isinstance(shorten_intermediate_steps, bool):
        # bool("no") is True: anything but a bool here is a mistake, not a flag.
        raise TypeError(
            "shorten_intermediate_steps must be a bool (True or False), got "
            f"{shorten_intermediate_steps!r}"
        )
    steps = check_stage_steps(stage_steps)
    entries = check_stage_entries(stage_entries)
    final = check_final_steps(final_steps)
    explicit_stage_count(steps, entries)  # their lengths agree
    if steps is not None and shorten_intermediate_steps:
        raise ValueError(
            f"stage_steps={steps} fixes every stage's steps, so shorten_intermediate_steps=True "
            "has nothing to shorten; leave it unset or False"
        )
    shorten = (
        defaults.shorten_intermediate_steps and steps is None
        if shorten_intermediate_steps is None
        else shorten_intermediate_steps
    )
    return LSSOptions(
        start_sigma=float(start_sigma),
        min_size=defaults.min_size if chosen is None else chosen,
        min_size_argument=None if chosen is None else argument,
        shorten_steps=shorten,
        scaling_mode=scaling_mode,
        entry_rule=entry_rule,
        stage_steps=steps,
        stage_entries=entries,
        final_steps=final,
    )
