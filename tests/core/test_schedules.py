import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lssgen_core.parameterization import FLOW
from lssgen_core.schedules import (
    FlowSchedule,
    StageSize,
    cogview4_mu,
    exponential_sigmas,
    flow_sigmas,
    flux_mu,
    karras_sigmas,
    resolution_shift,
    shift_exponential,
    shift_linear,
    shift_static,
)

unit = st.floats(min_value=0.0, max_value=1.0)
steps = st.integers(min_value=1, max_value=200)
shift_types = st.sampled_from(["none", "static", "exponential", "linear"])
tokens = st.integers(min_value=1, max_value=16384)


def size_with(num_tokens):
    return StageSize(height=8, width=8, latent_height=1, latent_width=1, num_tokens=num_tokens)


def shifts(mu_or_shift):
    return [
        lambda s: shift_static(s, mu_or_shift),
        lambda s: shift_exponential(s, math.log(mu_or_shift)),
        lambda s: shift_linear(s, mu_or_shift),
    ]


@given(unit, unit, st.floats(min_value=0.1, max_value=10))
def test_shifts_are_monotone_maps_of_the_unit_interval(a, b, amount):
    lo, hi = sorted((a, b))
    for shift in shifts(amount):
        assert 0.0 <= shift(lo) <= shift(hi) <= 1.0 + 1e-12
        assert shift(0.0) == 0.0
        assert shift(1.0) == pytest.approx(1.0)


@given(unit)
def test_neutral_shifts_are_identity(s):
    for shift in shifts(1.0):
        assert shift(s) == pytest.approx(s, abs=1e-12)


def test_exponential_and_linear_shift_agree_at_log_mu():
    # Diffusers' "exponential" shift with mu is its "linear" shift with e^mu.
    assert shift_exponential(0.3, 1.15) == pytest.approx(shift_linear(0.3, math.exp(1.15)))


def test_mu_functions_match_the_models_configs():
    assert flux_mu(256) == pytest.approx(0.5)
    assert flux_mu(4096) == pytest.approx(1.15)
    assert flux_mu(1024) == pytest.approx(0.63)  # the worked example's 512x512 stage
    assert cogview4_mu(256) == pytest.approx(1.0)
    assert cogview4_mu(1024) == pytest.approx(1.75)


@given(steps, shift_types, tokens, st.floats(min_value=0.5, max_value=6))
def test_flow_schedules_are_monotone_and_in_range(n, shift_type, num_tokens, shift):
    sigmas = FlowSchedule(shift_type, shift=shift)(n, size_with(num_tokens))
    assert len(sigmas) == n + 1
    assert sigmas[0] == pytest.approx(1.0) and sigmas[-1] == 0.0
    assert all(0.0 <= s <= 1.0 + 1e-12 for s in sigmas)
    assert all(b < a for a, b in zip(sigmas, sigmas[1:]))


@given(steps)
def test_unshifted_flow_schedule_is_fluxs_linspace(n):
    sigmas = flow_sigmas(n)
    assert sigmas[n - 1] == pytest.approx(1 / n)
    gaps = [a - b for a, b in zip(sigmas[:-1], sigmas[1:-1])]
    assert all(g == pytest.approx(gaps[0] if gaps else 0) for g in gaps)


@given(steps, st.floats(0.01, 1.0), st.floats(1.5, 200.0))
def test_ve_schedules_span_their_range(n, sigma_min, span):
    sigma_max = sigma_min * span
    for sigmas in (
        karras_sigmas(n, sigma_min, sigma_max),
        exponential_sigmas(n, sigma_min, sigma_max),
    ):
        assert len(sigmas) == n + 1 and sigmas[-1] == 0.0
        assert sigmas[0] == pytest.approx(sigma_max)
        assert sigmas[n - 1] == pytest.approx(sigma_min if n > 1 else sigma_max)
        assert all(b < a for a, b in zip(sigmas, sigmas[1:]))


@given(st.floats(1e-3, 1 - 1e-3), st.floats(0.25, 64.0))
def test_resolution_shift_divides_snr_by_the_area_ratio(s, ratio):
    shifted = resolution_shift(s, ratio)
    assert FLOW.snr(shifted) == pytest.approx(FLOW.snr(s) / ratio, rel=1e-6)


def test_resolution_shift_raises_noise_for_larger_images():
    assert resolution_shift(0.75, 4.0) > 0.75
    assert resolution_shift(0.75, 1.0) == pytest.approx(0.75)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_step_counts_are_rejected(bad):
    with pytest.raises(ValueError, match="num_steps"):
        flow_sigmas(bad)
