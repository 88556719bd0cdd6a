"""lssgen_kdiffusion: Latent Space Scaling generation with any k-diffusion sampler.

Works by duck typing on k-diffusion's conventions (``model(x, sigma, **extra_args) -> denoised``
with VE sigmas; samplers ``sampler(model, x, sigmas, extra_args, callback, disable, ...)``) and
never imports ``k_diffusion``: install it with ``pip install --no-deps k-diffusion`` to use its
samplers, or pass any function of that form.

    from k_diffusion.sampling import sample_dpmpp_2m
    model = FlowDenoiser.from_diffusers(transformer, shift=sd3_schedule())
    plan = plan_for_model(model, 1024, 1024, num_steps=28, min_size=512, patch_size=2)
    latent = sample_lss(sample_dpmpp_2m, model, plan, upsampler, channels=16,
                        extra_args=cond, generator=torch.Generator().manual_seed(0))
"""

from lssgen_kdiffusion.discrete import (
    PREDICTION_TYPES,
    DiscreteVPDenoiser,
    discrete_sigmas,
    sigma_to_timestep,
    timestep_to_sigma,
    unet_prediction,
)
from lssgen_kdiffusion.flow import (
    FLOW_T_MAX,
    FlowDenoiser,
    clamp_flow_t,
    flow_sigmas_to_ve,
    flow_t_to_sigma,
    sigma_to_flow_t,
    transformer_velocity,
)
from lssgen_kdiffusion.noise_samplers import (
    NOISE_SAMPLERS,
    BrownianNoiseSampler,
    NoiseSampler,
    NoiseSamplerFactory,
    brownian_noise_sampler,
    draw_seeds,
    gaussian_noise_sampler,
    noise_sampler_factory,
)
from lssgen_kdiffusion.sampling import (
    as_latent_scaler,
    as_sigmas_sampler,
    kdiffusion_step,
    sample_lss,
    spawn_generators,
)
from lssgen_kdiffusion.schedules import (
    SPACINGS,
    discrete_schedule,
    exponential_schedule,
    flow_ve_schedule,
    karras_schedule,
    plan_for_model,
    stage_schedule,
    ve_shift_factor,
)

__all__ = [
    "FLOW_T_MAX",
    "NOISE_SAMPLERS",
    "PREDICTION_TYPES",
    "SPACINGS",
    "BrownianNoiseSampler",
    "DiscreteVPDenoiser",
    "FlowDenoiser",
    "NoiseSampler",
    "NoiseSamplerFactory",
    "as_latent_scaler",
    "as_sigmas_sampler",
    "brownian_noise_sampler",
    "clamp_flow_t",
    "discrete_schedule",
    "discrete_sigmas",
    "draw_seeds",
    "exponential_schedule",
    "flow_sigmas_to_ve",
    "flow_t_to_sigma",
    "flow_ve_schedule",
    "gaussian_noise_sampler",
    "karras_schedule",
    "kdiffusion_step",
    "noise_sampler_factory",
    "plan_for_model",
    "sample_lss",
    "sigma_to_flow_t",
    "sigma_to_timestep",
    "spawn_generators",
    "stage_schedule",
    "timestep_to_sigma",
    "transformer_velocity",
    "unet_prediction",
    "ve_shift_factor",
]
