"""LSS through the adapter against plain k-diffusion, and the flow wrapper against Diffusers."""

import pytest
import torch
from kd_models import CHANNELS, GaussianEpsUNet, GaussianVelocity, sd_alphas_cumprod
from kdiffusion_loader import sampler

from lssgen_core.schedules import flow_sigmas, sd3_schedule
from lssgen_kdiffusion import (
    DiscreteVPDenoiser,
    FlowDenoiser,
    flow_sigmas_to_ve,
    plan_for_model,
    sample_lss,
)


@pytest.mark.parametrize("family", ["vp", "flow"])
def test_one_stage_lss_with_sample_euler_is_plain_sample_euler(family):
    ac = sd_alphas_cumprod()
    if family == "vp":
        model = DiscreteVPDenoiser(GaussianEpsUNet(ac), ac)
    else:
        model = FlowDenoiser(GaussianVelocity(), shift=sd3_schedule())
    plan = plan_for_model(model, 64, 64, num_steps=7, min_size=64)
    assert plan.is_single_stage
    noise = torch.randn(2, CHANNELS, 8, 8, generator=torch.Generator().manual_seed(3))
    sigmas = torch.tensor(plan.target.sigmas, dtype=torch.float32)
    euler = sampler("euler")

    ours = sample_lss(euler, model, plan, "bicubic", channels=CHANNELS, batch_size=2, noise=noise)
    plain = euler(model, noise * sigmas[0], sigmas, disable=True)
    # Bit for bit: the same float32 sigmas, the same start noise * sigma_max, the same sampler.
    assert torch.equal(ours, plain)


@pytest.fixture(scope="module")
def sd3():
    """A tiny SD3Transformer2DModel from config (as Diffusers' tests build it) and its inputs."""
    from diffusers import SD3Transformer2DModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        transformer = SD3Transformer2DModel(
            sample_size=16,
            patch_size=1,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            joint_attention_dim=32,
            pooled_projection_dim=64,
            out_channels=4,
        ).eval()
    g = torch.Generator().manual_seed(1)
    cond = {
        "encoder_hidden_states": torch.randn(1, 7, 32, generator=g),
        "pooled_projections": torch.randn(1, 64, generator=g),
    }
    return transformer, cond, torch.randn(1, 4, 16, 16, generator=g)


def diffusers_euler(transformer, cond, latents, num_steps, begin_index=0):
    """Diffusers' FlowMatchEulerDiscreteScheduler loop, as StableDiffusion3Pipeline runs it."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(sigmas=flow_sigmas(num_steps)[:-1])
    scheduler.set_begin_index(begin_index)
    with torch.no_grad():
        for t in scheduler.timesteps[begin_index:]:
            v = transformer(hidden_states=latents, timestep=t.expand(1), return_dict=False, **cond)
            latents = scheduler.step(v[0], t, latents, return_dict=False)[0]
    return latents, scheduler.sigmas


def test_the_flow_wrapper_with_sample_euler_matches_diffusers_flow_match_euler(sd3):
    transformer, cond, noise = sd3
    expected, flow = diffusers_euler(transformer, cond, noise, num_steps=8)
    # Diffusers' shifted schedule is the core's SD3 schedule, so a plan reproduces these sigmas.
    assert flow.tolist() == pytest.approx(sd3_schedule(3.0)(8, None), abs=1e-6)
    model = FlowDenoiser.from_diffusers(transformer, shift=sd3_schedule(3.0))
    sigmas = torch.tensor(flow_sigmas_to_ve(flow.tolist()))
    out = sampler("euler")(model, noise * sigmas[0], sigmas, extra_args=cond, disable=True)
    # Not exact: Diffusers starts at t = 1 (the latent is the noise, the timestep 1000); the VE
    # run starts at t_max = 1 - 1e-4 (noise * 9999, which the wrapper scales to 0.9999 * noise,
    # timestep 999.9), and its first float32 Euler step cancels values of ~1e4 back to O(1).
    # Both are ~1e-4 effects; measured 5.3e-4 max abs here on latents up to ~4 (t_max = 1 - 1e-3
    # gives 4.3e-3, 1 - 1e-5 gives 1.5e-3).
    assert (out - expected).abs().max() < 2e-3
    assert torch.allclose(out, expected, rtol=1e-3, atol=2e-3)


def test_without_pure_noise_the_flow_wrapper_matches_diffusers_to_float_round_off(sd3):
    # Entering the schedule below t = 1 (as LSS's later stages do) involves no clamping: the two
    # Euler integrations agree up to float32 round-off (measured 7e-7).
    transformer, cond, start = sd3
    begin = 2
    expected, flow = diffusers_euler(transformer, cond, start, num_steps=8, begin_index=begin)
    sigmas = torch.tensor(flow_sigmas_to_ve(flow[begin:].tolist()))
    x = start * (1 + sigmas[0])  # the VE latent of the flow latent `start`
    model = FlowDenoiser.from_diffusers(transformer)
    out = sampler("euler")(model, x, sigmas, extra_args=cond, disable=True)
    assert torch.allclose(out, expected, rtol=0, atol=1e-5)
