"""Plans for the planning, cost, stage-loop and video tests: hypothesis strategies of
``plan_stages``' arguments, and one fixed three-stage plan.

At the root of tests/ (the folder of its conftest.py, which pytest puts on ``sys.path``), so the
core and the video tests import it alike.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from lssgen_core.plan import StagePlan, count_extra_stages, plan_stages
from lssgen_core.schedules import flux_schedule

SHIFTS = ("none", "static", "exponential", "linear")


@st.composite
def stage_geometry(
    draw: Any, max_extra_stages: int, max_multiple: int, vae_factors: tuple[int, ...] = (8, 16)
) -> dict[str, int]:
    """A latent geometry (VAE factor, patch size) and a size that splits into up to
    ``1 + max_extra_stages`` stages: each side a multiple (up to ``max_multiple``) of what the
    smallest stage needs."""
    vae = draw(st.sampled_from(vae_factors))
    patch = draw(st.sampled_from([1, 2]))
    multiple = vae * patch * 2 ** draw(st.integers(0, max_extra_stages))
    return dict(
        height=multiple * draw(st.integers(1, max_multiple)),
        width=multiple * draw(st.integers(1, max_multiple)),
        vae_scale_factor=vae,
        patch_size=patch,
    )


def fits(args: dict) -> bool:
    """Whether the drawn size is a multiple of what its stage count needs."""
    extra = count_extra_stages(args["height"], args["width"], args["min_size"], args["start_sigma"])
    need = args["vae_scale_factor"] * args["patch_size"] * 2**extra
    return args["height"] % need == 0 and args["width"] % need == 0


@st.composite
def plan_arguments(
    draw: Any,
    geometry: st.SearchStrategy[dict[str, int]],
    *,
    max_steps: int,
    min_start_sigma: float,
    **more: st.SearchStrategy[Any],
) -> dict[str, Any]:
    """``plan_stages``' arguments at a drawn ``geometry`` (:func:`stage_geometry`), of a size
    that fits the stage count they give; each of ``more`` is drawn as the argument it names."""
    size = draw(geometry)
    args = dict(
        **size,
        num_steps=draw(st.integers(1, max_steps)),
        min_size=draw(st.integers(1, min(size["height"], size["width"]))),
        start_sigma=draw(st.floats(min_start_sigma, 1.0)),
        shorten_steps=draw(st.booleans()),
        **{name: draw(strategy) for name, strategy in more.items()},
    )
    assume(fits(args))
    return args


# What paper_arguments draws, unless its caller gives another strategy for it.
PAPER_DRAWS = {
    "extra": st.integers(0, 2),  # stages before the target one
    "patch": st.just(2),
    "multiple": st.integers(1, 4),  # the side in units of its smallest stage's base * patch
    "num_steps": st.integers(1, 60),
    "start_sigma": st.floats(0.05, 1.0),
}


@st.composite
def paper_arguments(draw: Any, base: int = 32, **draws: st.SearchStrategy[Any]) -> dict[str, Any]:
    """Arguments of a square FLUX-scheduled paper plan (no explicit inputs) with ``1 + extra``
    stages: the side is ``base * patch * 2**extra * multiple``, ``min_size`` its smallest stage.
    ``draws`` replace strategies of :data:`PAPER_DRAWS`."""
    unknown = set(draws) - set(PAPER_DRAWS)
    assert not unknown, f"paper_arguments draws no {unknown}"
    drawn = {name: draw(strategy) for name, strategy in {**PAPER_DRAWS, **draws}.items()}
    extra, patch = drawn["extra"], drawn["patch"]
    size = base * patch * 2**extra * drawn["multiple"]
    return dict(
        height=size,
        width=size,
        num_steps=drawn["num_steps"],
        min_size=size // 2**extra,
        start_sigma=drawn["start_sigma"],
        shorten_steps=draw(st.booleans()),
        patch_size=patch,
        schedule=flux_schedule(),
    )


def paper_plans(**draws: st.SearchStrategy[Any]) -> st.SearchStrategy[StagePlan]:
    """The plans of :func:`paper_arguments` (``draws`` as there)."""
    return paper_arguments(**draws).map(lambda args: plan_stages(**args))


def three_stage_plan(start_sigma: float = 0.6, schedule: Any = None, **kwargs: Any) -> StagePlan:
    """256 px in three stages (64, 128 and 256 px) of an 8-step schedule, FLUX's unless given."""
    return plan_stages(
        256,
        256,
        num_steps=8,
        min_size=64,
        start_sigma=start_sigma,
        patch_size=2,
        schedule=schedule or flux_schedule(),
        **kwargs,
    )
