"""``start_sigma="auto"``: the entry level from a scaler's measured error (lssgen_core.auto_entry).

The rule: enter at the lowest level whose injected noise covers the error with the margin,
``s / (1 - s) = k * sqrt(e * v)`` (VE sigma), for every parameterisation at that SNR.
"""

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lssgen_core.auto_entry import (
    DEFAULT_MARGIN,
    auto_entry_level,
    auto_start_sigma,
    covered_relative_error,
    describe_auto_entry,
    entry_ve_sigma,
    is_auto,
)
from lssgen_core.parameterization import FLOW, VE, VP, convert_sigma
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import flux_schedule
from lssgen_core.upsample.calibration import ScalerCalibration

errors = st.floats(0.0, 100.0, allow_nan=False)
positive_errors = st.floats(1e-8, 100.0, allow_nan=False)
variances = st.floats(1e-3, 100.0, allow_nan=False)
margins = st.floats(0.1, 10.0, allow_nan=False)


def calibration(error: float, variance: float = 1.0) -> ScalerCalibration:
    return ScalerCalibration(
        relative_error=error, latent_variance=variance, num_crops=8, crop_size=64, source="held"
    )


@given(errors, variances, margins)
@example(error=5e-324, variance=0.5, margin=1.0)  # e * v underflowed to 0 (now fixed)
def test_the_level_is_a_flow_level_below_pure_noise(error, variance, margin) -> None:
    level = auto_entry_level(error, latent_variance=variance, margin=margin)
    assert 0.0 <= level < 1.0
    assert (level == 0.0) == (error == 0.0)


@given(positive_errors, positive_errors, variances, margins)
def test_a_larger_error_enters_higher(a, b, variance, margin) -> None:
    low, high = sorted((a, b))
    assert auto_entry_level(low, latent_variance=variance, margin=margin) <= auto_entry_level(
        high, latent_variance=variance, margin=margin
    )
    if high > low * (1 + 1e-9):
        assert (
            auto_entry_level(low, latent_variance=variance, margin=margin)
            < auto_entry_level(high, latent_variance=variance, margin=margin)
            or auto_entry_level(high, latent_variance=variance, margin=margin) > 1 - 1e-12
        )


@given(positive_errors, variances, margins, margins)
def test_a_larger_margin_enters_higher(error, variance, m1, m2) -> None:
    low, high = sorted((m1, m2))
    assert auto_entry_level(error, latent_variance=variance, margin=low) <= auto_entry_level(
        error, latent_variance=variance, margin=high
    )


@given(st.floats(1e-12, 1e-6))
def test_an_error_free_scaler_is_the_limit_at_zero(error) -> None:
    # s ~ k sqrt(e) as e -> 0: a perfect scaler would need no re-noising at all.
    level = auto_entry_level(error)
    assert level == pytest.approx(DEFAULT_MARGIN * math.sqrt(error), rel=1e-2)
    assert auto_entry_level(0.0) == 0.0


@given(positive_errors, variances, margins)
def test_the_level_is_the_lowest_that_covers_the_error(error, variance, margin) -> None:
    level = auto_entry_level(error, latent_variance=variance, margin=margin)
    if level > 1 - 1e-9:
        return  # errors this large leave no representable level below
    # At the level the noise's VE sigma is exactly margin x the error's standard deviation ...
    assert level / (1 - level) == pytest.approx(
        margin * math.sqrt(error * variance), rel=1e-9, abs=1e-12
    )
    # ... which is the inverse of the error a level covers: any lower level covers less.
    assert covered_relative_error(level, latent_variance=variance, margin=margin) == (
        pytest.approx(error, rel=1e-6)
    )
    lower = level * (1 - 1e-3)
    assert covered_relative_error(lower, latent_variance=variance, margin=margin) < error


@given(positive_errors, variances, margins)
# CI found this one: VP's conversion cancelled digits at this small level (now fixed).
@example(error=5.960464477539063e-08, variance=0.1, margin=0.109375)
def test_vp_and_ve_enter_at_the_same_signal_to_noise_ratio(error, variance, margin) -> None:
    level = auto_entry_level(error, latent_variance=variance, margin=margin)
    sigma_ve = entry_ve_sigma(error, latent_variance=variance, margin=margin)
    if level > 1 - 1e-9 or sigma_ve < 1e-6:
        return
    expected_snr = 1 / (margin**2 * error * variance)
    for parameterization in (FLOW, VP, VE):
        sigma = convert_sigma(level, FLOW, parameterization)
        assert parameterization.snr(sigma) == pytest.approx(expected_snr, rel=1e-6)
    assert convert_sigma(level, FLOW, VE) == pytest.approx(sigma_ve, rel=1e-9)


@given(st.floats(1e-4, 0.5), st.integers(4, 60))
def test_a_plan_at_the_auto_level_enters_no_lower(error, steps) -> None:
    level = auto_entry_level(error)
    plan = plan_stages(
        1024,
        1024,
        num_steps=steps,
        min_size=512,
        start_sigma=level,
        patch_size=2,
        schedule=flux_schedule(),
    )
    for stage in plan.stages[1:]:
        # The entry rule takes the last level >= start_sigma, so the noise still covers the error.
        assert stage.entry_level >= level - 1e-9


@pytest.mark.parametrize(
    ("argument", "kwargs"),
    [
        ("relative_error", {"relative_error": -0.1}),
        ("relative_error", {"relative_error": math.nan}),
        ("relative_error", {"relative_error": math.inf}),
        ("latent_variance", {"relative_error": 0.1, "latent_variance": 0.0}),
        ("margin", {"relative_error": 0.1, "margin": -1.0}),
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(argument, kwargs) -> None:
    with pytest.raises(ValueError, match=argument):
        auto_entry_level(**kwargs)


def test_auto_without_a_calibration_is_refused_naming_start_sigma_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"start_sigma='auto'.*'pixel'.*eval-upsampler"):
        auto_start_sigma(None, scaling_mode="pixel")


def test_auto_uses_the_calibration_in_the_latents_units() -> None:
    # e = 0.04 of a variance of 1: sigma_ve = 2 * 0.2 = 0.4, s = 0.4 / 1.4.
    # Rounded up to 4 decimals: 0.2857142... -> 0.2858.
    assert auto_start_sigma(calibration(0.04), scaling_mode="resnet") == 0.2858
    # The same relative error of a latent with 4x the variance is twice the error's spread.
    assert auto_start_sigma(calibration(0.04, 4.0), scaling_mode="resnet") == 0.4445  # 0.8 / 1.8
    note = describe_auto_entry(calibration(0.04), scaling_mode="resnet")
    assert "resnet" in note and "0.04" in note and "8 crops of 64 px from held" in note


def test_only_the_string_auto_asks_for_it() -> None:
    assert is_auto("auto")
    assert not is_auto("Auto") and not is_auto(0.5) and not is_auto(None)
