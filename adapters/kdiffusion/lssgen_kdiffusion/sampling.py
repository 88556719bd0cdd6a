"""LSS with any k-diffusion sampler: each stage of the core's plan runs the sampler on its sigmas.

The LSS loop itself (first-stage noise, upsampling, re-noising to the stage's entry level) is the
core's :func:`~lssgen_core.sampling.run_stages`, run by
:func:`~lssgen_core.sampling.sample_progressive`; this module only turns a k-diffusion sampler into
the per-stage step function it takes. The plan must be in VE sigmas, so re-noising
is ``x = up + sigma_entry * e`` with ``sigma_entry`` the VE level whose signal-to-noise ratio
matches the plan's ``start_sigma`` (see :mod:`lssgen_kdiffusion.schedules`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from lssgen_core.denoiser import Denoiser
from lssgen_core.noise import Generators
from lssgen_core.parameterization import VE
from lssgen_core.plan import StagePlan
from lssgen_core.sampling import StepFunction, sample_progressive
from lssgen_core.sampling.progressive import ExtraArgs
from lssgen_core.sampling.samplers import Callback, Update, first_order_sampler
from lssgen_core.upsample import LatentScaler, LatentUpsampler, make_latent_scaler
from lssgen_kdiffusion.noise_samplers import NoiseSamplerFactory, draw_seeds, noise_sampler_factory

Sampler = Callable[..., Any]
Upsampler = LatentUpsampler | LatentScaler | str


def as_sigmas_sampler(sampler: Sampler) -> Sampler:
    """An interval sampler (``sample_dpm_fast``, ``sample_dpm_adaptive``) on a list of sigmas.

    Those integrate from ``sigma_max`` down to ``sigma_min > 0`` (log sigma is infinite at 0) and
    return a latent still at ``sigma_min``. Here they run from the first level to the last positive
    one, then take one denoiser call there to land on 0, as k-diffusion's SDE samplers do on their
    final step. ``sample_dpm_fast`` gets ``n`` so that, with that call, it makes one evaluation per
    scheduled step.
    """
    takes_n = "n" in inspect.signature(sampler).parameters

    def run(
        model: Denoiser,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        extra_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        # The rest (callback, disable, the sampler's options) is the interval sampler's business.
        extra_args = extra_args or {}
        positive = sigmas[sigmas > 0]
        sigma_min, sigma_max = float(positive.min()), float(positive.max())
        if sigma_min < sigma_max:
            if takes_n:
                kwargs.setdefault("n", len(sigmas) - 2)
            x = sampler(model, x, sigma_min, sigma_max, extra_args=extra_args, **kwargs)
        if sigmas[-1] == 0:
            x = model(x, x.new_full([x.shape[0]], sigma_min), **extra_args)
        return x

    return run


def _parameters(sampler: Sampler) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(sampler).parameters


def _check_kwargs(sampler: Sampler, kwargs: Mapping[str, Any]) -> None:
    parameters = _parameters(sampler)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        name = getattr(sampler, "__name__", repr(sampler))
        raise TypeError(f"{name} takes no {unknown}; it takes {list(parameters)}")


def spawn_generators(generator: Generators) -> Generators:
    """Fresh generators for one stage's sampler noise, each seeded by one draw from the caller's.

    The caller's generators then advance by the same amount per stage whatever the sampler draws,
    so the first noise and the re-noising are the same for every sampler (Euler and
    Euler-ancestral with ``eta=0`` agree), and a list keeps one stream per batch element.
    """
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        return torch.Generator(generator.device).manual_seed(draw_seeds(generator)[0])
    return [torch.Generator(g.device).manual_seed(draw_seeds(g)[0]) for g in generator]


@contextmanager
def _global_rng_from(generator: Generators, device: torch.device) -> Iterator[None]:
    """Seed a fork of torch's global RNG from ``generator`` for the body.

    Some k-diffusion noise bypasses ``noise_sampler``: the churn of euler, heun and dpm_2
    (``s_churn > 0``) calls ``torch.randn_like``. Seeding it from the generator keeps those runs
    reproducible from the generator too, and leaves the caller's global RNG untouched. With a list
    of generators the churn noise follows the first one.
    """
    if generator is None:
        yield
        return
    seed = draw_seeds(generator, device)[0]
    on_cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if on_cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def _denoised_update() -> Update:
    """A one-step stage: every k-diffusion sampler's single step to 0 returns the denoiser's
    output (Euler's ``x + d * (0 - sigma)`` is it up to round-off). Taking it directly also avoids
    k-diffusion 0.1.1's UnboundLocalError in dpmpp_2m_sde / dpmpp_3m_sde on one-step schedules,
    which LSS makes common (a later stage entering near the end of a short schedule)."""

    def step(
        x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> torch.Tensor:
        return denoised

    return step


_denoise_step = first_order_sampler(_denoised_update, "denoise_step")


def kdiffusion_step(
    sampler: Sampler,
    *,
    generator: Generators = None,
    noise_sampler: str | NoiseSamplerFactory = "gaussian",
    sampler_kwargs: Mapping[str, Any] | None = None,
) -> StepFunction:
    """The core's per-stage step function for a k-diffusion ``sampler``.

    ``sampler_kwargs`` (``eta``, ``s_noise``, ``s_churn``, ``order``, ``solver_type``, ...) go to
    every call. A sampler that takes ``noise_sampler`` gets a fresh one per stage from the factory
    ``noise_sampler`` ("gaussian": independent noise per step; "brownian": a Brownian tree like
    k-diffusion's SDE default; or a callable ``(x, sigmas, generator) -> noise_sampler``). All of
    a stage's sampler noise
    comes from :func:`spawn_generators` of ``generator``; with ``generator=None``, from torch's
    global RNG.
    Interval samplers (``sample_dpm_fast``, ``sample_dpm_adaptive``) are adapted with
    :func:`as_sigmas_sampler`; a stage of a single step to 0 is one denoiser call (what every
    k-diffusion sampler does there, unless ``s_churn`` asks for churn).
    """
    sampler_kwargs = dict(sampler_kwargs or {})
    if "noise_sampler" in sampler_kwargs:
        raise ValueError(
            "every stage has its own latent size, so one noise_sampler cannot serve them all: "
            "pass a factory (x, sigmas, generator) -> noise_sampler as noise_sampler= instead"
        )
    parameters = _parameters(sampler)
    _check_kwargs(sampler, sampler_kwargs)
    if "sigmas" not in parameters and {"sigma_min", "sigma_max"} <= set(parameters):
        sampler = as_sigmas_sampler(sampler)
    make_noise = noise_sampler_factory(noise_sampler)
    wants_noise = "noise_sampler" in parameters

    def step(
        model: Denoiser,
        x: torch.Tensor,
        sigmas: torch.Tensor,
        extra_args: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        disable: bool | None = None,
    ) -> torch.Tensor:
        kwargs = dict(sampler_kwargs)
        own = spawn_generators(generator)
        if len(sigmas) == 2 and sigmas[-1] == 0 and not kwargs.get("s_churn"):
            return _denoise_step(model, x, sigmas, extra_args, callback)
        with _global_rng_from(own, x.device):
            if wants_noise:
                kwargs["noise_sampler"] = make_noise(x, sigmas, own)
            return sampler(
                model,
                x,
                sigmas,
                extra_args=extra_args,
                callback=callback,
                disable=disable,
                **kwargs,
            )

    return step


def as_latent_scaler(upsampler: Upsampler) -> LatentScaler:
    """A LatentUpsampler, a scaling mode name ("bicubic", "latent", ...) or any latent scaler."""
    if isinstance(upsampler, str):
        return make_latent_scaler(upsampler)
    if isinstance(upsampler, LatentUpsampler):
        return make_latent_scaler("resnet", upsampler=upsampler)
    if callable(upsampler):
        return upsampler
    raise TypeError(
        f"upsampler must be a LatentUpsampler, a scaling mode name or a callable latent scaler, "
        f"got {type(upsampler).__name__}"
    )


def _module_device(model: Any) -> torch.device | None:
    """Where an nn.Module model's weights (or, lacking those, its buffers) live."""
    for tensors in ("parameters", "buffers"):
        found = next(iter(getattr(model, tensors, list)()), None)
        if found is not None:
            return found.device
    return None


def sample_lss(
    sampler: Sampler,
    model: Denoiser,
    plan: StagePlan,
    upsampler: Upsampler,
    *,
    channels: int,
    batch_size: int = 1,
    extra_args: ExtraArgs = None,
    callback: Callback | None = None,
    disable: bool | None = None,
    generator: Generators = None,
    noise: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    noise_sampler: str | NoiseSamplerFactory = "gaussian",
    sampler_kwargs: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Latent Space Scaling generation with a k-diffusion ``sampler``; returns the clean latent.

    ``sampler`` is any k-diffusion sampler function (``sample_euler``, ``sample_dpmpp_2m_sde``,
    ...; ``sample_dpm_fast`` / ``sample_dpm_adaptive`` too) and ``model`` a denoiser in VE sigmas
    (:class:`FlowDenoiser`, :class:`DiscreteVPDenoiser`, or k-diffusion's own wrappers). ``plan``
    must be made with ``parameterization=VE`` (:func:`plan_for_model` does). ``upsampler`` is a
    ``LatentUpsampler``, a scaling mode name or a latent scaler. Every random number comes from
    ``generator`` (one, or one per batch element): the first noise, the re-noising, the noise of
    stochastic samplers (see :func:`kdiffusion_step`). ``noise`` fixes the first stage's noise;
    ``extra_args`` may be a function of the stage; ``callback`` gets k-diffusion's dict plus
    ``stage`` and ``step``; ``device`` defaults to the model's.
    """
    if plan.parameterization is not VE:
        raise ValueError(
            f"k-diffusion samplers step VE sigmas but the plan has {plan.parameterization!r} "
            "sigmas; make it with plan_for_model, or plan_stages(..., parameterization=VE)"
        )
    step = kdiffusion_step(
        sampler, generator=generator, noise_sampler=noise_sampler, sampler_kwargs=sampler_kwargs
    )
    return sample_progressive(
        model,
        plan,
        as_latent_scaler(upsampler),
        channels=channels,
        batch_size=batch_size,
        step=step,
        generator=generator,
        device=device if device is not None else _module_device(model),
        dtype=dtype,
        noise=noise,
        extra_args=extra_args,
        callback=callback,
        disable=disable,
    )
