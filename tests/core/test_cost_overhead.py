"""Invariants of the cost model's per-call overhead term (CalibratedCost, calibrate)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_testkit import paper_plans

from lssgen_core.cost import CalibratedCost, TransformerCost, UNetCost, calibrate, plan_cost

models = st.one_of(
    st.builds(
        TransformerCost,
        width=st.integers(32, 4096),
        depth=st.integers(1, 60),
        text_tokens=st.integers(0, 512),
    ),
    st.builds(UNetCost, conv_flops_per_pixel=st.floats(1e3, 1e9)),
)
rates = st.floats(1e9, 1e15)
overheads = st.floats(0.0, 1.0)


def _speedup(plan, model, overhead_seconds, rate=1e12):
    return plan_cost(plan, CalibratedCost(model, rate, overhead_seconds)).speedup


@given(models, rates, overheads, st.lists(st.integers(16, 16384), min_size=2, unique=True))
def test_calibrate_recovers_the_rate_and_overhead_it_was_measured_with(
    model, rate, overhead, token_counts
):
    truth = CalibratedCost(model, rate, overhead)
    timed = {n: truth.seconds(n) for n in token_counts}
    flops = [model.flops(n) for n in token_counts]
    if max(flops) <= min(flops) * (1 + 1e-6):
        return  # token counts the model cannot tell apart carry no rate information
    fitted = calibrate(model, timed)
    assert fitted.flops_per_second == pytest.approx(rate, rel=1e-6)
    assert fitted.overhead_seconds == pytest.approx(
        overhead, rel=1e-6, abs=1e-9 * max(timed.values())
    )


@given(paper_plans(extra=st.integers(1, 2), start_sigma=st.floats(0.05, 0.99)), models, rates)
def test_no_overhead_predicts_what_the_flop_model_predicts(plan, model, rate):
    calibrated = CalibratedCost(model, rate, 0.0)
    assert plan_cost(plan, calibrated).speedup == pytest.approx(plan_cost(plan, model).speedup)


@given(
    paper_plans(extra=st.integers(1, 2), start_sigma=st.floats(0.05, 0.99)),
    models,
    st.floats(1e-6, 1e3),
    st.floats(1e-6, 1e3),
)
def test_overhead_moves_the_speedup_monotonically_towards_the_call_count_ratio(
    plan, model, overhead_a, overhead_b
):
    low, high = sorted((overhead_a, overhead_b))
    calls = plan.num_steps / plan.num_denoising_steps
    flop_only = plan_cost(plan, model).speedup
    with_low, with_high = _speedup(plan, model, low), _speedup(plan, model, high)
    for value in (with_low, with_high):
        assert min(flop_only, calls) * (1 - 1e-9) <= value <= max(flop_only, calls) * (1 + 1e-9)
    assert abs(with_high - calls) <= abs(with_low - calls) * (1 + 1e-9) + 1e-12


@given(models, rates, overheads, st.integers(1, 8192))
def test_seconds_are_overhead_plus_flops_over_rate(model, rate, overhead, tokens):
    cost = CalibratedCost(model, rate, overhead)
    assert cost.seconds(tokens) == pytest.approx(overhead + model.flops(tokens) / rate)
    assert cost.overhead_flops == pytest.approx(overhead * rate)


@given(models, st.integers(16, 4096))
def test_calibrate_rejects_a_single_token_count(model, tokens):
    with pytest.raises(ValueError, match=">= 2 token counts"):
        calibrate(model, {tokens: 1.0})


@given(st.floats(-1e12, 0.0) | st.just(math.nan))
def test_a_rate_must_be_positive(rate):
    with pytest.raises(ValueError, match="flops_per_second"):
        CalibratedCost(UNetCost(conv_flops_per_pixel=1.0), rate)


@given(
    paper_plans(extra=st.integers(1, 2), start_sigma=st.floats(0.05, 0.99)),
    models,
    st.floats(0.0, 1e18),
    st.floats(0.0, 1e18),
)
def test_shared_work_moves_the_speedup_monotonically_towards_one(plan, model, shared_a, shared_b):
    low, high = sorted((shared_a, shared_b))
    alone = plan_cost(plan, model).speedup
    with_low = plan_cost(plan, model, shared_flops=low).speedup
    with_high = plan_cost(plan, model, shared_flops=high).speedup
    for value in (with_low, with_high):
        assert min(alone, 1.0) * (1 - 1e-9) <= value <= max(alone, 1.0) * (1 + 1e-9)
    assert abs(with_high - 1) <= abs(with_low - 1) * (1 + 1e-9) + 1e-12
    # Shared work never changes which of plain and LSS is faster (at most it makes them equal).
    assert not (alone > 1 > with_high) and not (alone < 1 < with_high)
