"""Two-stage LSS with every k-diffusion sampler, determinism through the generator, re-noising."""

import warnings

import pytest
import torch
from kd_models import (
    CHANNELS,
    MEAN,
    CompVisLike,
    GaussianEpsUNet,
    GaussianVelocity,
    GaussianVUNet,
    sd_alphas_cumprod,
)
from kdiffusion_loader import load_k_diffusion, sampler

import lssgen_core.sampling.progressive as progressive
import lssgen_core.sampling.stages as stages
from lssgen_core.parameterization import FLOW, VE, convert_sigma
from lssgen_core.plan import plan_stages
from lssgen_core.schedules import flux_schedule
from lssgen_core.upsample import LatentUpsampler, UpsamplerConfig
from lssgen_kdiffusion import (
    DiscreteVPDenoiser,
    FlowDenoiser,
    flow_ve_schedule,
    kdiffusion_step,
    plan_for_model,
    sample_lss,
)

LISTED = [
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "lms",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
]
# The rest of k-diffusion's samplers, including the interval ones (dpm_fast, dpm_adaptive).
OTHERS = ["dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde", "dpm_fast", "dpm_adaptive"]
STOCHASTIC = {
    "euler_ancestral",
    "dpm_2_ancestral",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
}
AC = sd_alphas_cumprod()


def vp_model():
    return DiscreteVPDenoiser(GaussianEpsUNet(AC), AC)


def flow_model():
    return FlowDenoiser(GaussianVelocity(), shift=flux_schedule())


def two_stage_plan(model, num_steps=8, **kwargs):
    patch = 2 if isinstance(model, FlowDenoiser) else 1
    plan = plan_for_model(
        model, 128, 128, num_steps=num_steps, min_size=64, patch_size=patch, **kwargs
    )
    assert len(plan.stages) == 2
    return plan


def run(name, model, plan, seed=0, global_seed=None, batch_size=2, upsampler="bicubic", **kwargs):
    if global_seed is not None:
        torch.manual_seed(global_seed)
    generator = kwargs.pop("generator", torch.Generator().manual_seed(seed))
    return sample_lss(
        sampler(name),
        model,
        plan,
        upsampler,
        channels=CHANNELS,
        batch_size=batch_size,
        generator=generator,
        disable=True,
        **kwargs,
    )


@pytest.mark.parametrize("family", ["vp", "flow"])
@pytest.mark.parametrize("name", LISTED + OTHERS)
def test_every_sampler_runs_two_stages_reproducibly_from_the_generator_alone(name, family):
    model = vp_model() if family == "vp" else flow_model()
    plan = two_stage_plan(model)
    # Different global RNG states: only the generator may decide the result.
    first = run(name, model, plan, global_seed=1)
    second = run(name, model, plan, global_seed=2)
    assert first.shape == (2, CHANNELS, 16, 16)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)
    # A sanity check of the whole pipeline: the exact Gaussian denoiser's samples keep the data's
    # per-channel means (loose: one 16x16 image per channel; dpmpp_3m_sde is rough at 8 steps).
    assert torch.allclose(first.mean((0, 2, 3)), MEAN, atol=0.2)
    if name in STOCHASTIC:
        assert not torch.equal(first, run(name, model, plan, seed=1))


@pytest.mark.parametrize("name", LISTED + OTHERS)
def test_one_step_stages_are_one_denoiser_call_with_every_sampler(name):
    # k-diffusion 0.1.1's dpmpp_2m_sde and dpmpp_3m_sde raise UnboundLocalError on a one-step
    # schedule; LSS's later stages can be that short, so the adapter takes that step itself.
    model = vp_model()
    plan = two_stage_plan(model, num_steps=1)
    assert [stage.num_denoising_steps for stage in plan.stages] == [1, 1]
    calls = model.inner_model.calls
    out = run(name, model, plan)
    assert model.inner_model.calls - calls == 2
    assert torch.isfinite(out).all()
    assert torch.allclose(out, run("euler", model, plan), atol=1e-6)


@pytest.mark.parametrize("name", ["euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde"])
@pytest.mark.parametrize("noise_sampler", ["gaussian", "brownian"])
def test_each_image_depends_on_its_own_generator_only(name, noise_sampler):
    model = flow_model()
    plan = two_stage_plan(model)
    pair = [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)]
    batch = run(name, model, plan, generator=pair, noise_sampler=noise_sampler)
    alone = run(
        name,
        model,
        plan,
        batch_size=1,
        generator=[torch.Generator().manual_seed(6)],
        noise_sampler=noise_sampler,
    )
    assert torch.equal(batch[1:], alone)


def test_the_brownian_noise_sampler_reproduces_k_diffusions_for_the_same_seed():
    from lssgen_kdiffusion import BrownianNoiseSampler

    kd = load_k_diffusion()
    x = torch.randn(2, CHANNELS, 8, 8)
    sigmas = vp_model().get_sigmas(5)
    low, high = sigmas[-2], sigmas[0]
    for seed in (123, [1, 2]):
        ours = BrownianNoiseSampler(x, low, high, seed)
        theirs = kd.sampling.BrownianTreeNoiseSampler(x, low, high, seed)
        for a, b in zip(sigmas[:-2], sigmas[1:-1]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torchsde's end-rounding warning
                expected = theirs(a, b)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # ours hides it
                assert torch.equal(ours(a, b), expected)


def test_sampler_kwargs_reach_the_sampler_and_unknown_ones_are_refused():
    model = flow_model()
    plan = two_stage_plan(model)
    churned = run("euler", model, plan, sampler_kwargs={"s_churn": 1.0})
    assert torch.equal(churned, run("euler", model, plan, sampler_kwargs={"s_churn": 1.0}))
    assert not torch.equal(churned, run("euler", model, plan))
    assert not torch.equal(
        run("euler_ancestral", model, plan, sampler_kwargs={"eta": 0.5}),
        run("euler_ancestral", model, plan),
    )
    # eta = 0 turns the ancestral sampler into plain Euler.
    assert torch.allclose(
        run("euler_ancestral", model, plan, sampler_kwargs={"eta": 0.0}),
        run("euler", model, plan),
        atol=1e-6,
    )
    with pytest.raises(TypeError, match="eta"):
        kdiffusion_step(sampler("dpmpp_2m"), sampler_kwargs={"eta": 1.0})
    # A noise sampler of the caller's own comes as a factory: each stage has its own size.
    with pytest.raises(ValueError, match="factory"):
        kdiffusion_step(sampler("euler_ancestral"), sampler_kwargs={"noise_sampler": print})
    shapes = []

    def zeros(x, sigmas, generator):
        shapes.append(tuple(x.shape))
        return lambda sigma, sigma_next: torch.zeros_like(x)

    quiet = run("euler_ancestral", model, plan, noise_sampler=zeros)
    assert shapes == [(2, CHANNELS, 8, 8), (2, CHANNELS, 16, 16)]
    # Without noise, an ancestral step is a deterministic step to sigma_down < sigma_next.
    assert torch.isfinite(quiet).all() and not torch.equal(quiet, run("euler", model, plan))


def test_the_callers_global_rng_is_left_alone():
    model = flow_model()
    plan = two_stage_plan(model)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    run("euler", model, plan)  # k-diffusion's Euler draws torch.randn_like every step
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("wrapper", ["DiscreteEpsDDPMDenoiser", "CompVisDenoiser", "VDenoiser"])
def test_k_diffusions_own_wrappers_are_models_of_sample_lss(wrapper):
    external = load_k_diffusion().external
    if wrapper == "DiscreteEpsDDPMDenoiser":
        model = external.DiscreteEpsDDPMDenoiser(GaussianEpsUNet(AC), AC, quantize=False)
    elif wrapper == "CompVisDenoiser":
        model = external.CompVisDenoiser(CompVisLike(AC))
    else:
        model = external.VDenoiser(GaussianVUNet())
    ours = vp_model()
    # VDenoiser is continuous: it has no own spacing or range, so give it the VP model's.
    spacing = {"spacing": "karras", "sigma_min": 0.0292, "sigma_max": 14.6}
    kwargs = spacing if wrapper == "VDenoiser" else {}
    plan = two_stage_plan(model, **kwargs)
    assert plan == two_stage_plan(ours, **kwargs)
    theirs = run("dpmpp_2m", model, plan)
    assert theirs.shape == (2, CHANNELS, 16, 16)
    # The same Gaussian data behind every wrapper: they agree with ours up to float round-off.
    assert torch.allclose(theirs, run("dpmpp_2m", ours, plan), atol=1e-4)


def test_a_discrete_models_own_spacing_matches_k_diffusions_wrapper_exactly():
    external = load_k_diffusion().external
    unet = GaussianEpsUNet(AC)
    theirs = external.DiscreteEpsDDPMDenoiser(unet, AC, quantize=False)
    ours = DiscreteVPDenoiser(unet, AC)
    plan = two_stage_plan(ours)
    assert torch.equal(run("heun", theirs, plan), run("heun", ours, plan))


@pytest.mark.parametrize("family", ["vp", "flow"])
def test_re_noising_puts_the_upsampled_latent_at_the_entry_level(family, monkeypatch):
    model = vp_model() if family == "vp" else flow_model()
    plan = two_stage_plan(model)
    drawn, upsampled, seen = [], [], []
    draw = progressive.randn

    def recording_randn(*args, **kwargs):
        drawn.append(draw(*args, **kwargs))
        return drawn[-1]

    def scaler(latent):
        upsampled.append(torch.nn.functional.interpolate(latent, scale_factor=2, mode="bicubic"))
        return upsampled[-1]

    # The first noise is drawn by the sampler, the re-noising by the stage loop.
    monkeypatch.setattr(progressive, "randn", recording_randn)
    monkeypatch.setattr(stages, "randn", recording_randn)
    sample_lss(
        sampler("dpmpp_2m"),
        model,
        plan,
        scaler,
        channels=CHANNELS,
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
        callback=lambda info: seen.append(info),
        disable=True,
    )
    entry = next(info for info in seen if info["stage"] == 1)
    stage = plan.stages[1]
    sigma = stage.entry_level
    assert entry["i"] == 0 and float(entry["sigma"]) == pytest.approx(sigma, rel=1e-6)
    assert len(drawn) == 2 and len(upsampled) == 1
    assert torch.allclose(entry["x"], upsampled[0] + sigma * drawn[1], rtol=1e-6, atol=1e-6)
    # The VE entry level has the SNR of the last scheduled flow level >= start_sigma.
    flow_level = convert_sigma(sigma, VE, FLOW)
    assert flow_level >= plan.start_sigma
    next_level = convert_sigma(stage.sigmas[stage.start_index + 1], VE, FLOW)
    assert next_level < plan.start_sigma
    if family == "flow":
        # ... which is exactly where the same plan made in flow sigmas enters.
        flow_plan = plan_stages(
            128, 128, num_steps=8, min_size=64, patch_size=2, schedule=flux_schedule()
        )
        assert flow_plan.stages[1].start_index == stage.start_index
        assert flow_level == pytest.approx(flow_plan.stages[1].entry_level, abs=1e-12)


def test_the_upsampler_may_be_a_latent_upsampler_a_mode_name_or_a_scaler():
    model = flow_model()
    plan = two_stage_plan(model)

    def nearest(latent):
        return torch.nn.functional.interpolate(latent, scale_factor=2, mode="nearest")

    assert torch.equal(
        run("euler", model, plan, upsampler="nearest"), run("euler", model, plan, upsampler=nearest)
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        learned = LatentUpsampler(UpsamplerConfig.released_4ch()).eval()
    out = run("euler", model, plan, upsampler=learned)
    assert out.shape == (2, CHANNELS, 16, 16) and torch.isfinite(out).all()
    with pytest.raises(TypeError, match="upsampler"):
        run("euler", model, plan, upsampler=2)


def test_a_plan_in_flow_sigmas_is_refused():
    model = flow_model()
    plan = plan_stages(64, 64, num_steps=4, min_size=32, schedule=flux_schedule())
    with pytest.raises(ValueError, match="VE"):
        sample_lss(sampler("euler"), model, plan, "bicubic", channels=CHANNELS)
    ve_plan = plan_stages(
        64, 64, num_steps=4, min_size=32, schedule=flow_ve_schedule(), parameterization=VE
    )
    out = sample_lss(sampler("euler"), model, ve_plan, "bicubic", channels=CHANNELS)
    assert out.shape == (1, CHANNELS, 8, 8)
