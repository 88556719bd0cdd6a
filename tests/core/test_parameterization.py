import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lssgen_core.parameterization import (
    FLOW,
    PARAMETERIZATIONS,
    VE,
    VP,
    convert_latent,
    convert_sigma,
)

unit = st.floats(min_value=1e-4, max_value=1 - 1e-4)
params = st.sampled_from([FLOW, VP, VE])


def sigma_for(param, unit_value):
    """A level inside ``param``'s range built from a number in (0, 1)."""
    return VE.from_ve(FLOW.to_ve(unit_value)) if param is VE else unit_value


@given(unit, params, params)
def test_sigma_conversion_round_trips_through_snr(u, source, target):
    sigma = sigma_for(source, u)
    there = convert_sigma(sigma, source, target)
    assert convert_sigma(there, target, source) == pytest.approx(sigma, rel=1e-6)
    assert target.snr(there) == pytest.approx(source.snr(sigma), rel=1e-6)


@given(unit, unit, params)
def test_snr_decreases_with_sigma(u1, u2, param):
    low, high = sorted((sigma_for(param, u1), sigma_for(param, u2)))
    if high - low > 1e-6:
        assert param.snr(high) < param.snr(low)


@given(unit, params)
def test_from_ve_inverts_to_ve(u, param):
    sigma = sigma_for(param, u)
    assert param.from_ve(param.to_ve(sigma)) == pytest.approx(sigma, rel=1e-9)


def test_known_points():
    assert FLOW.to_ve(0.5) == pytest.approx(1.0)
    assert convert_sigma(0.5, FLOW, VP) == pytest.approx(1 / math.sqrt(2))
    assert FLOW.to_ve(1.0) == math.inf and FLOW.from_ve(math.inf) == 1.0
    assert VP.from_ve(math.inf) == 1.0 and VP.from_ve(0.0) == 0.0
    assert VP.sigma_from_alpha_cumprod(0.36) == pytest.approx(0.8)


def test_conversions_accept_tensors():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    ve = FLOW.to_ve(s)
    assert torch.isinf(ve[-1]) and ve[2] == 1.0
    assert torch.allclose(FLOW.from_ve(ve), s)


@given(unit, params, params, st.integers(0, 2**31 - 1))
def test_convert_latent_lands_on_the_same_point(u, source, target, seed):
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 3, generator=g, dtype=torch.float64).unbind(0)
    sigma = sigma_for(source, u)
    noisy = source.add_noise(x0, eps, sigma)
    converted = convert_latent(noisy, sigma, source, target)
    expected = target.add_noise(x0, eps, convert_sigma(sigma, source, target))
    assert torch.allclose(converted, expected, rtol=1e-6, atol=1e-9)


def renoised(up, eps, s, param):
    """The re-noising of a stage entry: ``param``'s add_noise at the level of flow level ``s``."""
    return param.add_noise(up, eps, convert_sigma(s, FLOW, param))


@given(params, st.integers(0, 2**31 - 1))
def test_renoise_at_zero_returns_the_input(param, seed):
    g = torch.Generator().manual_seed(seed)
    up, eps = torch.randn(2, 4, 5, generator=g).unbind(0)
    assert torch.equal(renoised(up, eps, 0.0, param), up)


@pytest.mark.parametrize("param", [FLOW, VP])
def test_renoise_at_one_is_pure_noise(param):
    up, eps = torch.randn(2, 4, 5).unbind(0)
    assert torch.equal(renoised(up, eps, 1.0, param), eps)


@given(unit, st.integers(0, 2**31 - 1))
def test_renoise_is_the_papers_formula_for_flow(s, seed):
    g = torch.Generator().manual_seed(seed)
    up, eps = torch.randn(2, 6, generator=g, dtype=torch.float64).unbind(0)
    assert torch.allclose(renoised(up, eps, s, FLOW), (1 - s) * up + s * eps)


@given(unit, st.integers(0, 2**31 - 1))
def test_vp_and_ve_renoise_match_flow_snr(s, seed):
    g = torch.Generator().manual_seed(seed)
    up, eps = torch.randn(2, 6, generator=g, dtype=torch.float64).unbind(0)
    flow = renoised(up, eps, s, FLOW)
    for param in (VP, VE):
        other = renoised(up, eps, s, param)
        # Same point up to the signal scale: x_flow / (1 - s) == x_other / a_other.
        a, _ = param.coefficients(convert_sigma(s, FLOW, param))
        assert torch.allclose(flow / (1 - s), other / a, rtol=1e-6, atol=1e-9)


def test_add_noise_rejects_out_of_range_sigma():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=r"sigma=1.5 is outside the flow range \[0, 1.0\]"):
        FLOW.add_noise(x, x, 1.5)


def test_registry_names():
    assert set(PARAMETERIZATIONS) == {"flow", "vp", "ve"}


low_noise = st.floats(min_value=1e-12, max_value=1e-3)


@given(low_noise, params, params)
def test_conversion_keeps_its_precision_near_the_clean_end(u, source, target):
    # At low noise, ``1 - 1 / (1 + v)`` cancels and loses digits; entry levels from a small
    # calibrated error live there, so the conversion must stay exact to float64 rounding.
    sigma = sigma_for(source, u)
    there = convert_sigma(sigma, source, target)
    assert target.snr(there) == pytest.approx(source.snr(sigma), rel=1e-12)
    assert convert_sigma(there, target, source) == pytest.approx(sigma, rel=1e-12)
