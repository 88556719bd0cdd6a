"""A later stage's first denoiser input is the stock img2img entry at the same level, for every
scheduler family a multi-stage call accepts, entered at index 0 and part-way.

The reference is the stock img2img pipeline of the same family over the same components, given
the upsampled latent as its ``image`` (img2img takes a latent-shaped image as latents) and the
same re-noising noise, with ``strength`` chosen so that it enters at the planned index: its
``add_noise`` / ``scale_noise`` and ``scale_model_input`` are the stock definition of "a latent
at this level", including the VE scale Euler-type schedulers keep (``x0 + sigma * noise``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSinglestepScheduler,
    EDMEulerScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FluxImg2ImgPipeline,
    LMSDiscreteScheduler,
    PNDMScheduler,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
    UniPCMultistepScheduler,
)
from lss_testkit import LSS_CLASSES, PROMPT, random_upsampler

import lssgen_core.sampling.stages
from lssgen_core.upsample import make_latent_scaler
from lssgen_diffusers import SchedulerView

STEPS = 8

IMG2IMG: dict[str, tuple[type, str]] = {
    "sd": (StableDiffusionImg2ImgPipeline, "stable_diffusion.pipeline_stable_diffusion_img2img"),
    "sdxl": (
        StableDiffusionXLImg2ImgPipeline,
        "stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img",
    ),
    "sd3": (
        StableDiffusion3Img2ImgPipeline,
        "stable_diffusion_3.pipeline_stable_diffusion_3_img2img",
    ),
    "flux": (FluxImg2ImgPipeline, "flux.pipeline_flux_img2img"),
}

# Every first-order scheduler the UNet pipelines list as compatible (check_supported accepts
# them); the higher-order ones are refused before any work (test_lss_scheduling).
UNET_SCHEDULERS = (
    EulerDiscreteScheduler,
    EulerAncestralDiscreteScheduler,
    LMSDiscreteScheduler,
    EDMEulerScheduler,
    DDIMScheduler,
    DDPMScheduler,
    PNDMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSinglestepScheduler,
    DEISMultistepScheduler,
    UniPCMultistepScheduler,
)

# start_sigma 0.99 lies above every UNet schedule's first level at 8 leading steps (the entry is
# index 0); 0.6 enters part-way. Flow schedules start at pure noise, so only part-way exists.
CASES = [
    *(
        pytest.param("sd", s, start_sigma, id=f"sd-{s.__name__}-{start_sigma}")
        for s in UNET_SCHEDULERS
        for start_sigma in (0.99, 0.6)
    ),
    pytest.param("sdxl", EulerDiscreteScheduler, 0.99, id="sdxl-euler-0.99"),
    pytest.param("sdxl", EulerDiscreteScheduler, 0.6, id="sdxl-euler-0.6"),
    pytest.param("sd3", None, 0.6, id="sd3-flow-0.6"),
    pytest.param("flux", None, 0.6, id="flux-flow-0.6"),
]


@contextmanager
def recorded_samples(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """The main input (the noisy latent, scaled for the model) of every forward call."""
    samples: list[torch.Tensor] = []

    def hook(_: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        samples.append(kwargs.get("hidden_states", kwargs.get("sample", args[0] if args else None)))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield samples
    finally:
        handle.remove()


@pytest.mark.parametrize(("kind", "scheduler_class", "start_sigma"), CASES)
def test_later_stage_enters_like_stock_img2img(
    lss_pair: Any,
    kind: str,
    scheduler_class: type | None,
    start_sigma: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    components = dict(lss_pair(kind).stock.components)
    if scheduler_class is not None:
        # PNDM as Stable Diffusion ships it (its PRK warm-up cannot be entered part-way).
        extra = {"skip_prk_steps": True} if scheduler_class is PNDMScheduler else {}
        config = components["scheduler"].config
        components["scheduler"] = scheduler_class.from_config(config, **extra)
    upsampler = random_upsampler(components["vae"].config.latent_channels)
    pipe = LSS_CLASSES[kind](**components, latent_upsampler=upsampler)
    pipe.set_progress_bar_config(disable=True)
    denoiser = pipe.unet if hasattr(pipe, "unet") else pipe.transformer

    entries: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_enter = lssgen_core.sampling.stages.enter_stage

    def spy_enter(spatial: torch.Tensor, stage: Any, scaler: Any, noise: Any, p: Any) -> Any:
        entries.append((spatial, noise))
        return real_enter(spatial, stage, scaler, noise, p)

    monkeypatch.setattr(lssgen_core.sampling.stages, "enter_stage", spy_enter)
    call = {
        "prompt": PROMPT,
        "height": 128,
        "width": 128,
        "num_inference_steps": STEPS,
        "output_type": "latent",
        "generator": torch.Generator().manual_seed(0),
    }
    with recorded_samples(denoiser) as lss_calls:
        pipe(**call, min_size=64, start_sigma=start_sigma, scaling_mode="latent")
    second = pipe.lss_plan.stages[1]
    assert (second.start_index == 0) == (start_sigma == 0.99)
    (spatial, noise), *_ = entries
    upsampled = make_latent_scaler("latent")(spatial)
    # The later stage's first call is the first at another size (PNDM's warm-up adds a call).
    lss_input = next(x for x in lss_calls if x.shape != lss_calls[0].shape)

    img2img_class, module = IMG2IMG[kind]
    img2img = img2img_class(**components)
    img2img.set_progress_bar_config(disable=True)
    monkeypatch.setattr(
        importlib.import_module(f"diffusers.pipelines.{module}"),
        "randn_tensor",
        lambda *args, **kwargs: noise,
    )
    # img2img slices PNDM's raw timesteps, whose third entry repeats the second (its warm-up);
    # the plan counts steps without the repeat (scheduler_levels.step_timesteps).
    raw_start = second.start_index
    if isinstance(components["scheduler"], PNDMScheduler) and raw_start >= 2:
        raw_start += 1
    with recorded_samples(denoiser) as stock_calls:
        img2img(**call, image=upsampled, strength=(STEPS - raw_start) / STEPS)
    torch.testing.assert_close(lss_input, stock_calls[0], rtol=1e-5, atol=1e-5)


def test_view_scales_only_the_first_stages_noise() -> None:
    scheduler = EulerDiscreteScheduler()
    scheduler.set_timesteps(8)
    assert float(scheduler.init_noise_sigma) > 1
    first = SchedulerView(scheduler, 0)
    later_at_zero = SchedulerView(scheduler, 0, renoised=True)
    assert first.init_noise_sigma == scheduler.init_noise_sigma
    assert later_at_zero.init_noise_sigma == 1.0
    assert SchedulerView(scheduler, 3).init_noise_sigma == 1.0
