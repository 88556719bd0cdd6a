"""The denoiser wrappers against k-diffusion's own and against the closed-form Gaussian denoiser."""

import math

import pytest
import torch
from kd_models import (
    GaussianEpsUNet,
    GaussianVelocity,
    GaussianVUNet,
    posterior_mean,
    sd_alphas_cumprod,
)
from kdiffusion_loader import load_k_diffusion

from lssgen_core.parameterization import FLOW
from lssgen_core.schedules import StageSize, flux_schedule, sd3_schedule
from lssgen_kdiffusion import (
    FLOW_T_MAX,
    DiscreteVPDenoiser,
    FlowDenoiser,
    flow_sigmas_to_ve,
)

AC = sd_alphas_cumprod()
SIGMAS = torch.tensor([0.0292, 0.05, 0.7, 1.0, 3.3, 14.6])


@pytest.fixture(scope="module")
def kd():
    return load_k_diffusion()


def latent(batch=6, seed=0):  # one per entry of SIGMAS
    return torch.randn(batch, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_the_eps_wrapper_equals_k_diffusions_discrete_eps_ddpm_denoiser(kd):
    unet = GaussianEpsUNet(AC)
    ours = DiscreteVPDenoiser(unet, AC)
    theirs = kd.external.DiscreteEpsDDPMDenoiser(unet, AC, quantize=False)
    x = latent() * 3
    assert torch.equal(ours(x, SIGMAS), theirs(x, SIGMAS))
    assert torch.equal(ours.sigmas, theirs.sigmas)
    assert torch.equal(ours.get_sigmas(7), theirs.get_sigmas(7))
    assert torch.equal(ours.get_sigmas(), theirs.get_sigmas())
    assert ours.sigma_min == theirs.sigma_min and ours.sigma_max == theirs.sigma_max
    # Out of range too: below sigma_min and above sigma_max clamp to the first/last timestep.
    probe = torch.tensor([0.001, 0.0292, 0.5, 2.0, 14.6, 100.0])
    assert torch.equal(ours.sigma_to_t(probe), theirs.sigma_to_t(probe))
    assert torch.equal(ours.sigma_to_t(probe, True), theirs.sigma_to_t(probe, True))
    t = torch.tensor([0.0, 3.5, 500.25, 999.0])
    assert torch.equal(ours.t_to_sigma(t), theirs.t_to_sigma(t))


def test_the_eps_wrapper_is_the_exact_denoiser_of_an_exact_eps_model():
    x = latent() * 3
    out = DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)(x, SIGMAS)
    assert torch.allclose(out, posterior_mean(x, SIGMAS), atol=2e-4)


def test_the_v_wrapper_equals_k_diffusions_discrete_v_ddpm_denoiser(kd):
    def v_unet(x_in, t):  # any smooth function of (input, timestep) will do
        return torch.sin(x_in) * (t / 1000).view(-1, 1, 1, 1) + 0.1

    ours = DiscreteVPDenoiser(v_unet, AC, prediction_type="v_prediction")
    theirs = kd.external.DiscreteVDDPMDenoiser(v_unet, AC, quantize=False)
    x = latent() * 3
    assert torch.equal(ours(x, SIGMAS), theirs(x, SIGMAS))


def test_a_v_prediction_is_converted_like_k_diffusions_continuous_v_denoiser(kd):
    # k-diffusion's VDenoiser and ours share the v -> x0 scalings; only the time input differs.
    x = latent() * 3
    out = kd.external.VDenoiser(GaussianVUNet())(x, SIGMAS)
    assert torch.allclose(out, posterior_mean(x, SIGMAS), atol=1e-5)


def test_quantize_feeds_integer_timesteps():
    seen = []

    def unet(x_in, t):
        seen.append(t)
        return torch.zeros_like(x_in)

    DiscreteVPDenoiser(unet, AC, quantize=True)(latent(), SIGMAS)
    assert torch.equal(seen[0], seen[0].round())


def test_an_unknown_prediction_type_is_refused():
    with pytest.raises(ValueError, match="prediction_type"):
        DiscreteVPDenoiser(GaussianEpsUNet(AC), AC, prediction_type="sample")


def test_the_flow_wrapper_shows_the_model_the_flow_latent_at_flow_time():
    seen = {}

    def velocity(x_t, t, **cond):
        seen.update(x_t=x_t, t=t, cond=cond)
        return torch.full_like(x_t, 0.5)

    x = latent()
    out = FlowDenoiser(velocity)(x, SIGMAS, hint="h")
    t = SIGMAS / (1 + SIGMAS)
    assert torch.allclose(seen["t"], t)
    assert torch.allclose(seen["x_t"], x * (1 - t).view(-1, 1, 1, 1))
    assert seen["cond"] == {"hint": "h"}
    assert torch.allclose(out, seen["x_t"] - 0.5 * t.view(-1, 1, 1, 1))


def test_the_flow_wrapper_is_the_exact_denoiser_of_an_exact_velocity_model():
    x = latent() * 3
    out = FlowDenoiser(GaussianVelocity())(x, SIGMAS)
    assert torch.allclose(out, posterior_mean(x, SIGMAS), atol=1e-5)


def test_flow_time_and_ve_sigma_convert_like_the_core():
    t = torch.tensor([1e-4, 0.1, 0.5, 0.9, 0.999], dtype=torch.float64)
    sigma = FLOW.to_ve(t)
    model = FlowDenoiser(GaussianVelocity())
    assert torch.allclose(model.t_to_sigma(t), sigma)
    assert torch.allclose(model.sigma_to_t(sigma), t, rtol=1e-12)


def test_flow_schedules_clamp_pure_noise_to_a_finite_sigma_max():
    ve = flow_sigmas_to_ve([1.0, 0.5, 0.0])
    assert ve == pytest.approx([FLOW_T_MAX / (1 - FLOW_T_MAX), 1.0, 0.0])
    assert ve[0] == pytest.approx(9999.0)
    model = FlowDenoiser(GaussianVelocity())
    assert float(model.sigma_max) == pytest.approx(9999.0, rel=1e-6)
    assert float(model.sigma_min) == pytest.approx(1 / 999, rel=1e-6)  # t = 1 / 1000
    sigmas = model.get_sigmas()
    assert sigmas[0] == model.sigma_max and sigmas[-1] == 0 and len(sigmas) == 1001
    with pytest.raises(ValueError, match="t_max"):
        FlowDenoiser(GaussianVelocity(), t_max=1.0)


def test_the_flow_models_own_sigmas_are_its_shifted_schedule_in_ve():
    model = FlowDenoiser(GaussianVelocity(), shift=sd3_schedule(3.0))
    flow = sd3_schedule(3.0)(6, None)
    assert model.get_sigmas(6).tolist() == pytest.approx(flow_sigmas_to_ve(flow), rel=1e-6)
    flux = FlowDenoiser(GaussianVelocity(), shift=flux_schedule())
    with pytest.raises(ValueError, match="size"):
        flux.get_sigmas(6)
    size = StageSize(512, 512, 64, 64, 1024)
    expected = flow_sigmas_to_ve(flux_schedule()(6, size))
    assert flux.get_sigmas(6, size).tolist() == pytest.approx(expected, rel=1e-6)


def test_the_diffusers_unet_convenience_calls_a_unet2dconditionmodel():
    from diffusers import DDIMScheduler

    from lssgen_diffusers.testing import tiny_unet

    unet = tiny_unet(cross_attention_dim=8)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
    )
    model = DiscreteVPDenoiser.from_diffusers(unet, scheduler)
    assert model.prediction_type == "v_prediction"
    assert torch.allclose(model.sigmas, ((1 - AC) / AC) ** 0.5, rtol=1e-5)
    x, sigma = latent(2), torch.tensor([14.6, 0.5])
    cond = {"encoder_hidden_states": torch.randn(2, 3, 8)}
    with torch.no_grad():
        out = model(x, sigma, **cond)
        t = model.sigma_to_t(sigma)
        v = unet(x / (sigma**2 + 1).sqrt().view(-1, 1, 1, 1), t, **cond).sample
    c_skip = (1 / (sigma**2 + 1)).view(-1, 1, 1, 1)
    c_out = (-sigma / (sigma**2 + 1).sqrt()).view(-1, 1, 1, 1)
    assert torch.allclose(out, v * c_out + x * c_skip, atol=1e-6)
    assert math.isclose(float(t[0]), 999.0, abs_tol=1.0)
