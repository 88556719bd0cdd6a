"""Explicit plans in every pipeline: ``stage_steps``, ``stage_entries`` and ``final_steps`` run the
planned denoiser calls at each stage's size, one stage stays the stock pipeline, and bad values are
refused before any model runs."""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from itertools import groupby
from typing import Any

import pytest
import torch
from lss_testkit import KINDS, Pair, latent_call, recorded_inputs

from lssgen_core.parameterization import FLOW, convert_sigma
from lssgen_core.plan import PURE_NOISE_LEVEL

TARGET = 128
STEPS = 6


def arguments(pair: Pair, **overrides: Any) -> dict[str, Any]:
    return latent_call(TARGET, STEPS, **pair.call, **overrides)


@pytest.fixture(params=KINDS)
def pair(request: pytest.FixtureRequest, lss_pair: Any) -> Pair:
    return lss_pair(request.param)


def calls_per_step(pair: Pair) -> int:
    # CogView4 runs its conditional and unconditional passes as two denoiser calls.
    return pair.calls_per_step


def target_shape(pair: Pair) -> tuple[int, ...]:
    """The denoiser input's shape in a stock call at the target size."""
    with recorded_inputs(pair.denoiser) as calls:
        pair.stock(**arguments(pair, num_inference_steps=1))
    return calls[-1]["shape"]


def runs_by_shape(pair: Pair, **lss_arguments: Any) -> list[tuple[tuple[int, ...], int]]:
    """(input shape, consecutive denoiser calls) for one LSS call."""
    with recorded_inputs(pair.denoiser) as calls:
        pair.lss(**arguments(pair, **lss_arguments))
    return [(shape, len(list(group))) for shape, group in groupby(c["shape"] for c in calls)]


@pytest.mark.parametrize(
    "explicit",
    [
        {"stage_steps": (4, 2)},
        {"stage_steps": (3, 2, 1), "stage_entries": (0.5, 0.2)},
        {"stage_entries": (None, 0.3), "stage_steps": (2, 3, 2)},
        {"final_steps": 2, "min_size": 64},
        {"final_steps": 1, "min_size": 32, "stage_entries": (0.6, 0.1)},
    ],
    ids=["two-stage", "three-stage", "three-stage-start-sigma", "final-steps", "three-final"],
)
def test_explicit_plan_runs_the_planned_calls_at_each_stage_size(
    pair: Pair, explicit: dict[str, Any]
) -> None:
    runs = runs_by_shape(pair, **explicit)
    plan = pair.lss.lss_plan
    per_step = calls_per_step(pair)
    assert [count for _, count in runs] == [s.num_denoising_steps * per_step for s in plan.stages]
    if "stage_steps" in explicit:
        assert [s.num_denoising_steps for s in plan.stages] == list(explicit["stage_steps"])
        assert len(runs) == len(explicit["stage_steps"])
    else:
        assert plan.target.num_denoising_steps == explicit["final_steps"]
    assert runs[-1][0] == target_shape(pair)  # the last stage runs at the target size
    assert [s.height for s in plan.stages] == [TARGET // 2**k for k in range(len(runs) - 1, -1, -1)]
    for stage in plan.stages[1:]:  # never entering at pure noise
        assert convert_sigma(stage.entry_level, plan.parameterization, FLOW) < PURE_NOISE_LEVEL


def test_explicit_plan_matches_lss_plan_for(pair: Pair) -> None:
    explicit = {"stage_steps": (3, 2, 1), "stage_entries": (0.5, 0.2)}
    planned = pair.lss.lss_plan_for(
        height=TARGET, width=TARGET, num_inference_steps=STEPS, **pair.call, **explicit
    )
    pair.lss(**arguments(pair, **explicit))
    assert pair.lss.lss_plan == planned


def test_one_stage_explicit_plan_is_the_stock_pipeline_bit_for_bit(pair: Pair) -> None:
    got = pair.lss(**arguments(pair, stage_steps=(STEPS,))).images
    assert pair.lss.lss_plan.is_single_stage
    assert torch.equal(got, pair.stock(**arguments(pair)).images)


def test_signature_shows_the_explicit_plan_keywords(pair: Pair) -> None:
    parameters = inspect.signature(pair.lss.__call__).parameters
    for name in ("stage_steps", "stage_entries", "final_steps"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is None
        assert name in pair.lss.__call__.__doc__


def test_stage_steps_set_min_size_when_it_is_left_to_the_default(lss_pair: Any) -> None:
    # SDXL's default min_size (1024) would give one stage at 128 px; stage_steps asks for two.
    pair = lss_pair("sdxl")
    pair.lss(**arguments(pair, stage_steps=(3, 2)))
    assert [s.height for s in pair.lss.lss_plan.stages] == [64, 128]
    # FLUX's default shorten_intermediate_steps=True gives way to explicit step counts.
    flux = lss_pair("flux")
    flux.lss(**arguments(flux, stage_steps=(5, 2)))
    assert [s.num_denoising_steps for s in flux.lss.lss_plan.stages] == [5, 2]
    assert not flux.lss.lss_plan.shorten_steps


BAD_EXPLICIT: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("zero-steps", {"stage_steps": (3, 0)}, ValueError, r"stage_steps\[1\]=0 must be an integer"),
    ("not-a-tuple", {"stage_steps": 5}, TypeError, r"stage_steps must be a tuple"),
    ("entry=1", {"stage_entries": (1.0,)}, ValueError, r"stage_entries\[0\]=1.0 must be a float"),
    ("entry-nan", {"stage_entries": (float("nan"),)}, ValueError, r"stage_entries\[0\]=nan"),
    ("final=0", {"final_steps": 0}, ValueError, r"final_steps=0 must be an integer >= 1"),
    (
        "steps+final",
        {"stage_steps": (3, 2), "final_steps": 2},
        ValueError,
        r"pass stage_steps or final_steps, not both",
    ),
    (
        "steps+shorten",
        {"stage_steps": (3, 2), "shorten_intermediate_steps": True},
        ValueError,
        r"stage_steps=\(3, 2\) fixes every stage's steps, so shorten_intermediate_steps=True",
    ),
    (
        "lengths",
        {"stage_steps": (3, 2), "stage_entries": (0.5, 0.2)},
        ValueError,
        r"stage_entries needs one entry per later stage \(1\)",
    ),
    (
        "min_size",
        {"stage_steps": (3, 2, 1), "min_size": 64},
        ValueError,
        r"min_size=64 plans 2 stage\(s\).*ask for 3; .*min_size=32",
    ),
    (
        "one-stage-steps",
        {"stage_steps": (4,)},
        ValueError,
        r"stage_steps=\(4,\) is one stage.*num_steps=6",
    ),
    (
        "start_sigma=1",
        {"stage_steps": (3, 2), "start_sigma": 1.0},
        ValueError,
        r"start_sigma=1.0 means one stage",
    ),
    (
        "final-one-stage",
        {"final_steps": 2, "min_size": 128},
        ValueError,
        r"final_steps=2 sets the steps of the last of several stages.*min_size <= 64",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "error", "pattern"),
    [c[1:] for c in BAD_EXPLICIT],
    ids=[c[0] for c in BAD_EXPLICIT],
)
def test_bad_explicit_plan_is_refused_before_any_model_runs(
    pair: Pair, overrides: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    with ExitStack() as stack:
        calls = [
            stack.enter_context(recorded_inputs(module))
            for module in [pair.denoiser, *pair.text_encoders]
        ]
        with pytest.raises(error, match=pattern):
            pair.lss(**arguments(pair, **overrides))
        with pytest.raises(error, match=pattern):
            pair.lss.lss_plan_for(
                height=TARGET, width=TARGET, num_inference_steps=STEPS, **pair.call, **overrides
            )
    assert all(recorded == [] for recorded in calls)
