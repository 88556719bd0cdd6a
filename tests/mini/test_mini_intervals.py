"""The 95% intervals of `lssgen evaluate`: properties of Wilson's interval and the bootstraps."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lssgen.mini.intervals import (
    overall_interval,
    paired_difference_interval,
    wilson_interval,
)

counts = st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts)
def test_wilson_contains_the_estimate_and_stays_in_the_unit_interval(case):
    passed, total = case
    low, high = wilson_interval(passed, total)
    assert 0.0 <= low <= passed / total <= high <= 1.0
    assert high - low > 0


@given(counts)
def test_wilson_is_symmetric_under_swapping_passes_and_failures(case):
    passed, total = case
    low, high = wilson_interval(passed, total)
    mirror_low, mirror_high = wilson_interval(total - passed, total)
    assert math.isclose(low, 1 - mirror_high, abs_tol=1e-12)
    assert math.isclose(high, 1 - mirror_low, abs_tol=1e-12)


@given(st.integers(0, 20), st.integers(20, 200))
def test_wilson_narrows_with_more_trials_at_the_same_rate(passed, total):
    low, high = wilson_interval(passed, total)
    low4, high4 = wilson_interval(4 * passed, 4 * total)
    assert high4 - low4 < high - low


@given(counts)
def test_wilson_agrees_with_scipy(case):
    from scipy.stats import binomtest

    passed, total = case
    reference = binomtest(passed, total).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(passed, total)
    assert math.isclose(low, reference.low, abs_tol=1e-9)
    assert math.isclose(high, reference.high, abs_tol=1e-9)


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError, match="passed <= total"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match="total >= 1"):
        wilson_interval(0, 0)


@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=30), min_size=1, max_size=6))
def test_the_overall_interval_brackets_the_overall_score(categories):
    passed = {f"c{i}": values for i, values in enumerate(categories)}
    overall = sum(sum(v) / len(v) for v in categories) / len(categories)
    low, high = overall_interval(passed, samples=400)
    assert 0.0 <= low <= high <= 1.0
    # The bootstrap's percentiles sit around the estimate; a one-sided miss would be a bug.
    assert low <= overall + 1e-9 or high >= overall - 1e-9


def test_a_constant_category_has_no_spread():
    assert overall_interval({"a": [True] * 10, "b": [False] * 10}) == (0.5, 0.5)


@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_a_configuration_paired_with_itself_differs_by_exactly_zero(values):
    assert paired_difference_interval({"a": values}, {"a": values}, samples=200) == (0.0, 0.0)


def test_pairing_is_tighter_than_the_separate_intervals():
    plain = [i % 2 == 0 for i in range(40)]
    lss = [*plain[:-2], True, True]  # the same prompts pass, and two more
    low, high = paired_difference_interval({"a": lss}, {"a": plain})
    plain_low, plain_high = overall_interval({"a": plain})
    assert 0.0 <= low <= 0.05 <= high
    assert high - low < (plain_high - plain_low) / 2


def test_paired_outcomes_must_have_equal_lengths():
    with pytest.raises(ValueError, match="category 'a': 2 outcomes against 3"):
        paired_difference_interval({"a": [True, False]}, {"a": [True, True, False]})
